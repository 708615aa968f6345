import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Reporter, TestModule, TestRunEndReason } from "vitest/node";
import { FIGURES_FILE_VARIABLE, type SuiteFigures } from "#test/reliability-figures";

const REPORT = new URL("../../docs/reliability.md", import.meta.url);

/**
 * Collects the figures the attack suites note while `npm run test:reliability` runs, and writes
 * them to `docs/reliability.md` when the run ends: the report is never written by hand.
 */
export default class ReliabilityReporter implements Reporter {
  private readonly directory = mkdtempSync(join(tmpdir(), "reliability-"));
  private readonly figuresFile = join(this.directory, "figures.jsonl");

  constructor() {
    // Set before the test workers start, so that they inherit it.
    process.env[FIGURES_FILE_VARIABLE] = this.figuresFile;
    writeFileSync(this.figuresFile, "");
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, _errors: unknown, reason: TestRunEndReason) {
    const figures = readFileSync(this.figuresFile, "utf8")
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as SuiteFigures)
      .sort((a, b) => a.suite.localeCompare(b.suite));
    const tests = modules.flatMap((module) => [...module.children.allTests()]);
    const passed = tests.filter((test) => test.result().state === "passed").length;
    const failed = tests.filter((test) => test.result().state === "failed").length;
    writeFileSync(REPORT, renderReport(figures, { passed, failed, reason }));
    rmSync(this.directory, { recursive: true, force: true });
  }
}

const TOTALS: ReadonlyArray<readonly [keyof SuiteFigures, string, string]> = [
  ["inputs", "Inputs tried", ""],
  ["serverErrors", "5xx seen", "must be 0"],
  ["faultsInjected", "Faults injected", ""],
  ["faultsSurvived", "Faults survived", "must equal the faults injected"],
  ["stuck", "Work stuck", "must be 0"],
  ["duplicates", "Duplicates", "requests a receiver saw twice"],
  ["secretsFound", "Secrets found", "must be 0"],
];

function renderReport(
  figures: readonly SuiteFigures[],
  run: { passed: number; failed: number; reason: TestRunEndReason },
): string {
  const sum = (key: keyof SuiteFigures) =>
    figures.reduce((total, each) => total + (Number(each[key]) || 0), 0);
  const cell = (value: unknown) => (value === undefined ? "" : String(value));
  const lines = [
    "# Reliability",
    "",
    "Written by `npm run test:reliability` from what its attack suites tried and saw; do not edit",
    "by hand. The suites are in `test/attack` (also part of `npm test`) and `test/reliability`.",
    "",
    `Last run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${run.passed} tests passed, ${run.failed} failed (${run.reason}).`,
    "",
    "| figure | total | |",
    "|---|---:|---|",
    ...TOTALS.map(([key, label, rule]) => `| ${label} | ${sum(key)} | ${rule} |`),
    "",
    "## By suite",
    "",
    "| suite | inputs | 5xx | faults injected | survived | stuck | duplicates | secrets found | notes |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ...figures.map(
      (each) =>
        `| ${each.suite} | ${each.inputs} | ${cell(each.serverErrors)} | ${cell(each.faultsInjected)} | ${cell(each.faultsSurvived)} | ${cell(each.stuck)} | ${cell(each.duplicates)} | ${cell(each.secretsFound)} | ${cell(each.notes)} |`,
    ),
    "",
  ];
  return lines.join("\n");
}
