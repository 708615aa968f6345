/**
 * The receiver's side of the package, as a new user meets it: `npm pack` here, `npm install` of
 * the tarball in a plain Node project, a plain `import` of the verifiers with no TypeScript
 * loader, and the receivers the README and docs/receiving.md show, compiled there under
 * `tsc --strict`, run, and sent signed, repeated and forged requests.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signatureHeaders, standardWebhookHeaders } from "#domain/signatures";
import { freePort } from "#infra/local/net";
import { eventually } from "#test/eventually";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
/** npm pack builds the verifiers first; installing and compiling take a few seconds each. */
const PACKAGE_TIMEOUT_MS = 240_000;
const CLIENT_SECRET = "the-client-secret-1234";
const STANDARD_WEBHOOKS_SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;

let work: string;
let consumer: string;

/** The ```ts blocks of a Markdown file of this repository that import the verifiers. */
function receiverBlocks(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((match) => match[1] ?? "")
    .filter((code) => code.includes('from "workflow-webhooks/signatures"'));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "receiver-package-"));
  consumer = join(work, "receiver");
  mkdirSync(consumer);
  const packed = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root });
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  writeFileSync(
    join(consumer, "package.json"),
    JSON.stringify({ name: "receiver", private: true, type: "module" }),
  );
  // Offline: the package has no dependencies, so nothing but the tarball is needed.
  await run(
    "npm",
    ["install", join(work, filename), "--offline", "--no-audit", "--no-fund", "--ignore-scripts"],
    { cwd: consumer },
  );

  const [readme] = receiverBlocks("README.md");
  const [plain, express] = receiverBlocks("docs/receiving.md");
  const sources = { readme, plain, express };
  for (const [name, code] of Object.entries(sources)) {
    if (code === undefined) throw new Error(`no ${name} receiver block found`);
    writeFileSync(join(consumer, `${name}.ts`), code);
  }
  // The receiver's project would install Express and the Node types; this one borrows ours.
  mkdirSync(join(consumer, "node_modules/@types"), { recursive: true });
  for (const module of ["express", "@types/express", "@types/node"]) {
    symlinkSync(join(root, "node_modules", module), join(consumer, "node_modules", module));
  }
  writeFileSync(
    join(consumer, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        outDir: "out",
        types: ["node"],
        skipLibCheck: true,
      },
      files: Object.keys(sources).map((name) => `${name}.ts`),
    }),
  );
  await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "."], {
    cwd: consumer,
  });
}, PACKAGE_TIMEOUT_MS);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface RunningReceiver {
  readonly port: number;
  output(): string;
  stop(): void;
}

/** Runs a compiled receiver with the secrets set, once it answers. */
async function startCompiled(name: string): Promise<RunningReceiver> {
  const port = await freePort();
  let output = "";
  const child: ChildProcess = execFile(process.execPath, [`out/${name}.js`], {
    cwd: consumer,
    env: {
      ...process.env,
      CLIENT_SECRET,
      STANDARD_WEBHOOKS_SECRET,
      PORT: String(port),
    },
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  await eventually("the example receiver to listen", () => fetch(`http://127.0.0.1:${port}/`), {
    timeoutMs: 15_000,
  });
  return { port, output: () => output, stop: () => child.kill() };
}

/** A request to send once the receiver's port is known (HubSpot signatures cover the URL). */
type SignedRequest = (port: number) => {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
};

const PATH = "/hooks/lead?q=a%26b";

/** A POST signed the HubSpot way; `previous` signs the -Previous headers, as after a rotation. */
function hubspotSigned(secret: string, previous?: string, deliveryId = "d-0"): SignedRequest {
  return (port) => {
    const body = '{"vid":1}';
    const headers = signatureHeaders({
      clientSecret: secret,
      ...(previous === undefined ? {} : { previousClientSecret: previous }),
      method: "POST",
      // The receivers sit behind a TLS proxy: they rebuild the https:// URL the sender used.
      uri: `https://127.0.0.1:${port}${PATH}`,
      body,
      timestamp: Date.now(),
    });
    return { path: PATH, headers: { ...headers, "X-Delivery-Id": deliveryId }, body };
  };
}

function standardSigned(secret: string, deliveryId: string, body = '{"vid":1}'): SignedRequest {
  const headers = standardWebhookHeaders({ secret, id: deliveryId, body, timestamp: Date.now() });
  return () => ({ path: PATH, headers: { ...headers, "X-Delivery-Id": deliveryId }, body });
}

async function send(port: number, signed: SignedRequest): Promise<number> {
  const request = signed(port);
  const response = await fetch(`http://127.0.0.1:${port}${request.path}`, {
    method: "POST",
    headers: { ...request.headers, "Content-Type": "application/json" },
    body: request.body,
  });
  return response.status;
}

describe("the verifiers, installed from the packed tarball", () => {
  it("install as JavaScript with type declarations and nothing else", () => {
    // Act
    const installed = JSON.parse(
      readFileSync(join(consumer, "node_modules/workflow-webhooks/package.json"), "utf8"),
    );
    const lock = JSON.parse(readFileSync(join(consumer, "package-lock.json"), "utf8"));

    // Assess
    expect(installed.exports["./signatures"]).toEqual({
      types: "./dist/signatures.d.ts",
      default: "./dist/signatures.js",
    });
    expect(Object.keys(lock.packages)).toEqual(["", "node_modules/workflow-webhooks"]);
  });

  it("import with plain Node and verify what the system signs", async () => {
    // Prepare
    const uri = "https://127.0.0.1:4000/hooks/lead?q=a%26b";
    const headers = signatureHeaders({
      clientSecret: "a-receivers-secret",
      method: "POST",
      uri,
      body: '{"vid":1}',
      timestamp: Date.now(),
    });
    writeFileSync(
      join(consumer, "check.mjs"),
      `import { verifyV2, verifyV3 } from "workflow-webhooks/signatures";
const headers = ${JSON.stringify(headers)};
const common = { clientSecret: "a-receivers-secret", method: "POST", uri: ${JSON.stringify(uri)}, body: '{"vid":1}' };
console.log(JSON.stringify({
  v2: verifyV2({ ...common, signature: headers["X-HubSpot-Signature"] }),
  v3: verifyV3({ ...common, timestamp: headers["X-HubSpot-Request-Timestamp"], signature: headers["X-HubSpot-Signature-v3"] }),
  wrong: verifyV3({ ...common, clientSecret: "another", timestamp: headers["X-HubSpot-Request-Timestamp"], signature: headers["X-HubSpot-Signature-v3"] }),
}));
`,
    );

    // Act
    const { stdout } = await run(process.execPath, ["check.mjs"], { cwd: consumer });

    // Assess
    expect(JSON.parse(stdout)).toEqual({ v2: true, v3: true, wrong: false });
  });

  it.each(["readme", "plain", "express"])(
    "let the %s receiver compile under tsc --strict, and it accepts signed requests only",
    async (name) => {
      // Prepare
      const receiver = await startCompiled(name);
      try {
        // Act
        const statuses = [
          await send(receiver.port, hubspotSigned(CLIENT_SECRET)),
          await send(receiver.port, hubspotSigned("not-the-secret-at-all")),
        ];

        // Assess
        expect(statuses).toEqual([name === "readme" ? 204 : 202, 401]);
      } finally {
        receiver.stop();
      }
    },
    PACKAGE_TIMEOUT_MS,
  );

  it.each(["plain", "express"])(
    "the %s receiver of docs/receiving.md verifies both schemes and a rotated secret, and drops repeats",
    async (name) => {
      // Prepare
      const receiver = await startCompiled(name);
      const standard = standardSigned(STANDARD_WEBHOOKS_SECRET, "d-3");
      const otherKey = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;
      try {
        // Act
        const statuses = [
          await send(receiver.port, hubspotSigned(CLIENT_SECRET, undefined, "d-1")),
          await send(receiver.port, hubspotSigned(CLIENT_SECRET, undefined, "d-1")),
          // After a rotation the new secret signs the main headers, this one the -Previous ones.
          await send(receiver.port, hubspotSigned("a-newer-client-secret", CLIENT_SECRET, "d-2")),
          await send(receiver.port, standard),
          await send(receiver.port, standardSigned(otherKey, "d-4")),
          await send(receiver.port, (port) => ({ ...standard(port), body: '{"vid":2}' })),
        ];

        // Assess
        expect(statuses).toEqual([202, 200, 202, 202, 401, 401]);
        await eventually(
          "the receiver to process d-3",
          () => expect(receiver.output()).toContain("processing d-3"),
          { timeoutMs: 10_000 },
        );
        expect(receiver.output().match(/processing d-\d/g)).toEqual([
          "processing d-1",
          "processing d-2",
          "processing d-3",
        ]);
      } finally {
        receiver.stop();
      }
    },
    PACKAGE_TIMEOUT_MS,
  );
});
