import { randomUUID } from "node:crypto";
import type { DynamoDBRecord } from "aws-lambda";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { dynamoDocuments } from "#adapters/dynamodb-client";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { recordChangeOf, type StreamImage } from "#adapters/record-changes";
import { RecordsTable } from "#adapters/records-table";
import { sqs } from "#adapters/sqs-client";
import { WorkflowsTable } from "#adapters/workflows-table";
import {
  enrollOnChange,
  type TriggeredWorkflows,
  triggeredWorkflowsOnce,
} from "#app/enrollment-triggers";
import type { EnrollDeps } from "#app/enrollments";
import { OpenWorkDeadlines } from "#domain/open-work";
import { queueUrl, runtimeSettings, tableNames } from "#shared/config";
import { logger, metricNames, metrics } from "#shared/observability";
import { streamConsumer } from "#shared/stream-consumer";

const tables = tableNames(["workflows", "records", "enrollments", "deliveries"]);
const settings = runtimeSettings();
const deadlines = new OpenWorkDeadlines(settings.timeScale);

// The same dependencies as the API's enroll: a triggered enrollment starts exactly as one through
// the API, its first webhook action included.
const deps: EnrollDeps = {
  workflows: new WorkflowsTable(dynamoDocuments, tables.workflows),
  records: new RecordsTable(dynamoDocuments, tables.records),
  enrollments: new EnrollmentsTable(dynamoDocuments, tables.enrollments, deadlines),
  deliveries: new DeliveriesTable(dynamoDocuments, tables.deliveries, deadlines),
  workflowSteps: new WorkflowStepsQueue(sqs, queueUrl("workflowSteps")),
  webhookLane: new WebhookLaneQueue(sqs, queueUrl("webhookLane")),
  now: Date.now,
  newId: randomUUID,
  portalId: settings.portalId,
};

async function processChange(
  record: DynamoDBRecord,
  triggeredWorkflows: TriggeredWorkflows,
): Promise<void> {
  const log = logger.createChild({
    persistentKeys: { eventID: record.eventID, sequenceNumber: record.dynamodb?.SequenceNumber },
  });
  try {
    const change = recordChangeOf(
      record.eventName,
      record.dynamodb?.OldImage as StreamImage | undefined,
      record.dynamodb?.NewImage as StreamImage | undefined,
    );
    if (!change) return;
    const outcomes = await enrollOnChange(deps, triggeredWorkflows, change);
    for (const outcome of outcomes) {
      log.info("triggered enrollment", {
        ...outcome,
        objectType: change.after.objectType,
        objectId: change.after.objectId,
        revision: change.revision,
      });
      if (outcome.kind === "enrolled") {
        metrics.addMetric(metricNames.enrollmentTriggered, "Count", 1);
        metrics.addMetric(metricNames.enrollmentStarted, "Count", 1);
      }
    }
  } catch (error) {
    log.error("record change failed", { error });
    throw error;
  }
}

/**
 * Consumes the records table's stream: a change that fails is reported by its sequence number,
 * and the shard resumes there when it is retried. The trigger index is read once per object type
 * for the whole batch.
 */
export const handler = streamConsumer(() => triggeredWorkflowsOnce(deps.workflows), processChange);
