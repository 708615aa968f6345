import type { Context } from "aws-lambda";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { dynamoDocuments } from "#adapters/dynamodb-client";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { sqs } from "#adapters/sqs-client";
import { type SweeperDeps, type SweepFinding, sweepOpenWork } from "#app/sweeper";
import { OpenWorkDeadlines } from "#domain/open-work";
import { queueUrl, runtimeSettings, tableNames } from "#shared/config";
import { logger, metricNames, metrics, publishMetrics } from "#shared/observability";

const tables = tableNames(["enrollments", "deliveries", "records"]);
const deadlines = new OpenWorkDeadlines(runtimeSettings().timeScale);

const deps: SweeperDeps = {
  enrollments: new EnrollmentsTable(dynamoDocuments, tables.enrollments, deadlines),
  deliveries: new DeliveriesTable(dynamoDocuments, tables.deliveries, deadlines),
  records: new RecordsTable(dynamoDocuments, tables.records),
  workflowSteps: new WorkflowStepsQueue(sqs, queueUrl("workflowSteps")),
  webhookLane: new WebhookLaneQueue(sqs, queueUrl("webhookLane")),
  now: Date.now,
  deadlines,
};

/** Kept back at the end of a run, so that its findings are logged and counted before it stops. */
const STOP_MARGIN_MS = 10_000;

/** Some overdue work could not be looked at; the next run looks again. */
export class SweepIncompleteError extends Error {
  override name = "SweepIncompleteError";
}

/** What a run did, by kind of finding. */
export type SweepSummary = Record<SweepFinding["kind"], number> & { readonly complete: boolean };

/**
 * Runs on a schedule: one sweep of the open-work index. Every repair is logged with the ids of
 * the work it concerns and counted (SweeperResumed, SweeperFailed), which an alarm watches. A run
 * in which some work could not be looked at fails after logging, so that it counts as an error.
 */
export async function handler(_event: unknown, context: Context): Promise<SweepSummary> {
  logger.addContext(context);
  try {
    const run = await sweepOpenWork({
      ...deps,
      timeLeftMs: () => context.getRemainingTimeInMillis() - STOP_MARGIN_MS,
    });
    const summary: SweepSummary = {
      resumed: 0,
      failed: 0,
      postponed: 0,
      cleared: 0,
      skipped: 0,
      error: 0,
      complete: run.complete,
    };
    for (const finding of run.findings) {
      summary[finding.kind] += 1;
      logFinding(finding);
    }
    metrics.addMetric(metricNames.sweeperExamined, "Count", run.findings.length);
    if (summary.resumed > 0)
      metrics.addMetric(metricNames.sweeperResumed, "Count", summary.resumed);
    if (summary.failed > 0) metrics.addMetric(metricNames.sweeperFailed, "Count", summary.failed);
    logger.info("sweep run", { ...summary });
    if (summary.error > 0) {
      throw new SweepIncompleteError(
        `${summary.error} overdue items could not be looked at; the next run tries again`,
      );
    }
    return summary;
  } finally {
    publishMetrics();
  }
}

function logFinding(finding: SweepFinding): void {
  const { kind, ...details } = finding;
  if (finding.kind === "error") {
    logger.error("sweeper could not look at overdue work", { ...details, sweep: kind });
  } else if (kind === "resumed" || kind === "failed") {
    logger.warn("sweeper repair", { ...details, repair: kind });
  } else {
    logger.info("sweeper finding", { ...details, sweep: kind });
  }
}
