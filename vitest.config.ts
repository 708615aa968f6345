import { defineConfig } from "vitest/config";

/** Starts the run's one DynamoDB Local; only the projects that talk to it list it. */
const DYNAMODB_LOCAL_SETUP = ["test/support/global-setup.ts"];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // Pure domain code: worker threads start faster than processes.
          pool: "threads",
        },
      },
      {
        extends: true,
        test: {
          name: "infra",
          include: ["test/infra/**/*.test.ts"],
          // One process runs every file without resetting modules, so aws-cdk-lib is loaded and
          // the default stack synthesized once (test/support/synth.ts). Safe because the files
          // only read the shared stack and build anything else in apps of their own. Not a
          // thread: CDK hands process.stderr to esbuild when it bundles, which a worker thread
          // cannot do. The price of one process: a test that blocks it for over a minute (the
          // CloudFormation checks can, on an overloaded machine) fails, and the files after it
          // in that process go unreported in that failing run.
          pool: "forks",
          poolOptions: { forks: { singleFork: true, isolate: false } },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: DYNAMODB_LOCAL_SETUP,
          // Processes, not threads: these tests set process.env, start child processes and
          // count the handles and children of their own process.
          pool: "forks",
        },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: DYNAMODB_LOCAL_SETUP,
          pool: "forks",
        },
      },
      {
        extends: true,
        test: {
          // Hostile input and receivers against the local system; the slow suites of
          // test/reliability run only in `npm run test:reliability`.
          name: "attack",
          include: ["test/attack/**/*.test.ts"],
          globalSetup: DYNAMODB_LOCAL_SETUP,
          pool: "forks",
        },
      },
    ],
  },
});
