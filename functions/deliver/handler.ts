import type { SQSRecord } from "aws-lambda";
import { AppsTable } from "#adapters/apps-table";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { dynamoDocuments } from "#adapters/dynamodb-client";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { RetrySchedules } from "#adapters/retry-schedules";
import { scheduler } from "#adapters/scheduler-client";
import { sqs } from "#adapters/sqs-client";
import { createWebhookClient } from "#adapters/webhook-client";
import {
  AttemptInFlightError,
  type AttemptReport,
  type DeliveryAttemptsDeps,
  makeDeliveryAttempt,
  RetryScheduleError,
} from "#app/delivery-attempts";
import { ATTEMPT_LEASE_MS } from "#domain/delivery";
import { HostAdmission } from "#domain/host-admission";
import { parseDeliveryAttemptMessage } from "#domain/messages";
import { OpenWorkDeadlines } from "#domain/open-work";
import {
  extraCaCertificates,
  queueUrl,
  retrySchedulerSettings,
  runtimeSettings,
  tableNames,
} from "#shared/config";
import { logger, metricNames, metrics } from "#shared/observability";
import { sqsConsumer } from "#shared/sqs-consumer";

const tables = tableNames(["apps", "deliveries", "enrollments", "records"]);
const settings = runtimeSettings();
/** When open work is overdue for the sweeper, on this runtime's clock. */
const deadlines = new OpenWorkDeadlines(settings.timeScale);

const deps: DeliveryAttemptsDeps = {
  deliveries: new DeliveriesTable(dynamoDocuments, tables.deliveries, deadlines),
  enrollments: new EnrollmentsTable(dynamoDocuments, tables.enrollments, deadlines),
  records: new RecordsTable(dynamoDocuments, tables.records),
  apps: new AppsTable(dynamoDocuments, tables.apps),
  workflowSteps: new WorkflowStepsQueue(sqs, queueUrl("workflowSteps")),
  webhookLane: new WebhookLaneQueue(sqs, queueUrl("webhookLane")),
  retrySchedules: new RetrySchedules(scheduler, retrySchedulerSettings()),
  webhookClient: createWebhookClient({
    allowPrivateTargets: settings.allowPrivateTargets,
    ca: extraCaCertificates(),
  }),
  // One per instance: it shares out this instance's part of the lane among receivers.
  admission: new HostAdmission(),
  now: Date.now,
  random: Math.random,
  leaseMs: ATTEMPT_LEASE_MS,
};

async function processAttempt(record: SQSRecord): Promise<void> {
  const message = parseDeliveryAttemptMessage(record.body);
  const log = logger.createChild({
    persistentKeys: { deliveryId: message.deliveryId, attempt: message.attempt },
  });
  try {
    const report = await makeDeliveryAttempt(deps, message);
    recordReport(log, report);
  } catch (error) {
    if (error instanceof AttemptInFlightError) {
      log.warn("attempt in flight elsewhere; message will return", { reason: error.message });
    } else {
      if (error instanceof RetryScheduleError)
        metrics.addMetric(metricNames.retryScheduleFailed, "Count", 1);
      log.error("delivery attempt failed", { error });
    }
    throw error;
  }
}

function recordReport(log: typeof logger, report: AttemptReport): void {
  if (report.kind === "skipped") {
    log.info("attempt skipped", { reason: report.reason });
    return;
  }
  if (report.kind === "deferred") {
    log.info("attempt deferred", { reason: report.reason, delayMs: report.delayMs });
    metrics.addMetric(metricNames.deliveryDeferred, "Count", 1);
    return;
  }
  if (report.paused) metrics.addMetric(metricNames.deliveryPaused, "Count", 1);
  const { delivery, attempt, verdict } = report;
  log.info("delivery attempt", {
    enrollmentId: delivery.enrollmentId,
    workflowId: delivery.workflowId,
    actionId: delivery.actionId,
    outcome: verdict.status,
    ...(report.paused ? { paused: true } : {}),
    statusCode: attempt.statusCode,
    error: attempt.error,
    durationMs: attempt.durationMs,
    scheduledAt: new Date(attempt.scheduledAt).toISOString(),
    ...(verdict.status === "retrying"
      ? { nextAttemptAt: new Date(verdict.nextAttemptAt).toISOString() }
      : {}),
    ...(verdict.status === "failed" ? { failureReason: verdict.reason } : {}),
  });
  if (!report.paused)
    metrics.addMetric(metricNames.deliveryLatency, "Milliseconds", attempt.durationMs);
  if (report.fromSchedule) metrics.addMetric(metricNames.retryFired, "Count", 1);
  if (verdict.status === "succeeded") metrics.addMetric(metricNames.deliverySucceeded, "Count", 1);
  // The webhook lane finishes a webhook action itself: when it was the last, so is the enrollment.
  if (report.enrollmentCompleted) metrics.addMetric(metricNames.enrollmentCompleted, "Count", 1);
  if (verdict.status === "failed") metrics.addMetric(metricNames.deliveryFailed, "Count", 1);
  if (verdict.status === "retrying") {
    metrics.addMetric(metricNames.deliveryRetried, "Count", 1);
    metrics.addMetric(metricNames.retryScheduled, "Count", 1);
  }
}

/** Consumes the webhook lane: one attempt per message, in parallel within a batch. */
export const handler = sqsConsumer(processAttempt);
