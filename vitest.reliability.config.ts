import { defineConfig } from "vitest/config";

/**
 * `npm run test:reliability`: every attack suite, the slow ones of `test/reliability` included,
 * and the report of what they tried and saw in `docs/reliability.md`.
 */
export default defineConfig({
  test: {
    include: ["test/attack/**/*.test.ts", "test/reliability/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    testTimeout: 600_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/support/reliability-reporter.ts"],
    // The API fuzz tries a few hundred requests in `npm test`, ten thousand here.
    env: { API_FUZZ_RUNS: "10000" },
  },
});
