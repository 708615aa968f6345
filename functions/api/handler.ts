import { randomUUID } from "node:crypto";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { AppsTable } from "#adapters/apps-table";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { dynamoDocuments } from "#adapters/dynamodb-client";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { ListsTable } from "#adapters/lists-table";
import { RecordsTable } from "#adapters/records-table";
import { ReplaysTable } from "#adapters/replays-table";
import { RetrySchedules } from "#adapters/retry-schedules";
import { scheduler } from "#adapters/scheduler-client";
import { sqs } from "#adapters/sqs-client";
import { createWebhookClient } from "#adapters/webhook-client";
import { WorkflowEnrollments } from "#adapters/workflow-enrollments";
import { WorkflowsTable } from "#adapters/workflows-table";
import { TEST_ACTION_RESPONSE_TIMEOUT_MS } from "#app/test-action";
import { OpenWorkDeadlines } from "#domain/open-work";
import {
  extraCaCertificates,
  queueUrl,
  retryScheduleGroup,
  runtimeSettings,
  tableNames,
} from "#shared/config";
import { isRouteKey } from "#shared/contract";
import { logger, publishMetrics } from "#shared/observability";
import { errorReply, replyForError, toResult } from "./http.ts";
import { type ApiDeps, operations } from "./routes.ts";

const tables = tableNames(["apps", "workflows", "records", "enrollments", "deliveries"]);
const settings = runtimeSettings();
/** When open work is overdue for the sweeper, on this runtime's clock. */
const deadlines = new OpenWorkDeadlines(settings.timeScale);

const deps: ApiDeps = {
  apps: new AppsTable(dynamoDocuments, tables.apps),
  workflows: new WorkflowsTable(dynamoDocuments, tables.workflows),
  records: new RecordsTable(dynamoDocuments, tables.records),
  enrollments: new EnrollmentsTable(dynamoDocuments, tables.enrollments, deadlines),
  deliveries: new DeliveriesTable(dynamoDocuments, tables.deliveries, deadlines),
  lists: new ListsTable(dynamoDocuments, tables.records),
  workflowEnrollments: new WorkflowEnrollments(dynamoDocuments, tables.enrollments),
  replays: new ReplaysTable(dynamoDocuments, tables.deliveries),
  // Cancelling an enrollment deletes its scheduled retry; the API never schedules one.
  retrySchedules: new RetrySchedules(scheduler, retryScheduleGroup()),
  workflowSteps: new WorkflowStepsQueue(sqs, queueUrl("workflowSteps")),
  webhookLane: new WebhookLaneQueue(sqs, queueUrl("webhookLane")),
  webhookClient: createWebhookClient({
    allowPrivateTargets: settings.allowPrivateTargets,
    ca: extraCaCertificates(),
    responseTimeoutMs: TEST_ACTION_RESPONSE_TIMEOUT_MS,
  }),
  now: Date.now,
  newId: randomUUID,
  portalId: settings.portalId,
  allowPrivateTargets: settings.allowPrivateTargets,
};

/** API Gateway proxy handler: routes the request, maps domain errors to 4xx, never leaks a stack. */
export async function handler(
  event: APIGatewayProxyEvent,
  context: Context,
): Promise<APIGatewayProxyResult> {
  logger.addContext(context);
  const route = `${event.httpMethod} ${event.resource}`;
  const log = logger.createChild({
    persistentKeys: { route, requestId: event.requestContext?.requestId },
  });
  if (!isRouteKey(route)) return toResult(errorReply(404, "not_found", `no route ${route}`));
  try {
    const reply = await operations[route](deps, event);
    log.info("request handled", { statusCode: reply.statusCode });
    return toResult(reply);
  } catch (error) {
    const { reply, expected } = replyForError(error);
    if (expected)
      log.info("request refused", {
        statusCode: reply.statusCode,
        reason: (error as Error).message,
      });
    else log.error("request failed", { error });
    return toResult(reply);
  } finally {
    publishMetrics();
  }
}
