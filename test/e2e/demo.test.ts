import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
/** The demo starts its own DynamoDB Local and walks three attempts; a busy machine is slow. */
const DEMO_TIMEOUT_MS = 240_000;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm run demo", () => {
  it(
    "tells the whole story, a receiver failing twice included, then stops what it started and exits",
    async () => {
      // Act
      const { stdout } = await run(
        process.execPath,
        [resolve(root, "node_modules/tsx/dist/cli.mjs"), "infra/local/demo.ts"],
        {
          cwd: root,
          env: { ...process.env, RETRY_TIME_SCALE: "0.001" },
          timeout: DEMO_TIMEOUT_MS,
          maxBuffer: 16 * 1024 * 1024,
        },
      );

      // Assess
      const received = stdout.match(
        /<- POST https:\/\/127\.0\.0\.1:\d+\/hooks\/lead\?source=demo/g,
      );
      expect(received).toHaveLength(3);
      expect(stdout.match(/signatures: v2 verified, v3 verified/g)).toHaveLength(3);
      expect(stdout.match(/answered 503/g)).toHaveLength(2);
      expect(stdout).toMatch(/answered 200\n/);
      expect(stdout).toContain("The enrollment is completed");
      expect(stdout).toMatch(/attempt 2: 503, due 1\.\d min after the first/);
      expect(stdout).toMatch(/attempt 3: 200, due 3\.\d min after the first/);
      expect(stdout).toContain("synced_to_crm = true");
      expect(stdout).toContain("email history: ada@example.com <- old@example.com");
      expect(stdout.trimEnd().endsWith("Done.")).toBe(true);
      const pid = Number(/DynamoDB Local pid (\d+)/.exec(stdout)?.[1]);
      expect(pid).toBeGreaterThan(0);
      expect(isRunning(pid)).toBe(false);
    },
    DEMO_TIMEOUT_MS + 10_000,
  );
});
