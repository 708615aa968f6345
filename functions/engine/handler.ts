import type { SQSRecord } from "aws-lambda";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { dynamoDocuments } from "#adapters/dynamodb-client";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { ReplaysTable } from "#adapters/replays-table";
import { sqs } from "#adapters/sqs-client";
import { DEFAULT_REPLAY_PACE, type ReplayStepDeps, runReplayStep } from "#app/replays";
import { runWorkflowStep, type WorkflowStepsDeps } from "#app/workflow-steps";
import {
  parseStepsLaneMessage,
  type ReplayStepMessage,
  type WorkflowStepMessage,
} from "#domain/messages";
import { OpenWorkDeadlines } from "#domain/open-work";
import { queueUrl, runtimeSettings, tableNames } from "#shared/config";
import { queues } from "#shared/contract";
import { logger, metricNames, metrics } from "#shared/observability";
import { sqsConsumer } from "#shared/sqs-consumer";

const tables = tableNames(["records", "enrollments", "deliveries"]);
const settings = runtimeSettings();
/** When open work is overdue for the sweeper, on this runtime's clock. */
const deadlines = new OpenWorkDeadlines(settings.timeScale);

const deps: WorkflowStepsDeps = {
  enrollments: new EnrollmentsTable(dynamoDocuments, tables.enrollments, deadlines),
  records: new RecordsTable(dynamoDocuments, tables.records),
  deliveries: new DeliveriesTable(dynamoDocuments, tables.deliveries, deadlines),
  workflowSteps: new WorkflowStepsQueue(sqs, queueUrl("workflowSteps")),
  webhookLane: new WebhookLaneQueue(sqs, queueUrl("webhookLane")),
  now: Date.now,
  timeScale: settings.timeScale,
  portalId: settings.portalId,
  stalledAfterMs: queues.workflowSteps.consumerTimeoutSeconds * 1000,
};

const replayDeps: ReplayStepDeps = {
  replays: new ReplaysTable(dynamoDocuments, tables.deliveries),
  deliveries: deps.deliveries,
  workflowSteps: deps.workflowSteps,
  webhookLane: deps.webhookLane,
  now: Date.now,
  pace: DEFAULT_REPLAY_PACE,
  // A step's consumer may run this long, and the next step waits as long as the step's sends.
  stalledAfterMs:
    (queues.workflowSteps.consumerTimeoutSeconds +
      DEFAULT_REPLAY_PACE.perStep / DEFAULT_REPLAY_PACE.perSecond) *
    1000,
};

async function processMessage(record: SQSRecord): Promise<void> {
  const message = parseStepsLaneMessage(record.body);
  if (message.type === "replay") return processReplayStep(message);
  return processStep(message);
}

async function processReplayStep(message: ReplayStepMessage): Promise<void> {
  const log = logger.createChild({
    persistentKeys: { replayId: message.replayId, replayStep: message.step },
  });
  try {
    const report = await runReplayStep(replayDeps, message);
    log.info("replay step", { ...report });
    if (report.kind === "stepped" && report.refired > 0) {
      metrics.addMetric(metricNames.deliveryReplayed, "Count", report.refired);
    }
  } catch (error) {
    log.error("replay step failed", { error });
    throw error;
  }
}

async function processStep(message: WorkflowStepMessage): Promise<void> {
  const log = logger.createChild({
    persistentKeys: {
      enrollmentId: message.enrollmentId,
      actionIndex: message.actionIndex,
      step: message.type,
    },
  });
  try {
    const report = await runWorkflowStep(deps, message);
    log.info("workflow step", { ...report });
    if (report.kind === "finished" && report.enrollmentStatus === "completed") {
      metrics.addMetric(metricNames.enrollmentCompleted, "Count", 1);
    }
  } catch (error) {
    log.error("workflow step failed", { error });
    throw error;
  }
}

/** Consumes the workflow-steps lane: workflow steps, and the steps of replays. */
export const handler = sqsConsumer(processMessage);
