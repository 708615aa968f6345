import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { type LocalAws, startLocalAws } from "#test/local-aws";

let aws: LocalAws;

beforeAll(async () => {
  aws = await startLocalAws();
});

afterAll(async () => {
  await aws?.stop();
});

async function receiveOne(queueUrl: string) {
  const { Messages } = await aws.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 1,
      MessageSystemAttributeNames: ["All"],
      AttributeNames: ["All"],
    }),
  );
  return Messages?.[0];
}

describe("the lanes' queues", () => {
  it("put each webhook-lane message in its receiver's group, for SQS fair queues", async () => {
    // Prepare
    const url = aws.resources.queues.webhookLane.url;
    const lane = new WebhookLaneQueue(aws.sqs, url);

    // Act
    await lane.send({ deliveryId: "d1", attempt: 1, host: "hooks.example.com:8443" });
    const received = await receiveOne(url);

    // Assess
    expect(received?.Attributes?.MessageGroupId).toBe("hooks.example.com:8443");
    expect(JSON.parse(received?.Body ?? "")).toEqual({
      deliveryId: "d1",
      attempt: 1,
      host: "hooks.example.com:8443",
    });
  });

  it("name an over-long receiver's group by its hash, within SQS's 128 characters", async () => {
    const url = aws.resources.queues.webhookLane.url;
    const host = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.example.com`;

    await new WebhookLaneQueue(aws.sqs, url).send({ deliveryId: "d2", attempt: 1, host });
    const received = await receiveOne(url);

    expect(received?.Attributes?.MessageGroupId).toMatch(/^[0-9a-f]{64}$/);
  });

  it("send workflow steps without a group", async () => {
    const url = aws.resources.queues.workflowSteps.url;

    await new WorkflowStepsQueue(aws.sqs, url).send({
      type: "advance",
      enrollmentId: "e",
      actionIndex: 0,
    });
    const received = await receiveOne(url);

    expect(received?.Attributes?.MessageGroupId).toBeUndefined();
    expect(JSON.parse(received?.Body ?? "")).toMatchObject({ type: "advance" });
  });
});
