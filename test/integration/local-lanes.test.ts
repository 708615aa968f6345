import { createHash } from "node:crypto";
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  inject,
  it,
  onTestFinished,
} from "vitest";
import { localCredentials, localRegion } from "#infra/local/net";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";
import { queues } from "#shared/contract";
import { eventually } from "#test/eventually";

type Consumer = (event: SQSEvent) => Promise<SQSBatchResponse>;

const succeedAll: Consumer = async () => ({ batchItemFailures: [] });

describe("local queue pollers", () => {
  let runtime: LocalRuntime;
  let sqs: SQSClient;
  let engine: Consumer;
  let deliver: Consumer;

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: "local-lanes-",
      logLevel: "SILENT",
      visibilityTimeoutSeconds: 1,
      maxConcurrency: { workflowSteps: 2, webhookLane: 1 },
      handlers: {
        api: async () => ({ statusCode: 200, body: "{}" }),
        engine: (event) => engine(event),
        deliver: (event) => deliver(event),
      },
    });
    sqs = new SQSClient({
      endpoint: runtime.env.AWS_ENDPOINT_URL_SQS,
      region: localRegion,
      credentials: localCredentials,
    });
  });

  afterAll(async () => {
    sqs?.destroy();
    await runtime?.stop();
  });

  beforeEach(() => {
    engine = succeedAll;
    deliver = succeedAll;
  });

  it("invokes the consumer with batches of SQS records and deletes what succeeded", async () => {
    // Prepare
    const batches: SQSRecord[][] = [];
    engine = async (event) => {
      batches.push(event.Records);
      return { batchItemFailures: [] };
    };
    const bodies = Array.from({ length: 30 }, (_, index) => JSON.stringify({ step: index }));
    const queue = runtime.resources.queues.workflowSteps;

    // Act
    for (let start = 0; start < bodies.length; start += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: bodies.slice(start, start + 10).map((body, index) => ({
            Id: String(index),
            MessageBody: body,
            MessageAttributes: { kind: { DataType: "String", StringValue: "advance" } },
          })),
        }),
      );
    }
    await eventually(
      "every message to reach the consumer",
      () => expect(batches.flat()).toHaveLength(bodies.length),
      { timeoutMs: 10_000 },
    );

    // Assess
    const records = batches.flat();
    expect(records.map((record) => record.body).sort()).toEqual([...bodies].sort());
    expect(Math.max(...batches.map((batch) => batch.length))).toBeGreaterThan(1);
    expect(Math.max(...batches.map((batch) => batch.length))).toBeLessThanOrEqual(
      queues.workflowSteps.batchSize,
    );
    const [record] = records as [SQSRecord];
    expect(record).toMatchObject({
      eventSource: "aws:sqs",
      eventSourceARN: queue.arn,
      awsRegion: localRegion,
      md5OfBody: createHash("md5").update(record.body).digest("hex"),
      messageAttributes: { kind: { dataType: "String", stringValue: "advance" } },
      attributes: { ApproximateReceiveCount: "1" },
    });
    expect(Number(record.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(Number(record.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThan(0);
    await eventually(
      "the queue to empty",
      async () => expect(await depth(sqs, queue.url)).toBe(0),
      { timeoutMs: 5_000 },
    );
  });

  it("redelivers only the item a partial batch response names", async () => {
    // Prepare
    const seen: { body: string; receiveCount: string }[] = [];
    deliver = async (event) => {
      for (const record of event.Records) {
        seen.push({ body: record.body, receiveCount: record.attributes.ApproximateReceiveCount });
      }
      return {
        batchItemFailures: event.Records.filter(
          (record) =>
            record.body === "fail-once" && record.attributes.ApproximateReceiveCount === "1",
        ).map((record) => ({ itemIdentifier: record.messageId })),
      };
    };
    const queue = runtime.resources.queues.webhookLane;

    // Act
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: ["ok-1", "fail-once", "ok-2"].map((body, index) => ({
          Id: String(index),
          MessageBody: body,
        })),
      }),
    );
    await eventually(
      "the failed item's second delivery",
      () => expect(seen.filter((item) => item.body === "fail-once")).toHaveLength(2),
      { timeoutMs: 10_000 },
    );
    await eventually(
      "the queue to empty",
      async () => expect(await depth(sqs, queue.url)).toBe(0),
      { timeoutMs: 5_000 },
    );

    // Assess
    expect(seen.filter((item) => item.body === "ok-1")).toHaveLength(1);
    expect(seen.filter((item) => item.body === "ok-2")).toHaveLength(1);
    expect(
      seen.filter((item) => item.body === "fail-once").map((item) => item.receiveCount),
    ).toEqual(["1", "2"]);
  });

  it("keeps the whole batch when the consumer throws", async () => {
    // Prepare
    const attempts = new Map<string, number>();
    engine = async (event) => {
      const bodies = event.Records.map((record) => record.body);
      for (const body of bodies) attempts.set(body, (attempts.get(body) ?? 0) + 1);
      if (bodies.some((body) => attempts.get(body) === 1)) throw new Error("engine crashed");
      return { batchItemFailures: [] };
    };
    const queue = runtime.resources.queues.workflowSteps;

    // Act
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: ["crash-a", "crash-b"].map((body, index) => ({
          Id: String(index),
          MessageBody: body,
        })),
      }),
    );
    await eventually(
      "the whole batch to be redelivered and then deleted",
      async () => {
        expect(attempts.get("crash-a")).toBeGreaterThanOrEqual(2);
        expect(attempts.get("crash-b")).toBeGreaterThanOrEqual(2);
        expect(await depth(sqs, queue.url)).toBe(0);
      },
      { timeoutMs: 10_000 },
    );

    // Assess
    expect(attempts.get("crash-a")).toBe(2);
    expect(attempts.get("crash-b")).toBe(2);
  });

  it("moves a message that always fails to the dead-letter queue after maxReceiveCount", async () => {
    // Prepare
    const receiveCounts: string[] = [];
    deliver = async (event) => ({
      batchItemFailures: event.Records.filter((record) => record.body === "poison").map(
        (record) => {
          receiveCounts.push(record.attributes.ApproximateReceiveCount);
          return { itemIdentifier: record.messageId };
        },
      ),
    });
    const queue = runtime.resources.queues.webhookLane;

    // Act
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "poison" }));
    const deadLettered = await receiveOne(sqs, queue.deadLetterUrl, 20_000);

    // Assess
    expect(deadLettered).toBe("poison");
    expect(receiveCounts).toEqual(
      Array.from({ length: queues.webhookLane.maxReceiveCount }, (_, index) => String(index + 1)),
    );
  });

  it("keeps the workflow-steps lane moving while the webhook lane hangs", async () => {
    // Prepare
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    onTestFinished(() => release());
    let hanging = 0;
    deliver = async () => {
      hanging++;
      await released;
      return { batchItemFailures: [] };
    };
    const stepsHandledAt: number[] = [];
    engine = async (event) => {
      if (event.Records.some((record) => record.body === "step-while-lane-hangs")) {
        stepsHandledAt.push(hanging);
      }
      return { batchItemFailures: [] };
    };
    const lane = runtime.resources.queues.webhookLane;
    await sqs.send(new SendMessageCommand({ QueueUrl: lane.url, MessageBody: "slow-receiver" }));
    await eventually("the webhook lane to hang", () => expect(hanging).toBeGreaterThan(0), {
      timeoutMs: 5_000,
    });

    // Act
    const sentAt = Date.now();
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: runtime.resources.queues.workflowSteps.url,
        MessageBody: "step-while-lane-hangs",
      }),
    );
    await eventually("the workflow step", () => expect(stepsHandledAt).toHaveLength(1), {
      timeoutMs: 5_000,
    });
    const elapsed = Date.now() - sentAt;

    // Assess
    expect(stepsHandledAt[0]).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(500);
  });
});

async function depth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

async function receiveOne(sqs: SQSClient, queueUrl: string, timeoutMs: number): Promise<string> {
  return eventually(
    `a message on ${queueUrl}`,
    async () => {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 }),
      );
      const body = Messages?.[0]?.Body;
      if (body === undefined) throw new Error(`nothing on ${queueUrl} yet`);
      return body;
    },
    { timeoutMs },
  );
}
