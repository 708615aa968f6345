import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import { describe, expect, inject, it } from "vitest";
import { listen, localCredentials, localRegion, sleep } from "#infra/local/net";
import { type LocalRuntimeHandlers, startLocalRuntime } from "#infra/local/runtime";
import { queues, tables, visibilityTimeoutSeconds } from "#shared/contract";
import { eventually } from "#test/eventually";

/** Starting Java takes seconds, more on a busy machine. */
const JAVA_TEST_TIMEOUT_MS = 90_000;

const fakeHandlers: LocalRuntimeHandlers = {
  api: async () => ({ statusCode: 200, body: JSON.stringify({ ok: true }) }),
  engine: async () => ({ batchItemFailures: [] }),
  deliver: async () => ({ batchItemFailures: [] }),
};

describe("local runtime", () => {
  it("creates every table and queue of the definitions and points the functions at them", async () => {
    // Prepare
    const prefix = "local-runtime-";
    const runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: prefix,
      logLevel: "SILENT",
      handlers: fakeHandlers,
    });
    const config = { region: localRegion, credentials: localCredentials };
    const dynamodb = new DynamoDBClient({
      ...config,
      endpoint: runtime.env.AWS_ENDPOINT_URL_DYNAMODB,
    });
    const sqs = new SQSClient({ ...config, endpoint: runtime.env.AWS_ENDPOINT_URL_SQS });

    try {
      // Act
      const described = await Promise.all(
        Object.values(tables).map(async (table) => ({
          table,
          description: (
            await dynamodb.send(new DescribeTableCommand({ TableName: runtime.env[table.envVar] }))
          ).Table,
          ttl: (
            await dynamodb.send(
              new DescribeTimeToLiveCommand({ TableName: runtime.env[table.envVar] }),
            )
          ).TimeToLiveDescription,
        })),
      );
      const queueAttributes = await Promise.all(
        Object.values(queues).map(async (queue) => ({
          queue,
          attributes: (
            await sqs.send(
              new GetQueueAttributesCommand({
                QueueUrl: runtime.env[queue.urlEnvVar],
                AttributeNames: ["All"],
              }),
            )
          ).Attributes,
          deadLetterUrl: (
            await sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}${queue.name}-dlq` }))
          ).QueueUrl,
        })),
      );

      // Assess
      for (const { table, description, ttl } of described) {
        expect(description?.TableName).toBe(`${prefix}${table.name}`);
        expect(description?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
        expect(description?.KeySchema).toEqual([
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ]);
        const expiry = "ttlAttribute" in table ? table.ttlAttribute : undefined;
        expect(ttl?.AttributeName).toBe(expiry);
        expect(ttl?.TimeToLiveStatus).toBe(expiry ? "ENABLED" : "DISABLED");
        expect(process.env[table.envVar]).toBe(`${prefix}${table.name}`);
      }
      for (const { queue, attributes, deadLetterUrl } of queueAttributes) {
        expect(attributes?.VisibilityTimeout).toBe(String(visibilityTimeoutSeconds(queue)));
        expect(attributes?.MessageRetentionPeriod).toBe(String(queue.messageRetentionSeconds));
        expect(attributes?.MaximumMessageSize).toBe(String(queue.maximumMessageSizeBytes));
        expect(JSON.parse(attributes?.RedrivePolicy ?? "{}")).toEqual({
          deadLetterTargetArn: expect.stringMatching(new RegExp(`:${prefix}${queue.name}-dlq$`)),
          maxReceiveCount: queue.maxReceiveCount,
        });
        expect(deadLetterUrl).toBeTruthy();
        expect(process.env[queue.urlEnvVar]).toBe(runtime.env[queue.urlEnvVar]);
      }
      expect(runtime.env.WEBHOOK_LANE_QUEUE_ARN).toBe(queueAttributes[1]?.attributes?.QueueArn);
      expect(runtime.env).toMatchObject({
        AWS_ENDPOINT_URL_SCHEDULER: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        RETRY_SCHEDULE_GROUP: expect.any(String),
        RETRY_SCHEDULER_ROLE_ARN: expect.stringMatching(/^arn:aws:iam::\d{12}:role\//),
        ALLOW_PRIVATE_TARGETS: "true",
        POWERTOOLS_LOG_LEVEL: "SILENT",
        POWERTOOLS_METRICS_DISABLED: "true",
      });
    } finally {
      dynamodb.destroy();
      sqs.destroy();
      await runtime.stop();
    }
    expect(process.env.AWS_ENDPOINT_URL_SQS).toBeUndefined();
  });

  it("starts its own DynamoDB Local when given none and stops everything it started", {
    timeout: JAVA_TEST_TIMEOUT_MS,
  }, async () => {
    // Prepare
    await sleep(100);
    const resourcesBefore = activeResources();
    const runtime = await startLocalRuntime({ logLevel: "SILENT", handlers: fakeHandlers });
    const pid = runtime.dynamoDbLocalPid as number;
    const answered = await fetch(`${runtime.apiUrl}/health`).then((response) => response.json());

    // Act
    await runtime.stop();

    // Assess
    expect(answered).toEqual({ ok: true });
    expect(pid).toBeGreaterThan(0);
    expect(isRunning(pid)).toBe(false);
    // Closed handles leave Node's list on a later turn of the event loop.
    await eventually(
      "the closed handles to go",
      () => expect(activeResources()).toEqual(resourcesBefore),
      { timeoutMs: 2_000 },
    );
    await expect(fetch(`${runtime.apiUrl}/health`)).rejects.toThrow();
  });

  it("stops what it had started when starting fails", {
    timeout: JAVA_TEST_TIMEOUT_MS,
  }, async () => {
    // Prepare
    const taken = createServer();
    const port = await listen(taken, 0, "127.0.0.1");
    const javaBefore = javaChildren();

    // Act
    const starting = startLocalRuntime({ port, logLevel: "SILENT", handlers: fakeHandlers });

    // Assess
    await expect(starting).rejects.toMatchObject({ code: "EADDRINUSE" });
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    expect(javaChildren()).toEqual(javaBefore);
    expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBeUndefined();
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The Java processes this test process started. */
function javaChildren(): string[] {
  try {
    return execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], {
      encoding: "utf8",
    })
      .split("\n")
      .filter((line) => line.includes("java"));
  } catch {
    // ps exits non-zero when this process has no children at all.
    return [];
  }
}

/** Servers, sockets and child processes this process holds, by kind (timers excluded). */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind !== "Timeout") counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}
