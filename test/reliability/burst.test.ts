import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localCredentials, localRegion } from "#infra/local/net";
import { metrics as metricDefinitions } from "#shared/contract";
import { eventually } from "#test/eventually";
import {
  type ReceivedRequest,
  type ReceiverAnswer,
  startReceiver,
  type TestReceiver,
} from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";
import { reportFigures } from "#test/reliability-figures";

/**
 * A burst of enrollments over 20 workflows and 5 receivers, one of which fails half its requests,
 * through the local system with every function's log and metric line captured. Every delivery
 * must end, the counts in DynamoDB, at the receivers and in the metrics must agree exactly,
 * nothing may be left on a queue or a schedule, and no client secret or API-key value may appear
 * in any log line, metric line or API response (the receivers echo their requests back, to tempt
 * the attempt log into showing them).
 */
const ENROLLMENTS = Number(process.env.BURST_ENROLLMENTS ?? 10_000);
const WORKFLOWS = 20;
const RECEIVERS = 5;
const RECORDS = Math.ceil(ENROLLMENTS / WORKFLOWS);
/** The receiver that fails half its requests with a 503. */
const FLAKY = RECEIVERS - 1;
/** Requests in flight from the test's clients at once. */
const CLIENTS = 25;
const END_TIMEOUT_MS = 45 * 60_000;
const POLL_MS = 5_000;
const names = metricDefinitions.names;

let system: LocalSystem;
let call: LocalSystem["call"];
let dynamodb: DynamoDBClient;
let sqs: SQSClient;
const receivers: TestReceiver[] = [];
/** What the flaky receiver answered, in the order of its requests. */
const flakyStatuses: number[] = [];
/** Secrets the system must never show after they were given to it. */
const secrets: string[] = [];
const captured = {
  lines: 0,
  metricLines: 0,
  secretsInOutput: 0,
  secretsInResponses: 0,
  responses: 0,
};
const metricSums = new Map<string, { sum: number; samples: number }>();
let restoreOutput: (() => void) | undefined;

/** Counts secrets in one piece of text, in every form the redaction knows. */
function secretsIn(text: string): number {
  let found = 0;
  for (const secret of secrets) {
    for (const form of [secret, encodeURIComponent(secret)]) {
      found += text.split(form).length - 1;
    }
  }
  return found;
}

/**
 * Reads the process's own stdout and stderr while the functions run in it: every log line is
 * searched for secrets, every metric line (CloudWatch embedded metric format) is added up.
 */
function captureOutput(): () => void {
  const originals = { out: process.stdout.write, err: process.stderr.write };
  let pending = "";
  const take = (chunk: unknown) => {
    pending +=
      typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8");
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) readLine(line);
  };
  process.stdout.write = ((chunk: unknown) => {
    take(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown) => {
    take(chunk);
    return true;
  }) as typeof process.stderr.write;
  return () => {
    readLine(pending);
    process.stdout.write = originals.out;
    process.stderr.write = originals.err;
  };
}

function readLine(line: string): void {
  if (line.trim() === "") return;
  captured.lines += 1;
  captured.secretsInOutput += secretsIn(line);
  if (!line.includes('"_aws"')) return;
  captured.metricLines += 1;
  const emf = JSON.parse(line) as Record<string, unknown> & {
    _aws: { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> };
  };
  for (const { Name } of emf._aws.CloudWatchMetrics.flatMap((set) => set.Metrics)) {
    const values = ([] as number[]).concat(emf[Name] as number | number[]);
    const entry = metricSums.get(Name) ?? { sum: 0, samples: 0 };
    entry.sum += values.reduce((a, b) => a + b, 0);
    entry.samples += values.length;
    metricSums.set(Name, entry);
  }
}

const metric = (name: string) => metricSums.get(name) ?? { sum: 0, samples: 0 };

/** Calls the API, searching every response for secrets. */
async function checkedCall(method: string, path: string, body?: unknown) {
  const response = await call(method, path, body);
  captured.responses += 1;
  captured.secretsInResponses += secretsIn(JSON.stringify(response.body ?? ""));
  return response;
}

/** Runs `work` for each item, `CLIENTS` at a time. */
async function inParallel<T>(items: readonly T[], work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

/** Every item of a table, unmarshalled. */
async function scan(table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamodb.send(
      new ScanCommand({
        TableName: table,
        ConsistentRead: true,
        ExclusiveStartKey: start as never,
      }),
    );
    for (const item of page.Items ?? []) items.push(unmarshall(item));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Echoes the request back, as a careless receiver's error page might. */
function echo(request: ReceivedRequest, status: number): ReceiverAnswer {
  return {
    status,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ url: request.url, headers: request.headers }),
  };
}

beforeAll(async () => {
  restoreOutput = captureOutput();
  system = await startLocalSystem({
    timeScale: 0.001,
    logLevel: "DEBUG",
    metricsEnabled: true,
  });
  call = system.call;
  dynamodb = new DynamoDBClient({
    endpoint: system.runtime.dynamoEndpoint,
    region: localRegion,
    credentials: localCredentials,
  });
  sqs = new SQSClient({
    endpoint: system.runtime.env.AWS_ENDPOINT_URL_SQS,
    region: localRegion,
    credentials: localCredentials,
  });
  receivers.push(system.receiver);
  system.answers.set("/in", (_previous, request) => echo(request, 200));
  for (let index = 1; index < RECEIVERS; index++) {
    const flaky = index === FLAKY;
    receivers.push(
      await startReceiver(system.certificate, (request) => {
        const status = flaky && Math.random() < 0.5 ? 503 : 200;
        if (flaky) flakyStatuses.push(status);
        return echo(request, status);
      }),
    );
  }
}, 120_000);

afterAll(async () => {
  for (const receiver of receivers.slice(1)) await receiver.close();
  dynamodb?.destroy();
  sqs?.destroy();
  await system?.stop();
  restoreOutput?.();
});

describe(`a burst of ${ENROLLMENTS} enrollments over ${WORKFLOWS} workflows and ${RECEIVERS} receivers`, () => {
  it(
    "ends every delivery, with DynamoDB, the receivers and the metrics agreeing exactly, nothing stuck and no secret shown",
    async () => {
      // Prepare: signing apps and API keys whose values must never come back
      const apps: string[] = [];
      for (let index = 0; index < 2; index++) {
        const clientSecret = `burst-client-secret-${index}-${"s".repeat(16)}`;
        secrets.push(clientSecret);
        apps.push(
          (await call("POST", "/apps", { name: `Burst ${index}`, clientSecret })).body.appId,
        );
      }
      const workflows: string[] = [];
      for (let index = 0; index < WORKFLOWS; index++) {
        const receiver = receivers[index % RECEIVERS] as TestReceiver;
        const key = `burst-api-key-${index}-${"k".repeat(12)}`;
        const authentication = [
          { type: "signature", appId: apps[index % apps.length] },
          { type: "apiKey", name: "X-Api-Key", location: "header", value: key },
          { type: "apiKey", name: "api_key", location: "query", value: key },
        ][index % 3];
        if (authentication?.type === "apiKey") secrets.push(key);
        const created = await checkedCall("POST", "/workflows", {
          name: `Burst ${index}`,
          objectType: "contacts",
          actions: [{ type: "webhook", url: receiver.url("/in"), authentication }],
        });
        expect(created.status).toBe(201);
        workflows.push(created.body.id);
      }
      const records = Array.from({ length: RECORDS }, (_, index) => `burst-${index}`);
      await inParallel(records, async (id) => {
        await checkedCall("PUT", `/objects/contacts/${id}`, {
          properties: { email: `${id}@example.com` },
        });
      });
      const enrollments = workflows
        .flatMap((workflowId) => records.map((objectId) => ({ workflowId, objectId })))
        .slice(0, ENROLLMENTS);

      // Act
      const started = Date.now();
      const statuses: number[] = [];
      await inParallel(enrollments, async ({ workflowId, objectId }) => {
        const response = await checkedCall("POST", `/workflows/${workflowId}/enrollments`, {
          objectId,
        });
        statuses.push(response.status);
      });
      const tables = system.runtime.resources.tables;
      // A scan of every enrollment is costly: look every few seconds only.
      for (let ended = 0; ended < ENROLLMENTS && Date.now() - started < END_TIMEOUT_MS; ) {
        await sleep(POLL_MS);
        ended = (await scan(tables.enrollments)).filter(
          (item) =>
            item.sk === "ENROLLMENT" && (item.status === "completed" || item.status === "failed"),
        ).length;
      }
      const tookMs = Date.now() - started;
      // The last deliveries' metric lines follow their last writes by a moment.
      await eventually(
        "the last metric lines",
        () =>
          expect(metric(names.deliverySucceeded).sum + metric(names.deliveryFailed).sum).toBe(
            ENROLLMENTS,
          ),
        { timeoutMs: 30_000 },
      ).catch(() => undefined);
      const sample = enrollments.filter((_, index) => index % Math.ceil(ENROLLMENTS / 200) === 0);
      const sampledIds = (await scan(tables.enrollments))
        .filter((item) => item.sk === "ENROLLMENT")
        .filter((item) =>
          sample.some(
            (each) => each.workflowId === item.workflowId && each.objectId === item.objectId,
          ),
        )
        .map((item) => String(item.enrollmentId));
      for (const id of sampledIds) {
        const enrollment = await checkedCall("GET", `/enrollments/${id}`);
        await checkedCall("GET", `/deliveries/${enrollment.body.deliveries[0]?.deliveryId}`);
      }

      // Assess
      const items = await scan(tables.deliveries);
      const deliveries = items.filter((item) => item.sk === "DELIVERY");
      const attempts = items.filter((item) => String(item.sk).startsWith("ATTEMPT#"));
      const byStatus = (status: string) =>
        deliveries.filter((item) => item.status === status).length;
      const allEnrollments = (await scan(tables.enrollments)).filter(
        (item) => item.sk === "ENROLLMENT",
      );
      const requests = receivers.flatMap((receiver) => receiver.requests);
      const seen = new Set(
        requests.map(
          (request) =>
            `${request.headers["x-delivery-id"]}#${request.headers["x-delivery-attempt"]}`,
        ),
      );
      const duplicates = requests.length - seen.size;
      const answered2xx = new Set<string>();
      receivers.forEach((receiver, index) => {
        receiver.requests.forEach((request, at) => {
          if (index !== FLAKY || flakyStatuses[at] === 200) {
            answered2xx.add(String(request.headers["x-delivery-id"]));
          }
        });
      });
      const queueDepths = await Promise.all(
        Object.values(system.runtime.resources.queues).map(async (queue) => {
          const { Attributes } = await sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: queue.url,
              AttributeNames: [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
              ],
            }),
          );
          return Object.values(Attributes ?? {}).reduce((sum, value) => sum + Number(value), 0);
        }),
      );
      const stuck =
        allEnrollments.filter((item) => item.status !== "completed").length +
        deliveries.filter((item) => item.status !== "succeeded" && item.status !== "failed").length;
      const failedAttempts = attempts.filter((item) => item.statusCode === 503).length;
      const errors = new Map<string, number>();
      for (const { error } of attempts) {
        if (typeof error === "string") errors.set(error, (errors.get(error) ?? 0) + 1);
      }
      reportFigures({
        suite: `Burst: ${ENROLLMENTS} enrollments, ${WORKFLOWS} workflows, ${RECEIVERS} receivers (one failing half its requests)`,
        inputs: ENROLLMENTS,
        serverErrors: statuses.filter((status) => status >= 500).length,
        faultsInjected: failedAttempts,
        faultsSurvived: byStatus("succeeded") === ENROLLMENTS ? failedAttempts : 0,
        stuck,
        duplicates,
        secretsFound: captured.secretsInOutput + captured.secretsInResponses,
        notes: `${(tookMs / 1000).toFixed(0)} s to end them all; ${attempts.length} attempts; ${byStatus("succeeded")} succeeded, ${byStatus("failed")} failed; ${captured.lines} log and metric lines and ${captured.responses} API responses searched for ${secrets.length} secrets${errors.size === 0 ? "" : `; attempts without an answer: ${[...errors].map(([error, count]) => `${count} × ${error}`).join(", ")}`}`,
      });

      expect(statuses.filter((status) => status !== 202)).toEqual([]);
      expect(stuck).toBe(0);
      expect(deliveries).toHaveLength(ENROLLMENTS);
      expect(byStatus("succeeded") + byStatus("failed")).toBe(ENROLLMENTS);
      // DynamoDB and the receivers
      // An attempt reached its receiver when it got an answer, or timed out waiting for one; the
      // others failed before a request went out (a connect timeout on this loaded machine).
      const reached = attempts.filter(
        (item) => item.statusCode !== null || /^response timeout/.test(String(item.error)),
      );
      const unsent = attempts.filter((item) => !reached.includes(item));
      expect(
        unsent.filter((item) => !/^(connect timeout|connection failed)/.test(String(item.error))),
      ).toEqual([]);
      expect(requests.length - duplicates).toBe(reached.length);
      expect(deliveries.reduce((sum, item) => sum + Number(item.attemptCount), 0)).toBe(
        attempts.length,
      );
      expect(answered2xx.size).toBe(byStatus("succeeded"));
      expect(flakyStatuses.filter((status) => status === 503)).toHaveLength(failedAttempts);
      // DynamoDB and the metrics
      expect(metric(names.deliverySucceeded).sum).toBe(byStatus("succeeded"));
      expect(metric(names.deliveryFailed).sum).toBe(byStatus("failed"));
      expect(metric(names.deliveryRetried).sum).toBe(attempts.length - ENROLLMENTS);
      expect(metric(names.deliveryLatency).samples).toBe(attempts.length);
      expect(metric(names.enrollmentStarted).sum).toBe(ENROLLMENTS);
      expect(metric(names.enrollmentCompleted).sum).toBe(ENROLLMENTS);
      // Nothing waiting anywhere, and no secret shown
      expect(queueDepths.every((depth) => depth === 0)).toBe(true);
      expect(system.runtime.scheduler.pendingSchedules()).toEqual([]);
      expect(captured.secretsInOutput).toBe(0);
      expect(captured.secretsInResponses).toBe(0);
      expect(captured.metricLines).toBeGreaterThan(0);
    },
    END_TIMEOUT_MS + 300_000,
  );
});
