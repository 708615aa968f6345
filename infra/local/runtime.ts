import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { SQSClient } from "@aws-sdk/client-sqs";
import { enrollmentStream, type QueueKey, queues, retryScheduler, sweeper } from "#shared/contract";
import { type ApiHandler, startApiGateway } from "./api-gateway.ts";
import { startDynamoDbLocal } from "./dynamodb-local.ts";
import { errorReporter } from "./log.ts";
import { localAccountId, localCredentials, localRegion, loopback } from "./net.ts";
import type { SchedulerDiagnostics } from "./one-time-schedules.ts";
import { type QueuePoller, type SqsHandler, startQueuePoller } from "./queue-poller.ts";
import { createResources, type LocalResources } from "./resources.ts";
import { startSchedulerEmulator } from "./scheduler-emulator.ts";
import { type SqsEmulator, startSqsEmulator } from "./sqs-emulator.ts";
import { type StreamHandler, type StreamPoller, startStreamPoller } from "./stream-poller.ts";
import { type SweepHandler, startSweepTimer } from "./sweep-timer.ts";

/** The Lambda entry points of the system. */
export interface LocalRuntimeHandlers {
  readonly api: ApiHandler;
  readonly engine: SqsHandler;
  readonly deliver: SqsHandler;
  /** Fed by the records table's stream; without it no stream is read. */
  readonly enroll?: StreamHandler;
  /** Run by a timer, as the stack's schedule runs it; no sweeper runs without it. */
  readonly sweep?: SweepHandler;
}

export interface LocalRuntimeOptions {
  /** Port of the API; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Address the API listens on; 127.0.0.1 by default. */
  readonly host?: string;
  /** RETRY_TIME_SCALE: multiplies every wait; 0.001 turns a minute into 60 ms. */
  readonly timeScale?: number;
  /** ALLOW_PRIVATE_TARGETS: lets webhooks reach loopback and private addresses (default true). */
  readonly allowPrivateTargets?: boolean;
  /** A running DynamoDB Local to use; without it one is started, and stopped with the runtime. */
  readonly dynamoEndpoint?: string;
  /** Put before every table and queue name, so runtimes can share a DynamoDB Local. */
  readonly namePrefix?: string;
  /** POWERTOOLS_LOG_LEVEL of the functions, also used for the runtime's own error lines. */
  readonly logLevel?: string;
  /** Publishes Powertools metrics (EMF lines on stdout); off by default. */
  readonly metricsEnabled?: boolean;
  /** Replaces every queue's visibility timeout, so failed messages come back sooner in tests. */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Replaces the sweeper's interval (real milliseconds), so tests see a run soon; by default the
   * stack's interval, scaled by `timeScale`, but never under a minute.
   */
  readonly sweepIntervalMs?: number;
  /** Batches handled at once per lane (default 5 each, where Lambda's SQS pollers start). */
  readonly maxConcurrency?: { readonly workflowSteps?: number; readonly webhookLane?: number };
  /** The handlers to run; the real ones by default. */
  readonly handlers?: LocalRuntimeHandlers;
}

export interface LocalRuntime {
  readonly apiUrl: string;
  /** The variables set for the functions (endpoints, credentials, names, settings). */
  readonly env: Readonly<Record<string, string>>;
  readonly scheduler: SchedulerDiagnostics;
  readonly resources: LocalResources;
  readonly dynamoEndpoint: string;
  /** The pid of the DynamoDB Local this runtime started, if it started one. */
  readonly dynamoDbLocalPid: number | undefined;
  /** The SQS client the pollers receive and delete with, so a benchmark can count its requests. */
  readonly pollerSqs: SQSClient;
  /** Sweeper runs finished so far. */
  sweepRuns(): number;
  /** Stops the API, the pollers, the emulators and the DynamoDB Local it started. */
  stop(): Promise<void>;
}

const DEFAULT_MAX_CONCURRENCY = 5;
/**
 * The shortest default interval of the local sweeper. Work becomes overdue only many minutes
 * after it stopped moving (its thresholds are real time, which RETRY_TIME_SCALE does not
 * compress), so a run a minute finds it at most a minute late, while a compressed clock would
 * otherwise have the sweeper's 64 queries load DynamoDB Local several times a second.
 */
const MIN_SWEEP_INTERVAL_MS = 60_000;
const RETRY_SCHEDULER_ROLE_ARN = `arn:aws:iam::${localAccountId}:role/local-retry-scheduler`;
/** Variables that would send the SDK elsewhere than the local endpoints or credentials. */
const CLEARED_VARIABLES = [
  "AWS_PROFILE",
  "AWS_SESSION_TOKEN",
  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
  retryScheduler.deadLetterArnEnvVar,
];
const functionNames: Record<QueueKey, string> = { workflowSteps: "engine", webhookLane: "deliver" };

/** Starts the whole system on this machine: the same handlers, local stand-ins for AWS. */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const timeScale = options.timeScale ?? 1;
  if (!Number.isFinite(timeScale) || timeScale <= 0) {
    throw new Error(`timeScale must be a positive number, got ${timeScale}`);
  }
  const logLevel = options.logLevel ?? "INFO";
  const onError = errorReporter(logLevel);
  const cleanup: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    const failures: unknown[] = [];
    for (const stop of cleanup.splice(0).reverse()) {
      await stop().catch((error: unknown) => failures.push(error));
    }
    if (failures.length > 0)
      throw new AggregateError(failures, "the local runtime did not stop cleanly");
  };

  try {
    let dynamoEndpoint = options.dynamoEndpoint;
    let dynamoDbLocalPid: number | undefined;
    if (!dynamoEndpoint) {
      const dynamo = await startDynamoDbLocal();
      cleanup.push(() => dynamo.stop());
      dynamoEndpoint = dynamo.endpoint;
      dynamoDbLocalPid = dynamo.pid;
    }
    const sqsEmulator = await startSqsEmulator();
    cleanup.push(() => sqsEmulator.stop());
    const resources = await createLocalResources(dynamoEndpoint, sqsEmulator.endpoint, options);
    const groupName = retryScheduler.defaultGroupName;
    const scheduler = await startSchedulerEmulator({
      sqsEndpoint: sqsEmulator.endpoint,
      timeScale,
      groups: [groupName],
      onError,
    });
    cleanup.push(() => scheduler.stop());

    const env: Record<string, string> = {
      AWS_REGION: localRegion,
      AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
      AWS_ENDPOINT_URL_SQS: sqsEmulator.endpoint,
      AWS_ENDPOINT_URL_SCHEDULER: scheduler.endpoint,
      ...resources.env,
      [retryScheduler.groupEnvVar]: groupName,
      [retryScheduler.roleArnEnvVar]: RETRY_SCHEDULER_ROLE_ARN,
      RETRY_TIME_SCALE: String(timeScale),
      ALLOW_PRIVATE_TARGETS: String(options.allowPrivateTargets ?? true),
      PORTAL_ID: "1",
      POWERTOOLS_SERVICE_NAME: "workflow-webhooks",
      POWERTOOLS_LOG_LEVEL: logLevel,
      POWERTOOLS_METRICS_DISABLED: String(!options.metricsEnabled),
      POWERTOOLS_TRACE_ENABLED: "false",
    };
    cleanup.push(applyEnv(env));
    const handlers = options.handlers ?? (await importRealHandlers(env));

    const sqs = new SQSClient({
      endpoint: sqsEmulator.endpoint,
      region: localRegion,
      credentials: localCredentials,
    });
    cleanup.push(async () => sqs.destroy());
    const pollers = startPollers(sqs, sqsEmulator.onSend, resources, handlers, options, onError);
    cleanup.push(() => Promise.all(pollers.map((poller) => poller.stop())).then(() => {}));
    if (handlers.enroll) {
      const streams = new DynamoDBStreamsClient({
        endpoint: dynamoEndpoint,
        region: localRegion,
        credentials: localCredentials,
      });
      cleanup.push(async () => streams.destroy());
      const streamPoller = startEnrollmentStream(streams, sqs, resources, handlers.enroll, onError);
      cleanup.push(() => streamPoller.stop());
    }
    const sweepTimer = handlers.sweep
      ? startSweepTimer({
          handler: handlers.sweep,
          // Scaled like every other wait, within reason (see MIN_SWEEP_INTERVAL_MS).
          intervalMs:
            options.sweepIntervalMs ??
            Math.max(MIN_SWEEP_INTERVAL_MS, sweeper.intervalSeconds * 1000 * timeScale),
          timeoutMs: sweeper.timeoutSeconds * 1000,
          onError,
        })
      : undefined;
    if (sweepTimer) cleanup.push(() => sweepTimer.stop());

    const api = await startApiGateway({
      handler: handlers.api,
      host: options.host ?? loopback,
      port: options.port ?? 0,
      onError,
    });
    cleanup.push(() => api.stop());

    return {
      apiUrl: api.url,
      env,
      scheduler: {
        pendingSchedules: () => scheduler.pendingSchedules(),
        firedCount: () => scheduler.firedCount(),
        failedCount: () => scheduler.failedCount(),
      },
      resources,
      dynamoEndpoint,
      dynamoDbLocalPid,
      pollerSqs: sqs,
      sweepRuns: () => sweepTimer?.runs() ?? 0,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll().catch((stopError: unknown) =>
      onError("cleaning up after a failed start failed", stopError),
    );
    throw error;
  }
}

async function createLocalResources(
  dynamoEndpoint: string,
  sqsEndpoint: string,
  options: LocalRuntimeOptions,
): Promise<LocalResources> {
  const config = { region: localRegion, credentials: localCredentials };
  const dynamodb = new DynamoDBClient({ ...config, endpoint: dynamoEndpoint });
  const sqs = new SQSClient({ ...config, endpoint: sqsEndpoint });
  try {
    return await createResources(
      { dynamodb, sqs },
      {
        namePrefix: options.namePrefix,
        visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
      },
    );
  } finally {
    dynamodb.destroy();
    sqs.destroy();
  }
}

function startPollers(
  sqs: SQSClient,
  onSend: SqsEmulator["onSend"],
  resources: LocalResources,
  handlers: LocalRuntimeHandlers,
  options: LocalRuntimeOptions,
  onError: ReturnType<typeof errorReporter>,
): QueuePoller[] {
  const consumers: Record<QueueKey, SqsHandler> = {
    workflowSteps: handlers.engine,
    webhookLane: handlers.deliver,
  };
  return (Object.keys(queues) as QueueKey[]).map((key) => {
    const queue = resources.queues[key];
    return startQueuePoller({
      sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      handler: consumers[key],
      functionName: functionNames[key],
      batchSize: queue.definition.batchSize,
      maxConcurrency: options.maxConcurrency?.[key] ?? DEFAULT_MAX_CONCURRENCY,
      // Lambda refuses a queue whose visibility timeout is shorter than the function's timeout.
      timeoutSeconds: Math.min(
        queue.definition.consumerTimeoutSeconds,
        queue.visibilityTimeoutSeconds,
      ),
      onSend,
      onError,
    });
  });
}

/** Reads the records table's stream into the enroll function, as its event source mapping does. */
function startEnrollmentStream(
  streams: DynamoDBStreamsClient,
  sqs: SQSClient,
  resources: LocalResources,
  handler: StreamHandler,
  onError: ReturnType<typeof errorReporter>,
): StreamPoller {
  return startStreamPoller({
    streams,
    sqs,
    streamArn: resources.enrollmentStream.streamArn,
    handler,
    functionName: "enroll",
    batchSize: enrollmentStream.batchSize,
    retryAttempts: enrollmentStream.retryAttempts,
    maxRecordAgeSeconds: enrollmentStream.maxRecordAgeSeconds,
    sortKeys: enrollmentStream.sortKeys,
    onFailureQueueUrl: resources.enrollmentStream.onFailureQueueUrl,
    timeoutSeconds: enrollmentStream.consumerTimeoutSeconds,
    onError,
  });
}

/** Sets the functions' variables and returns how to put the previous ones back. */
function applyEnv(env: Record<string, string>): () => Promise<void> {
  const keys = [...new Set([...Object.keys(env), ...CLEARED_VARIABLES])];
  const previous = new Map(keys.map((key) => [key, process.env[key]]));
  for (const key of CLEARED_VARIABLES) delete process.env[key];
  Object.assign(process.env, env);
  return async () => {
    for (const [key, value] of previous) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

/** The env the real handlers were first imported with; modules read it once, at import. */
let realHandlersEnv: string | undefined;

async function importRealHandlers(env: Record<string, string>): Promise<LocalRuntimeHandlers> {
  const fingerprint = JSON.stringify(env);
  if (realHandlersEnv !== undefined && realHandlersEnv !== fingerprint) {
    throw new Error(
      "the real handlers are already loaded in this process for another local runtime, and they read their configuration once, at import: start one runtime with them per process, or pass handlers",
    );
  }
  realHandlersEnv = fingerprint;
  const [api, engine, deliver, enroll, sweep] = await Promise.all(
    ["api", "engine", "deliver", "enroll", "sweep"].map((name) => importHandler(name)),
  );
  return {
    api: api as ApiHandler,
    engine: engine as SqsHandler,
    deliver: deliver as SqsHandler,
    enroll: enroll as StreamHandler,
    sweep: sweep as SweepHandler,
  };
}

async function importHandler(name: string): Promise<unknown> {
  const url = new URL(`../../functions/${name}/handler.ts`, import.meta.url).href;
  const module: { handler?: unknown } = await import(url);
  if (typeof module.handler !== "function") {
    throw new Error(`functions/${name}/handler.ts does not export a handler function`);
  }
  return module.handler;
}
