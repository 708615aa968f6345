import type { SQSRecord } from "aws-lambda";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { dynamoDocuments } from "#adapters/dynamodb-client";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { sqs } from "#adapters/sqs-client";
import { runWorkflowStep, type WorkflowStepsDeps } from "#app/workflow-steps";
import { parseWorkflowStepMessage } from "#domain/messages";
import { queueUrl, runtimeSettings, tableNames } from "#shared/config";
import { queues } from "#shared/contract";
import { logger, metricNames, metrics } from "#shared/observability";
import { sqsConsumer } from "#shared/sqs-consumer";

const tables = tableNames(["records", "enrollments", "deliveries"]);
const settings = runtimeSettings();

const deps: WorkflowStepsDeps = {
  enrollments: new EnrollmentsTable(dynamoDocuments, tables.enrollments),
  records: new RecordsTable(dynamoDocuments, tables.records),
  deliveries: new DeliveriesTable(dynamoDocuments, tables.deliveries),
  workflowSteps: new WorkflowStepsQueue(sqs, queueUrl("workflowSteps")),
  webhookLane: new WebhookLaneQueue(sqs, queueUrl("webhookLane")),
  now: Date.now,
  timeScale: settings.timeScale,
  portalId: settings.portalId,
  stalledAfterMs: queues.workflowSteps.consumerTimeoutSeconds * 1000,
};

async function processStep(record: SQSRecord): Promise<void> {
  const message = parseWorkflowStepMessage(record.body);
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

/** Consumes the workflow-steps lane. */
export const handler = sqsConsumer(processStep);
