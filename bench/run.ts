/**
 * `npm run bench [-- <section>...] [-- --quick]`: measures the webhook lane through the local
 * runtime, prints the figures, and writes docs/performance.md, its charts and the raw results.
 * A section run alone keeps the other sections' last results.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderDocument } from "./report/document.ts";
import {
  describeMachine,
  RESULTS_LAYOUT,
  SECTION_NAMES,
  type SectionName,
  type SectionResults,
  type Stamp,
  type StoredResults,
} from "./results.ts";
import { measureBundles } from "./sections/bundles.ts";
import { computeCost } from "./sections/cost.ts";
import { measureCpu } from "./sections/cpu.ts";
import { measureFairness } from "./sections/fairness.ts";
import { measureLatency } from "./sections/latency.ts";
import { measureRequests } from "./sections/requests.ts";
import { measureScale } from "./sections/scale.ts";
import type { SectionContext } from "./sections/section.ts";
import { measureThroughput } from "./sections/throughput.ts";

const DOCS = new URL("../docs/", import.meta.url);
const RESULTS_FILE = new URL("performance-results.json", DOCS);
const DOCUMENT_FILE = new URL("performance.md", DOCS);

class UsageError extends Error {
  override name = "UsageError";
}

function parseArguments(args: readonly string[]): { sections: SectionName[]; quick: boolean } {
  const quick = args.includes("--quick") || process.env.BENCH_QUICK === "1";
  const named = args.filter((arg) => !arg.startsWith("--"));
  for (const name of named) {
    if (!SECTION_NAMES.includes(name as SectionName)) {
      throw new UsageError(`unknown section "${name}"; sections: ${SECTION_NAMES.join(", ")}`);
    }
  }
  // In the document's order, so that cost follows the request counts it prices.
  const sections = SECTION_NAMES.filter((name) => named.length === 0 || named.includes(name));
  return { sections, quick };
}

function loadResults(log: (line: string) => void): SectionResults {
  if (!existsSync(RESULTS_FILE)) return {};
  const stored = JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as Partial<StoredResults>;
  if (stored.layout !== RESULTS_LAYOUT || !stored.sections) {
    log("The stored results have another layout: starting afresh.");
    return {};
  }
  return stored.sections;
}

function save(results: SectionResults): void {
  mkdirSync(DOCS, { recursive: true });
  const stored: StoredResults = { layout: RESULTS_LAYOUT, sections: results };
  writeFileSync(RESULTS_FILE, `${JSON.stringify(stored, null, 2)}\n`);
  const { markdown, charts } = renderDocument(results);
  writeFileSync(DOCUMENT_FILE, markdown);
  for (const [name, svg] of Object.entries(charts)) writeFileSync(new URL(name, DOCS), svg);
  // The results file is JSON in the repository, so it is kept in the formatter's layout.
  const biome = fileURLToPath(new URL("../node_modules/.bin/biome", import.meta.url));
  if (existsSync(biome)) {
    execFileSync(biome, ["format", "--write", fileURLToPath(RESULTS_FILE)], { stdio: "ignore" });
  }
}

async function main(): Promise<void> {
  const { sections, quick } = parseArguments(process.argv.slice(2));
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const results = loadResults(log);
  const context: SectionContext = { quick, log };
  const measure: Record<SectionName, () => Promise<object>> = {
    latency: () => measureLatency(context),
    throughput: () => measureThroughput(context),
    fairness: () => measureFairness(context),
    cpu: () => measureCpu(context),
    requests: () => measureRequests(context),
    cost: async () => {
      // Priced from the latest request counts: this run's when it measured them.
      if (!results.requests) {
        log("  (no request counts yet: measuring them first)");
        results.requests = await stamped(() => measureRequests(context));
      }
      const { measuredAt, quick: fromQuickRun } = results.requests;
      return { ...computeCost(results.requests), pricedFrom: { measuredAt, quick: fromQuickRun } };
    },
    bundles: () => measureBundles(context),
    scale: () => measureScale(context),
  };

  async function stamped<T extends object>(run: () => Promise<T>): Promise<T & Stamp> {
    const machine = describeMachine();
    const measuredAt = new Date().toISOString();
    const started = performance.now();
    const value = await run();
    return {
      ...value,
      measuredAt,
      quick,
      machine,
      seconds: (performance.now() - started) / 1000,
    };
  }

  const startedAt = performance.now();
  for (const name of sections) {
    log(`${SECTION_NAMES.indexOf(name) + 1}. ${name}${quick ? " (quick)" : ""}`);
    (results as Record<string, unknown>)[name] = await stamped(measure[name]);
    save(results);
  }
  log(
    `Wrote docs/performance.md in ${((performance.now() - startedAt) / 60_000).toFixed(1)} minutes.`,
  );
}

try {
  await main();
} catch (error) {
  process.stderr.write(`${error instanceof UsageError ? error.message : String(error)}\n`);
  if (!(error instanceof UsageError) && error instanceof Error) {
    process.stderr.write(`${error.stack}\n`);
  }
  process.exitCode = 1;
}
