/**
 * 7. Bundles and init: each function bundled by esbuild as the stack bundles it, its size and
 * biggest inputs, and the time a fresh Node process takes to import it (its clients are built
 * at import), with the variables the stack gives it.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, version as esbuildVersion } from "esbuild";
import { esbuildOptions } from "#infra/function-bundling";
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
    const probe = join(directory, "import-probe.mjs");
    writeFileSync(
      probe,
      [
        "const started = performance.now();",
        "await import(process.argv[2]);",
        "process.stdout.write(JSON.stringify({ importMs: performance.now() - started }));",
        "process.exit(0);",
      ].join("\n"),
    );
    for (const fn of deployed) {
      const outfile = join(directory, fn.service, "index.mjs");
      // The stack's own options (infra/function-bundling.ts), so the two cannot drift apart.
      const result = await build({
        ...esbuildOptions(join("functions", fn.service, "handler.ts"), outfile),
        target,
        metafile: true,
        logLevel: "warning",
      });
      if (!result.metafile) throw new Error(`esbuild wrote no metafile for ${fn.service}`);
      const env: Record<string, string> = { AWS_REGION: "us-east-1" };
      for (const [name, value] of Object.entries(fn.environment)) {
        env[name] = typeof value === "string" ? value : placeholder(name, value);
      }
      const { NODE_OPTIONS: nodeOptions = "", ...withoutNodeOptions } = env;
      const asDeployed = await timeImports(probe, outfile, env, runs);
      const withoutMaps = await timeImports(probe, outfile, withoutNodeOptions, runs);
      const bundle: BundleResult = {
        name: fn.service,
        bytes: statSync(outfile).size,
        mapBytes: statSync(`${outfile}.map`).size,
        ...biggestInputs(result.metafile, `${fn.service}/index.mjs`),
        importMs: median(asDeployed.importMs),
        importMsWithoutSourceMaps: median(withoutMaps.importMs),
        processMs: median(asDeployed.processMs),
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

interface Metafile {
  readonly outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
}

/** The inputs and packages that take the most bytes of the output. */
function biggestInputs(
  metafile: Metafile,
  outputEnding: string,
): Pick<BundleResult, "topInputs" | "topPackages"> {
  const output = Object.entries(metafile.outputs).find(([path]) =>
    path.endsWith(outputEnding),
  )?.[1];
  const inputs = Object.entries(output?.inputs ?? {}).map(([path, input]) => ({
    path,
    bytes: input.bytesInOutput,
  }));
  const packages = new Map<string, number>();
  for (const input of inputs) {
    const name = packageOf(input.path);
    packages.set(name, (packages.get(name) ?? 0) + input.bytes);
  }
  return {
    topInputs: inputs.sort((a, b) => b.bytes - a.bytes).slice(0, TOP_INPUTS),
    topPackages: [...packages]
      .map(([name, bytes]) => ({ name, bytes }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, TOP_PACKAGES),
  };
}

/** `@scope/name` or `name` of a node_modules path; the project's own code otherwise. */
function packageOf(path: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  return match?.[1] ?? "(this project)";
}

/** Imports the bundle in `runs` fresh processes, one after another. */
async function timeImports(
  probe: string,
  bundle: string,
  env: Record<string, string>,
  runs: number,
): Promise<{ importMs: number[]; processMs: number[] }> {
  const importMs: number[] = [];
  const processMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [probe, pathToFileURL(bundle).href],
        { env: { PATH: process.env.PATH ?? "", ...env } },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      );
    });
    processMs.push(performance.now() - started);
    importMs.push((JSON.parse(output) as { importMs: number }).importMs);
  }
  return { importMs, processMs };
}
