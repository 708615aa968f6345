import { randomUUID } from "node:crypto";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { RecordsTable } from "#adapters/records-table";
import { newEnrollment } from "#domain/enrollment";
import { type LocalAws, startLocalAws } from "#test/local-aws";
import { sqsEvent } from "#test/sqs-records";

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

let aws: LocalAws;
let engine: SqsHandler;
let deliver: SqsHandler;
const context = {
  functionName: "test",
  awsRequestId: "r-1",
  getRemainingTimeInMillis: () => 30_000,
} as Context;

beforeAll(async () => {
  aws = await startLocalAws();
  // The handlers read their configuration once, when imported.
  Object.assign(process.env, aws.env, {
    WEBHOOK_LANE_QUEUE_ARN: aws.resources.queues.webhookLane.arn,
    RETRY_SCHEDULE_GROUP: "webhook-retries",
    RETRY_SCHEDULER_ROLE_ARN: "arn:aws:iam::123456789012:role/fire",
    POWERTOOLS_LOG_LEVEL: "SILENT",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_TRACE_ENABLED: "false",
  });
  engine = (await import("../../functions/engine/handler.ts")).handler as SqsHandler;
  deliver = (await import("../../functions/deliver/handler.ts")).handler as SqsHandler;
});

afterAll(async () => {
  await aws?.stop();
});

describe("partial batch responses", () => {
  it("fails only the malformed message of an engine batch; its neighbours are processed", async () => {
    // Prepare
    const objectId = randomUUID();
    const enrollment = newEnrollment({
      enrollmentId: randomUUID(),
      workflowId: randomUUID(),
      objectType: "deals",
      objectId,
      definition: [{ id: "a1", type: "setProperty", property: "stage", value: "won" }],
      now: Date.now(),
    });
    await new EnrollmentsTable(aws.documents, aws.resources.tables.enrollments).create(enrollment);

    // Act
    const response = await engine(
      sqsEvent(
        [
          "not json",
          JSON.stringify({
            type: "advance",
            enrollmentId: enrollment.enrollmentId,
            actionIndex: 0,
          }),
          JSON.stringify({ type: "teleport", enrollmentId: "x", actionIndex: 0 }),
        ],
        { queueArn: aws.resources.queues.workflowSteps.arn },
      ),
      context,
    );

    // Assess
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: "m-0" },
      { itemIdentifier: "m-2" },
    ]);
    const record = await new RecordsTable(aws.documents, aws.resources.tables.records).get({
      objectType: "deals",
      objectId,
    });
    expect(record?.properties.stage?.[0]?.value).toBe("won");
    const stored = await new EnrollmentsTable(aws.documents, aws.resources.tables.enrollments).get(
      enrollment.enrollmentId,
    );
    expect(stored?.status).toBe("completed");
  });

  it("fails only the malformed message of a deliver batch", async () => {
    // Act
    const response = await deliver(
      sqsEvent(
        [JSON.stringify({ deliveryId: "unknown", attempt: 1 }), JSON.stringify({ attempt: 0 })],
        { queueArn: aws.resources.queues.webhookLane.arn },
      ),
      context,
    );

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m-1" }]);
  });
});
