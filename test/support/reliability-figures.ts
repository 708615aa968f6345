import { appendFileSync } from "node:fs";

/** The variable naming the file where a reliability run collects its suites' figures. */
export const FIGURES_FILE_VARIABLE = "RELIABILITY_FIGURES_FILE";

/** What one attack suite tried and saw; `docs/reliability.md` adds them up. */
export interface SuiteFigures {
  /** What was attacked, in a few words. */
  readonly suite: string;
  /** Inputs, requests or targets tried. */
  readonly inputs: number;
  /** Responses with a 5xx status. */
  readonly serverErrors?: number;
  readonly faultsInjected?: number;
  /** Injected faults after which everything still ended as it should. */
  readonly faultsSurvived?: number;
  /** Enrollments or deliveries that never ended. */
  readonly stuck?: number;
  /** Requests a receiver saw more than once (same delivery, same attempt). */
  readonly duplicates?: number;
  /** Occurrences of a client secret or API-key value where it must not be. */
  readonly secretsFound?: number;
  /** One line on what else was measured. */
  readonly notes?: string;
}

/**
 * Notes a suite's figures for the report of `npm run test:reliability`; outside that run (in
 * `npm test`) it does nothing.
 */
export function reportFigures(figures: SuiteFigures): void {
  const file = process.env[FIGURES_FILE_VARIABLE];
  if (file) appendFileSync(file, `${JSON.stringify(figures)}\n`);
}
