/**
 * Bundles each function the way the stack does and reports what it costs: the bundle's size, the
 * inputs that take the most room in it, and how long a fresh `node` takes to import it (which
 * constructs its clients), as the median of several runs.
 *
 *   npx tsx scripts/bundle-report.ts [function ...] [--runs=20] [--source-maps] [--json]
 *
 * `--source-maps` imports with `--enable-source-maps`, as the stack's NODE_OPTIONS runs the
 * functions on Lambda; Node then reads each bundle's source map while loading it.
 *
 * The import runs with dummy values for every variable a handler reads at start-up and nothing
 * from this shell's environment, so it never reaches AWS: nothing is sent at import.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { build, type Metafile } from "esbuild";
import { esbuildOptions, PROJECT_ROOT } from "#infra/function-bundling";
import { metrics, queues, retryScheduler, tables } from "#shared/contract";
import { median } from "../bench/stats.ts";

/** Imports timed per function, unless `--runs` says otherwise. */
const DEFAULT_RUNS = 20;
/** Inputs listed per function: enough to see where the bytes are. */
const TOP_INPUTS = 12;
const REGION = "eu-west-1";
const ACCOUNT = "123456789012";

export interface ReportOptions {
  /** Fresh imports to time. */
  readonly runs: number;
  /** Import with `--enable-source-maps`, as on Lambda. */
  readonly sourceMaps: boolean;
}

export interface InitTiming {
  /** Wall-clock milliseconds from the start of the import to its end. */
  readonly wallMs: number;
  /** CPU milliseconds the process spent meanwhile; steadier than wall time on a busy machine. */
  readonly cpuMs: number;
  /** Wall-clock milliseconds from starting the process to its end. */
  readonly processMs: number;
}

export interface BundleReport {
  readonly name: string;
  readonly bytes: number;
  /** Bytes each package (or source file of the project) contributes, largest first. */
  readonly topInputs: ReadonlyArray<{ readonly input: string; readonly bytes: number }>;
  /** One per run. */
  readonly init: readonly InitTiming[];
  /** Median wall-clock milliseconds of the import. */
  readonly initMedianMs: number;
  /** Median CPU milliseconds of the import. */
  readonly initCpuMedianMs: number;
}

/** The functions: every `functions/<name>/handler.ts`. */
export function functionNames(): string[] {
  return readdirSync(join(PROJECT_ROOT, "functions"))
    .filter((name) => existsSync(join(PROJECT_ROOT, "functions", name, "handler.ts")))
    .sort();
}

/** A function's bundle as the stack builds it: its size, its source map's, and esbuild's metafile. */
export interface BuiltBundle {
  readonly outfile: string;
  readonly bytes: number;
  readonly mapBytes: number;
  readonly metafile: Metafile;
}

/** Bundles `functions/<name>/handler.ts` into `<outdir>/<name>/index.mjs` with the stack's options. */
export async function bundleFunction(
  name: string,
  outdir: string,
  overrides: { readonly target?: string } = {},
): Promise<BuiltBundle> {
  const outfile = join(outdir, name, "index.mjs");
  const { metafile } = await build({
    ...esbuildOptions(`functions/${name}/handler.ts`, outfile),
    ...overrides,
    metafile: true,
    logLevel: "warning",
  });
  return {
    outfile,
    bytes: statSync(outfile).size,
    mapBytes: statSync(`${outfile}.map`).size,
    metafile,
  };
}

/** Bundles `functions/<name>/handler.ts` into `outdir` and times fresh imports of it. */
export async function reportBundle(
  name: string,
  outdir: string,
  options: ReportOptions = { runs: DEFAULT_RUNS, sourceMaps: false },
): Promise<BundleReport> {
  const { outfile, bytes, metafile } = await bundleFunction(name, outdir);
  const env = {
    ...contractEnvironment(name),
    ...(options.sourceMaps ? { NODE_OPTIONS: "--enable-source-maps" } : {}),
  };
  const init: InitTiming[] = [];
  for (let run = 0; run < options.runs; run += 1) init.push(await timeImport(outfile, env));
  return {
    name,
    bytes,
    topInputs: bytesByPackage(metafile).slice(0, TOP_INPUTS),
    init,
    initMedianMs: median(init.map((timing) => timing.wallMs)),
    initCpuMedianMs: median(init.map((timing) => timing.cpuMs)),
  };
}

/** Bytes each input file contributes to the output, largest first. */
export function bytesByInput(metafile: Metafile): Array<{ path: string; bytes: number }> {
  return Object.values(metafile.outputs)
    .flatMap((output) =>
      Object.entries(output.inputs).map(([path, input]) => ({ path, bytes: input.bytesInOutput })),
    )
    .sort((a, b) => b.bytes - a.bytes);
}

/** What each package (by its name under node_modules) or project file adds to the output. */
function bytesByPackage(metafile: Metafile): Array<{ input: string; bytes: number }> {
  const totals = new Map<string, number>();
  for (const { path, bytes } of bytesByInput(metafile)) {
    const input = packageOf(path) ?? path;
    totals.set(input, (totals.get(input) ?? 0) + bytes);
  }
  return [...totals].map(([input, bytes]) => ({ input, bytes })).sort((a, b) => b.bytes - a.bytes);
}

/** `@scope/name` or `name` of a path under node_modules; undefined for the project's own files. */
export function packageOf(path: string): string | undefined {
  const at = path.lastIndexOf("node_modules/");
  if (at < 0) return undefined;
  const [first, second] = path.slice(at + "node_modules/".length).split("/");
  return first?.startsWith("@") ? `${first}/${second}` : first;
}

const INIT_PROBE = `
const cpuBefore = process.cpuUsage();
const started = performance.now();
await import("./index.mjs");
const wallMs = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(JSON.stringify({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 }));
`;

/**
 * One fresh `node` importing the bundle, as Lambda's init does, with `env` and nothing of this
 * shell's environment but PATH (`NODE_OPTIONS` in `env` turns source maps on, as the stack does).
 */
export async function timeImport(
  outfile: string,
  env: Readonly<Record<string, string>>,
): Promise<InitTiming> {
  const started = performance.now();
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--input-type=module", "-e", INIT_PROBE],
    { cwd: join(outfile, ".."), env: { PATH: process.env.PATH ?? "", ...env } },
  );
  const processMs = performance.now() - started;
  const timing = JSON.parse(stdout) as Partial<InitTiming>;
  if (!Number.isFinite(timing.wallMs) || !Number.isFinite(timing.cpuMs)) {
    throw new Error(`${outfile}: the import printed ${JSON.stringify(stdout)}`);
  }
  return { wallMs: timing.wallMs as number, cpuMs: timing.cpuMs as number, processMs };
}

/**
 * What a function sees on Lambda, with dummy values: every table, queue and scheduler variable of
 * the contract (a handler reads its own at import and fails without them), the Powertools
 * settings the team function sets, and the variables Lambda itself provides.
 */
function contractEnvironment(name: string): Record<string, string> {
  const env: Record<string, string> = {
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
    AWS_LAMBDA_FUNCTION_NAME: `bundle-report-${name}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "512",
    AWS_ACCESS_KEY_ID: "AKIDBUNDLEREPORT",
    AWS_SECRET_ACCESS_KEY: "bundle-report-secret",
    AWS_SESSION_TOKEN: "bundle-report-token",
    ALLOW_PRIVATE_TARGETS: "false",
    POWERTOOLS_SERVICE_NAME: name,
    POWERTOOLS_METRICS_NAMESPACE: metrics.namespace,
    POWERTOOLS_LOG_LEVEL: "INFO",
    POWERTOOLS_LOGGER_LOG_EVENT: "false",
    [retryScheduler.groupEnvVar]: retryScheduler.defaultGroupName,
    [retryScheduler.roleArnEnvVar]: `arn:aws:iam::${ACCOUNT}:role/retries`,
    [retryScheduler.deadLetterArnEnvVar]: `arn:aws:sqs:${REGION}:${ACCOUNT}:retries-dlq`,
  };
  for (const table of Object.values(tables)) env[table.envVar] = `bundle-report-${table.name}`;
  for (const queue of Object.values(queues)) {
    env[queue.urlEnvVar] = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${queue.name}`;
    if ("arnEnvVar" in queue) {
      env[queue.arnEnvVar] = `arn:aws:sqs:${REGION}:${ACCOUNT}:${queue.name}`;
    }
  }
  return env;
}

const kB = (bytes: number) => `${(bytes / 1000).toFixed(1)} kB`;

function printReport(report: BundleReport): void {
  const init = `init median ${report.initMedianMs.toFixed(0)} ms (${report.initCpuMedianMs.toFixed(0)} ms CPU) over ${report.init.length} runs`;
  console.log(`${report.name}: ${kB(report.bytes)} (${report.bytes} bytes); ${init}`);
  for (const { input, bytes } of report.topInputs) {
    console.log(`  ${kB(bytes).padStart(10)}  ${input}`);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: "string" },
      "source-maps": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const runs = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error("--runs must be a whole number ≥ 1");
  const known = functionNames();
  const names = positionals.length === 0 ? known : positionals;
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`no such function: ${unknown.join(", ")}`);

  if (!values.json) {
    const [load = 0] = loadavg();
    const cores = availableParallelism();
    console.log(`load average ${load.toFixed(1)} on ${cores} cores; wall times grow with it\n`);
  }
  const outdir = mkdtempSync(join(tmpdir(), "bundle-report-"));
  try {
    const reports: BundleReport[] = [];
    for (const name of names) {
      const report = await reportBundle(name, outdir, { runs, sourceMaps: values["source-maps"] });
      reports.push(report);
      if (!values.json) printReport(report);
    }
    if (values.json) console.log(JSON.stringify(reports, null, 2));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

// Run as a script, not when a benchmark imports `reportBundle`.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
