/**
 * The receiver's side of the package, as a new user meets it: `npm pack` here, `npm install` of
 * the tarball in a plain Node project, a plain `import` of the verifiers with no TypeScript
 * loader, and the README's receiver compiled under `tsc --strict` and run against signed requests.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signatureHeaders } from "#domain/signatures";
import { freePort, waitUntil } from "#infra/local/net";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const tsc = join(root, "node_modules/typescript/bin/tsc");
/** npm pack builds the verifiers first; installing and compiling take a few seconds each. */
const PACKAGE_TIMEOUT_MS = 180_000;

let work: string;
let consumer: string;

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
}, PACKAGE_TIMEOUT_MS);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

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

  it(
    "let the README's receiver compile under tsc --strict, and it accepts signed requests only",
    async () => {
      // Prepare
      const readme = readFileSync(join(root, "README.md"), "utf8");
      const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
        .map((match) => match[1] ?? "")
        .find((code) => code.includes('from "workflow-webhooks/signatures"'));
      expect(snippet).toBeDefined();
      writeFileSync(join(consumer, "receiver.ts"), snippet ?? "");
      writeFileSync(
        join(consumer, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            outDir: "out",
            // The receiver's project would install @types/node; this one borrows ours.
            typeRoots: [join(root, "node_modules/@types")],
            types: ["node"],
            skipLibCheck: true,
          },
          files: ["receiver.ts"],
        }),
      );
      const port = await freePort();

      // Act
      await run(process.execPath, [tsc, "-p", "."], { cwd: consumer });
      const secret = "the-readme-secret-1234";
      const receiver = execFile(process.execPath, ["out/receiver.js"], {
        cwd: consumer,
        env: { ...process.env, CLIENT_SECRET: secret, PORT: String(port) },
      });
      try {
        const send = async (clientSecret: string) => {
          const url = `http://127.0.0.1:${port}/hooks/lead?q=a%26b`;
          const body = '{"vid":1}';
          const uri = url.replace(/^http:/, "https:");
          const headers = signatureHeaders({
            clientSecret,
            method: "POST",
            uri,
            body,
            timestamp: Date.now(),
          });
          return (await fetch(url, { method: "POST", headers, body })).status;
        };
        await waitUntil(() => fetch(`http://127.0.0.1:${port}/`), 10_000);
        const statuses = [await send(secret), await send("not-the-secret-at-all")];

        // Assess
        expect(statuses).toEqual([204, 401]);
      } finally {
        receiver.kill();
      }
    },
    PACKAGE_TIMEOUT_MS,
  );
});
