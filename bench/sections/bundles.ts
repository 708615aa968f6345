/**
 * 7. Bundles and init: each function bundled by esbuild as the stack bundles it, its size and
 * biggest inputs, and the time a fresh Node process takes to import it (its clients are built
 * at import), with the variables the stack gives it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { version as esbuildVersion } from "esbuild";
import {
  bundleFunction,
  bytesByInput,
  packageOf,
  timeImport,
} from "../../scripts/bundle-report.ts";
import type { BundleResult, BundlesResult } from "../results.ts";
import { deployedFunctions } from "../stack.ts";
import { median } from "../stats.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";

const TOP_INPUTS = 5;
const TOP_PACKAGES = 6;

/** Placeholder values for the variables the stack fills in at deploy time. */
function placeholder(name: string, token: unknown): string {
  const id = JSON.stringify(token)
    .replace(/[^A-Za-z0-9]/g, "")
    .slice(0, 40);
  if (name.endsWith("_URL")) return `https://sqs.us-east-1.amazonaws.com/123456789012/${id}`;
  if (name.endsWith("_ARN")) return `arn:aws:sqs:us-east-1:123456789012:${id}`;
  return id;
}

/** Fresh processes per function and variant; the median is reported. */
const RUNS: RunSizes<number> = { full: 20, quick: 5 };

export async function measureBundles(context: SectionContext): Promise<BundlesResult> {
  const runs = sizesFor(context, RUNS);
  const directory = mkdtempSync(join(tmpdir(), "bundles-"));
  const functions: BundleResult[] = [];
  const deployed = deployedFunctions();
  const target = `node${deployed[0]?.runtime.replace(/\D/g, "") || "20"}`;
  try {
    for (const fn of deployed) {
      // The stack's own options (infra/function-bundling.ts), so the two cannot drift apart.
      const built = await bundleFunction(fn.service, directory, { target });
      const env: Record<string, string> = { AWS_REGION: "us-east-1" };
      for (const [name, value] of Object.entries(fn.environment)) {
        env[name] = typeof value === "string" ? value : placeholder(name, value);
      }
      const { NODE_OPTIONS: nodeOptions = "", ...withoutNodeOptions } = env;
      const asDeployed = await timeImports(built.outfile, env, runs);
      const withoutMaps = await timeImports(built.outfile, withoutNodeOptions, runs);
      const bundle: BundleResult = {
        name: fn.service,
        bytes: built.bytes,
        mapBytes: built.mapBytes,
        ...biggestInputs(bytesByInput(built.metafile)),
        importMs: median(asDeployed.map((timing) => timing.wallMs)),
        importMsWithoutSourceMaps: median(withoutMaps.map((timing) => timing.wallMs)),
        processMs: median(asDeployed.map((timing) => timing.processMs)),
      };
      functions.push(bundle);
      context.log(
        `  ${fn.service}: ${(bundle.bytes / 1024).toFixed(0)} KiB, import ${bundle.importMs.toFixed(0)} ms (median of ${runs}; ${nodeOptions || "no NODE_OPTIONS"})`,
      );
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  return {
    esbuild: esbuildVersion,
    options: `--bundle --platform=node --format=esm --target=${target} --minify --sourcemap --sources-content=false --main-fields=module,main --banner:js=<createRequire> (AWS SDK bundled)`,
    runs,
    functions,
  };
}

/** The inputs and packages that take the most bytes of the output. */
function biggestInputs(
  inputs: ReadonlyArray<{ path: string; bytes: number }>,
): Pick<BundleResult, "topInputs" | "topPackages"> {
  const packages = new Map<string, number>();
  for (const input of inputs) {
    const name = packageOf(input.path) ?? "(this project)";
    packages.set(name, (packages.get(name) ?? 0) + input.bytes);
  }
  return {
    topInputs: inputs.slice(0, TOP_INPUTS),
    topPackages: [...packages]
      .map(([name, bytes]) => ({ name, bytes }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, TOP_PACKAGES),
  };
}

/** Imports the bundle in `runs` fresh processes, one after another. */
async function timeImports(outfile: string, env: Record<string, string>, runs: number) {
  const timings = [];
  for (let run = 0; run < runs; run++) timings.push(await timeImport(outfile, env));
  return timings;
}
