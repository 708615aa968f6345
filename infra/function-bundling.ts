/**
 * How every function is bundled, written once: the team function construct hands these options
 * to CDK's esbuild bundling, and `scripts/bundle-report.ts` hands the same ones to esbuild
 * directly, so the size and start-up time a report shows are those of what the stack deploys.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildOptions } from "esbuild";

/** The repository root, where `package.json` and the lock file are. */
export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The esbuild options of a function bundle, in esbuild's own terms. */
export interface FunctionBundling {
  /** esbuild's target; the Node.js version of the Lambda runtime the team function uses. */
  readonly target: string;
  readonly format: "esm";
  readonly mainFields: readonly string[];
  readonly minify: boolean;
  readonly sourcemap: boolean;
  readonly sourcesContent: boolean;
  readonly banner: string;
  readonly tsconfig: string;
  /** Packages replaced by other modules, paths relative to the project root. */
  readonly alias: Readonly<Record<string, string>>;
  /** Identifiers replaced by JSON values throughout the code. */
  readonly define: Readonly<Record<string, string>>;
}

const packageJson = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
  version: string;
};

export const functionBundling: FunctionBundling = {
  target: "node24",
  format: "esm",
  mainFields: ["module", "main"],
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  // Some dependencies are CommonJS and call `require`; an ES module has none of its own.
  banner:
    "import { createRequire as topLevelCreateRequire } from 'node:module'; const require = topLevelCreateRequire(import.meta.url);",
  tsconfig: join(PROJECT_ROOT, "tsconfig.json"),
  alias: {
    // On Lambda credentials are always in the environment; the module says why this pays.
    "@aws-sdk/credential-provider-node": "./functions/shared/adapters/lambda-credentials.ts",
    // None of the clients the functions use streams events; the module says what that saves.
    "@smithy/core/event-streams": "./functions/shared/adapters/without-event-streams.ts",
  },
  // The version the User-Agent of webhooks names (functions/shared/version.ts reads it from
  // package.json when running unbundled, so both say the same).
  define: { WORKFLOW_WEBHOOKS_VERSION: JSON.stringify(packageJson.version) },
};

/** The aliases as esbuild's command line spells them, for CDK's `esbuildArgs`. */
export function aliasArguments(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(functionBundling.alias).map(([name, path]) => [`--alias:${name}`, path]),
  );
}

/**
 * The build of one handler as CDK runs it (`--bundle --platform=node`, nothing external since the
 * AWS SDK is bundled too), for esbuild's JavaScript API.
 */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [join(PROJECT_ROOT, entry)],
    outfile,
    bundle: true,
    platform: "node",
    target: functionBundling.target,
    format: functionBundling.format,
    mainFields: [...functionBundling.mainFields],
    minify: functionBundling.minify,
    sourcemap: functionBundling.sourcemap,
    sourcesContent: functionBundling.sourcesContent,
    banner: { js: functionBundling.banner },
    tsconfig: functionBundling.tsconfig,
    alias: { ...functionBundling.alias },
    define: { ...functionBundling.define },
  };
}
