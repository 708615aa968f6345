import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { listen, loopback } from "#infra/local/net";
import {
  OpensslMissingError,
  PortInUseError,
  receiverCertificate,
  startWebhookReceiver,
} from "#infra/local/webhook-receiver";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const dirs: string[] = [];
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "example-receiver-"));
  dirs.push(dir);
  return dir;
};

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs `npm run receiver` as a user would, until it exits; for the runs that fail to start. */
async function receiverFails(env: Record<string, string>) {
  const result = await run(
    process.execPath,
    [resolve(root, "node_modules/tsx/dist/cli.mjs"), "infra/local/example-receiver.ts"],
    { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 },
  ).then(
    () => ({ code: 0, stderr: "" }),
    (error: { code: number; stderr: string }) => error,
  );
  return { code: result.code, lines: result.stderr.trim().split("\n") };
}

describe("the example receiver", () => {
  it("keeps its certificate across restarts, so a system that trusts it goes on working", () => {
    // Prepare
    const dir = freshDir();

    // Act
    const first = receiverCertificate(dir);
    const second = receiverCertificate(dir);

    // Assess
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.cert).toBe(first.cert);
    expect(second.certFile).toBe(first.certFile);
  });

  it("replaces a kept certificate that is about to lapse", () => {
    // Prepare
    const dir = freshDir();
    const first = receiverCertificate(dir);

    // Act: a year less half a day later
    const later = receiverCertificate(dir, Date.now() + 364.5 * 24 * 3600 * 1000);

    // Assess
    expect(later.created).toBe(true);
    expect(later.cert).not.toBe(first.cert);
  });

  it("throws an OpensslMissingError when there is no openssl to make a certificate", () => {
    // Prepare
    const path = process.env.PATH;
    process.env.PATH = freshDir();

    // Act
    const make = () => receiverCertificate(freshDir());

    // Assess
    try {
      expect(make).toThrow(OpensslMissingError);
    } finally {
      process.env.PATH = path;
    }
  });

  it("says in one line that openssl is missing", async () => {
    // Prepare
    const env = { TMPDIR: freshDir(), PATH: freshDir() };

    // Act
    const { code, lines } = await receiverFails(env);

    // Assess
    expect(code).toBe(1);
    expect(lines).toEqual([
      "Receiver not started: openssl is needed to make the receiver's certificate; install it (apt-get install openssl, brew install openssl)",
    ]);
  });

  it("says in one line that its port is busy, and which variable chooses another", async () => {
    // Prepare
    const busy = createServer();
    const port = await listen(busy, 0, loopback);

    // Act
    const { code, lines } = await receiverFails({
      TMPDIR: freshDir(),
      RECEIVER_PORT: String(port),
    }).finally(() => busy.close());

    // Assess
    expect(code).toBe(1);
    expect(lines).toEqual([
      `Receiver not started: port ${port} on 127.0.0.1 is already in use; choose another with RECEIVER_PORT`,
    ]);
  });

  it("refuses a busy port with a PortInUseError", async () => {
    // Prepare
    const busy = createServer();
    const port = await listen(busy, 0, loopback);
    const certificate = receiverCertificate(freshDir());

    // Act
    const start = startWebhookReceiver({
      certificate,
      port,
      secrets: {},
      failFirst: 0,
      onWebhook: () => {},
    });

    // Assess
    await expect(start).rejects.toThrow(PortInUseError);
    busy.close();
  });
});
