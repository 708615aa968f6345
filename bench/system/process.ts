/**
 * The system under test, in a process of its own as it would be on AWS: the local runtime with
 * the real handlers, counted by `instrument.ts`, driven by the benchmark over IPC.
 * The receivers and the load generator live elsewhere, so neither competes for this event loop.
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { BatchWriteCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import {
  type LocalRuntime,
  type LocalRuntimeHandlers,
  startLocalRuntime,
} from "#infra/local/runtime";
import { servePeer } from "../ipc.ts";
import { chunks, inParallel } from "../parallel.ts";
import { type CounterSnapshot, clock, PROBE_HEADER } from "./counters.ts";
import {
  Counters,
  countRequests,
  type Handler,
  type InstrumentableClient,
  instrumentHandler,
  tapFunctionOutput,
} from "./instrument.ts";
import { warmUpDynamoDbLocal } from "./warm-up.ts";

export interface SystemOptions {
  /** RETRY_TIME_SCALE of the runtime: 0.001 makes the one-minute retry take 60 ms. */
  readonly timeScale: number;
  /** POWERTOOLS_LOG_LEVEL, as deployed by default. */
  readonly logLevel: string;
  readonly metricsEnabled: boolean;
  /** Batches at once per lane, as the event source mappings' maximum concurrency. */
  readonly maxConcurrency: { readonly webhookLane: number; readonly workflowSteps: number };
  /** Show the functions' log lines instead of only counting them. */
  readonly echoLogs: boolean;
  /** Requests that bring DynamoDB Local up to speed before anything is measured (`warm-up.ts`). */
  readonly warmUpRequests: number;
}

export interface SystemInfo {
  readonly apiUrl: string;
}

export interface DirectRun {
  readonly invocations: number;
  readonly deliveries: number;
  /** CPU of each invocation (user + system), when they ran one at a time. */
  readonly cpuMicrosPerInvocation: number[];
}

/** Where counting started: the CPU figures and the scheduler's count are running totals. */
interface Baseline {
  readonly cpu: NodeJS.CpuUsage;
  readonly javaCpuMs: number | undefined;
  readonly fired: number;
}

/** Items per BatchWriteItem and messages per SendMessageBatch: the services' limits. */
const DYNAMO_BATCH = 25;
const SQS_BATCH = 10;
/** Requests at once while seeding; enough to keep DynamoDB Local busy without swamping it. */
const SEED_CONCURRENCY = 8;

const counters = new Counters();
let runtime: LocalRuntime | undefined;
let handlers: LocalRuntimeHandlers | undefined;
const partitionKeys = new Map<string, string>();
const tableLabels = new Map<string, string>();
let baseline: Baseline = { cpu: process.cpuUsage(), javaCpuMs: undefined, fired: 0 };
/**
 * A delivery as it was stored (its state and its body are items of their own) and its lane
 * message, to copy for seeded deliveries.
 */
const template: { armed: boolean; items: Record<string, unknown>[]; message?: string } = {
  armed: false,
  items: [],
};
let seeded: string[] = [];

function started(): LocalRuntime {
  if (!runtime) throw new Error("the system is not started");
  return runtime;
}

async function start(options: SystemOptions): Promise<SystemInfo> {
  tapFunctionOutput(counters, options.echoLogs);
  let real: Record<"api" | "engine" | "deliver", Handler> | undefined;
  const load = (name: "api" | "engine" | "deliver") => () => {
    if (!real) throw new Error("the handlers are not loaded yet");
    return real[name];
  };
  const isProbe = (event: unknown) =>
    Object.keys((event as { headers?: object }).headers ?? {}).some(
      (name) => name.toLowerCase() === PROBE_HEADER,
    );
  handlers = {
    api: instrumentHandler("api", counters, load("api"), (event) =>
      isProbe(event) ? "probe" : "api",
    ),
    engine: instrumentHandler("engine", counters, load("engine")),
    deliver: instrumentHandler("deliver", counters, load("deliver")),
  } as unknown as LocalRuntimeHandlers;
  runtime = await startLocalRuntime({
    handlers,
    timeScale: options.timeScale,
    logLevel: options.logLevel,
    metricsEnabled: options.metricsEnabled,
    maxConcurrency: options.maxConcurrency,
  });
  await learnTables(runtime);
  if (options.warmUpRequests > 0) await warmUpDynamoDbLocal(options.warmUpRequests);

  const [{ dynamoDocuments }, { sqs }, { scheduler }] = await Promise.all([
    import("#adapters/dynamodb-client"),
    import("#adapters/sqs-client"),
    import("#adapters/scheduler-client"),
  ]);
  const observe = (operation: string, input: Record<string, unknown>) =>
    keepTemplate(operation, input);
  for (const client of [dynamoDocuments, sqs, scheduler]) {
    countRequests(client as unknown as InstrumentableClient, { counters, partitionKeys, observe });
  }
  const laneUrl = runtime.resources.queues.webhookLane.url;
  countRequests(runtime.pollerSqs as unknown as InstrumentableClient, {
    counters,
    partitionKeys,
    fnOf: (input) => (input.QueueUrl === laneUrl ? "lanePoller" : "stepsPoller"),
  });
  // Imported only now: each handler reads the variables the runtime has just set, at import.
  const handlerOf = async (name: string) =>
    (
      (await import(new URL(`../../functions/${name}/handler.ts`, import.meta.url).href)) as {
        handler: Handler;
      }
    ).handler;
  real = {
    api: await handlerOf("api"),
    engine: await handlerOf("engine"),
    deliver: await handlerOf("deliver"),
  };
  reset();
  return { apiUrl: runtime.apiUrl };
}

/** Each table's partition key attribute, so the counter can tell which key a request touches. */
async function learnTables(system: LocalRuntime): Promise<void> {
  const dynamodb = new DynamoDBClient({});
  try {
    for (const [label, name] of Object.entries(system.resources.tables)) {
      const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: name }));
      const hash = Table?.KeySchema?.find((key) => key.KeyType === "HASH")?.AttributeName;
      if (hash) partitionKeys.set(name, hash);
      tableLabels.set(name, label);
    }
  } finally {
    dynamodb.destroy();
  }
}

function keepTemplate(operation: string, input: Record<string, unknown>): void {
  if (!template.armed || !runtime) return;
  if (
    !template.message &&
    operation === "PutItem" &&
    input.TableName === runtime.resources.tables.deliveries
  ) {
    template.items.push(structuredClone(input.Item as Record<string, unknown>));
  }
  if (
    !template.message &&
    operation === "SendMessage" &&
    input.QueueUrl === runtime.resources.queues.webhookLane.url
  ) {
    template.message = String(input.MessageBody);
  }
  if (template.items.length > 0 && template.message) template.armed = false;
}

function reset(): void {
  counters.reset();
  baseline = {
    cpu: process.cpuUsage(),
    javaCpuMs: javaCpuMs(),
    fired: runtime?.scheduler.firedCount() ?? 0,
  };
}

function read(): CounterSnapshot {
  const cpu = process.cpuUsage(baseline.cpu);
  const java = javaCpuMs();
  return counters.snapshot(
    {
      retriesFired: (runtime?.scheduler.firedCount() ?? 0) - baseline.fired,
      cpuMicros: { user: cpu.user, system: cpu.system },
      dynamoDbLocalCpuMs:
        java !== undefined && baseline.javaCpuMs !== undefined
          ? java - baseline.javaCpuMs
          : undefined,
    },
    (table) => tableLabels.get(table) ?? table,
  );
}

let ticksPerSecond: number | undefined;

/** CPU time of DynamoDB Local so far, from /proc; undefined where there is no /proc. */
function javaCpuMs(): number | undefined {
  const pid = runtime?.dynamoDbLocalPid;
  if (pid === undefined) return undefined;
  try {
    ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks / ticksPerSecond) * 1000;
  } catch {
    return undefined;
  }
}

/** Messages waiting on a queue and in flight (received, not yet deleted). */
async function queueDepth(queueUrl: string): Promise<{ waiting: number; inFlight: number }> {
  const sqs = new SQSClient({});
  try {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return {
      waiting: Number(Attributes.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  } finally {
    sqs.destroy();
  }
}

/** Starts keeping a copy of the next delivery the engine stores, and of its lane message. */
function armTemplate(): void {
  template.armed = true;
  template.items = [];
  template.message = undefined;
}

/**
 * Stores `count` copies of the template delivery, each under new delivery and enrollment ids
 * (the engine skips the unknown enrollments when they end), outside the counters, and keeps
 * their lane messages for `enqueueSeeded` or `invokeDirect`.
 */
async function seed(argument: { count: number; enrollmentId: string }): Promise<number> {
  const system = started();
  const { items: templateItems, message } = template;
  const first = templateItems[0];
  if (!first || !message) throw new Error("no template delivery was captured");
  const deliveryId = first[partitionKeys.get(system.resources.tables.deliveries) ?? ""];
  if (typeof deliveryId !== "string") throw new Error("the template has no partition key");
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const table = system.resources.tables.deliveries;
  seeded = [];
  const items: Record<string, unknown>[] = [];
  for (let index = 0; index < argument.count; index++) {
    const ids: [string, string][] = [
      [deliveryId, randomUUID()],
      [argument.enrollmentId, randomUUID()],
    ];
    for (const item of templateItems) items.push(withIds(item, ids) as Record<string, unknown>);
    seeded.push(withIds(message, ids) as string);
  }
  try {
    await inParallel(chunks(items, DYNAMO_BATCH), SEED_CONCURRENCY, async (batch) => {
      let pending: Record<string, unknown>[] = batch.map((Item) => ({ PutRequest: { Item } }));
      while (pending.length > 0) {
        const { UnprocessedItems } = await documents.send(
          new BatchWriteCommand({ RequestItems: { [table]: pending as never } }),
        );
        pending = (UnprocessedItems?.[table] as Record<string, unknown>[] | undefined) ?? [];
      }
    });
  } finally {
    documents.destroy();
  }
  return seeded.length;
}

/** Puts the seeded deliveries' messages on the webhook lane; returns when the last was sent. */
async function enqueueSeeded(): Promise<{ firstSentAt: number; lastSentAt: number }> {
  const sqs = new SQSClient({});
  const queueUrl = started().resources.queues.webhookLane.url;
  const firstSentAt = clock();
  try {
    await inParallel(chunks(seeded, SQS_BATCH), SEED_CONCURRENCY, async (batch) => {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((MessageBody, index) => ({ Id: String(index), MessageBody })),
        }),
      );
    });
  } finally {
    sqs.destroy();
  }
  return { firstSentAt, lastSentAt: clock() };
}

/**
 * Invokes the deliver handler itself with the seeded messages, `batchSize` to an invocation and
 * `concurrency` invocations at once, as the event source mapping would, minus SQS. With
 * `quietBetween`, each invocation waits for the engine to finish with the messages the one
 * before sent, so that none of its work lands in the next invocation's CPU time.
 */
async function invokeDirect(argument: {
  batchSize: number;
  concurrency: number;
  quietBetween?: boolean;
}): Promise<DirectRun> {
  const system = started();
  const deliver = handlers?.deliver as unknown as (e: SQSEvent, c: Context) => Promise<unknown>;
  const cpuMicrosPerInvocation: number[] = [];
  const batches = chunks(seeded, argument.batchSize);
  await inParallel(batches, argument.concurrency, async (batch) => {
    const event: SQSEvent = {
      Records: batch.map((body) => sqsRecord(body, system.resources.queues.webhookLane.arn)),
    };
    const before = process.cpuUsage();
    await deliver(event, lambdaContext("deliver"));
    const used = process.cpuUsage(before);
    cpuMicrosPerInvocation.push(used.user + used.system);
    if (argument.quietBetween) await quiet();
  });
  return {
    invocations: batches.length,
    deliveries: seeded.length,
    cpuMicrosPerInvocation: argument.concurrency === 1 ? cpuMicrosPerInvocation : [],
  };
}

/** Polls for quiet while waiting for the engine to take up what the deliver function sent. */
const QUIET_POLL_MS = 20;
/** Long enough for an idle poller to have polled again and found nothing. */
const QUIET_HOLD_MS = 120;
const QUIET_TIMEOUT_MS = 10_000;

/** Waits until no handler runs and the workflow-steps queue is empty, for a little while. */
async function quiet(): Promise<void> {
  const queueUrl = started().resources.queues.workflowSteps.url;
  const deadline = Date.now() + QUIET_TIMEOUT_MS;
  let quietSince: number | undefined;
  while (Date.now() < deadline) {
    const steps = await queueDepth(queueUrl);
    const busy = counters.inFlight > 0 || steps.waiting > 0 || steps.inFlight > 0;
    if (busy) quietSince = undefined;
    else quietSince ??= Date.now();
    if (quietSince !== undefined && Date.now() - quietSince >= QUIET_HOLD_MS) return;
    await new Promise((resolve) => setTimeout(resolve, QUIET_POLL_MS));
  }
}

function sqsRecord(body: string, queueArn: string): SQSRecord {
  const now = String(Date.now());
  return {
    messageId: randomUUID(),
    receiptHandle: "direct-invocation",
    body,
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: now,
      SenderId: "benchmark",
      ApproximateFirstReceiveTimestamp: now,
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: "us-east-1",
  };
}

/** Enough of a Lambda context for Powertools; a direct invocation has no deadline to speak of. */
function lambdaContext(functionName: string): Context {
  const unsupported = () => {
    throw new Error("callback-style completion is not supported");
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: "512",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "benchmark",
    getRemainingTimeInMillis: () => 60_000,
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/** `value` with every string occurrence of each `from` replaced by its `to`; bytes kept as is. */
function withIds(value: unknown, ids: readonly [string, string][]): unknown {
  if (typeof value === "string") {
    return ids.reduce((text, [from, to]) => text.replaceAll(from, to), value);
  }
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((item) => withIds(item, ids));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, withIds(item, ids)]),
    );
  }
  return value;
}

async function stop(): Promise<void> {
  await runtime?.stop();
  runtime = undefined;
}

const calls = {
  start,
  reset,
  read,
  armTemplate,
  seed,
  enqueueSeeded,
  invokeDirect,
  stop,
};

/** The calls the benchmark can make of the system process. */
export type SystemCalls = typeof calls;

servePeer(calls);
