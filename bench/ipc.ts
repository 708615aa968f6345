/**
 * Request and answer between the benchmark and the processes it starts (the system under test,
 * the receivers), over Node's IPC channel with structured clone, so Maps and numbers survive.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

type Handlers = Record<string, (argument: never) => unknown>;

interface Request {
  readonly id: number;
  readonly name: string;
  readonly argument: unknown;
}

interface Answer {
  readonly id: number;
  readonly value?: unknown;
  readonly error?: string;
}

/** A call to a child failed there; the message is the child's. */
export class PeerCallError extends Error {
  override name = "PeerCallError";
}

/** Answers the parent's calls with `handlers`; exits when the parent goes away. */
export function servePeer(handlers: Handlers): void {
  process.on("message", async (message: Request) => {
    const handler = handlers[message.name];
    let answer: Answer;
    try {
      if (!handler) throw new Error(`no call named ${message.name}`);
      answer = { id: message.id, value: await handler(message.argument as never) };
    } catch (error) {
      answer = {
        id: message.id,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      };
    }
    process.send?.(answer);
  });
  // Disconnecting is how the parent says goodbye; without a parent nothing would stop it either.
  process.on("disconnect", () => process.exit());
}

export interface Peer<H extends Handlers> {
  readonly pid: number;
  call<K extends keyof H & string>(
    name: K,
    ...argument: Parameters<H[K]> extends [] ? [] : [Parameters<H[K]>[0]]
  ): Promise<Awaited<ReturnType<H[K]>>>;
  /** Disconnects and waits for the process to end (killing it after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** Children run TypeScript through tsx. */
/**
 * `BENCH_CPU_PROFILE_DIR=<dir>` has every child write a V8 CPU profile there when it exits (open
 * it in Chrome's DevTools): where the system's CPU goes under the section's load.
 */
const CHILD_EXEC_ARGV = [
  "--import",
  "tsx",
  ...(process.env.BENCH_CPU_PROFILE_DIR
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE_DIR}`]
    : []),
];
/**
 * The AWS SDK warns once per process that its 2027 releases will need Node 22; the benchmark
 * starts several processes, and one warning (from the SDK's own switch) is enough.
 */
const CHILD_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
const DEFAULT_CLOSE_GRACE_MS = 15_000;

/** Starts `module` (a file URL) as a child process that serves `H`. */
export function startPeer<H extends Handlers>(
  module: URL,
  env: Record<string, string> = {},
): Peer<H> {
  const child: ChildProcess = fork(fileURLToPath(module), [], {
    execArgv: CHILD_EXEC_ARGV,
    serialization: "advanced",
    env: { ...process.env, ...CHILD_ENV, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let nextId = 1;
  const waiting = new Map<number, { resolve(value: unknown): void; reject(e: Error): void }>();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("message", (answer: Answer) => {
    const call = waiting.get(answer.id);
    if (!call) return;
    waiting.delete(answer.id);
    if (answer.error !== undefined) call.reject(new PeerCallError(answer.error));
    else call.resolve(answer.value);
  });
  void exited.then(() => {
    for (const call of waiting.values()) call.reject(new PeerCallError("the process ended"));
    waiting.clear();
  });
  return {
    pid: child.pid ?? -1,
    call(name, ...argument) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, name, argument: argument[0] } satisfies Request);
      });
    },
    async close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
