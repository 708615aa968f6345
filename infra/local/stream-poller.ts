import { randomUUID } from "node:crypto";
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type {
  AttributeValue,
  Context,
  DynamoDBBatchResponse,
  DynamoDBRecord,
  DynamoDBStreamEvent,
} from "aws-lambda";
import { lambdaContext } from "./lambda-context.ts";
import type { ErrorReporter } from "./log.ts";
import { localAccountId, localRegion } from "./net.ts";

/** A function that consumes a DynamoDB stream with partial batch responses. */
export type StreamHandler = (
  event: DynamoDBStreamEvent,
  context: Context,
) => Promise<DynamoDBBatchResponse>;

export interface StreamPollerOptions {
  readonly streams: DynamoDBStreamsClient;
  readonly sqs: SQSClient;
  readonly streamArn: string;
  readonly handler: StreamHandler;
  /** Names the function in the Lambda context, the failure records and error reports. */
  readonly functionName: string;
  /** Stream records per invocation, at most (GetRecords hands out at most 1000). */
  readonly batchSize: number;
  /** Retries of a failing batch before its records are given up and reported. */
  readonly retryAttempts: number;
  /** Records older than this are given up and reported instead of retried. */
  readonly maxRecordAgeSeconds: number;
  /** Only items with one of these sort keys reach the handler, as an event filter would let. */
  readonly sortKeys: readonly string[];
  /** Where a description of records given up on goes, as Lambda's on-failure destination. */
  readonly onFailureQueueUrl: string;
  /** After this the batch counts as failed, as when Lambda times a function out. */
  readonly timeoutSeconds: number;
  /** Wait before retrying a failed batch; default 20 ms. */
  readonly retryDelayMs?: number;
  readonly onError?: ErrorReporter;
}

export interface StreamPoller {
  /** Stops reading and waits for the batch under way. */
  stop(): Promise<void>;
}

/** A shard with nothing new is read again after 20 ms, backing off to 100 ms while quiet. */
const IDLE_SLEEP_MS = 20;
const MAX_IDLE_SLEEP_MS = 100;
const ERROR_SLEEP_MS = 250;
/** New shards are looked for this often; DynamoDB Local opens them rarely. */
const DESCRIBE_EVERY_MS = 1_000;
const DEFAULT_RETRY_DELAY_MS = 20;
const MAX_GET_RECORDS = 1_000;

/** The handler ran past its timeout: Lambda would have stopped it and failed the whole batch. */
class FunctionTimeoutError extends Error {
  override name = "FunctionTimeoutError";
}

interface ShardCursor {
  readonly shardId: string;
  readonly parentShardId: string | undefined;
  iterator: string | undefined;
  /** The last record handed over (or given up on); reading resumes after it. */
  lastSequenceNumber: string | undefined;
  /** True once the shard is closed and read to its end. */
  done: boolean;
}

/**
 * Does locally what a Lambda event source mapping over a DynamoDB stream does: reads every shard
 * from its start (a parent before its children), filters by sort key, invokes the handler with
 * batches, and on a failure resumes at the first record the handler reported, bisecting the
 * rest on every retry; a record still failing after `retryAttempts` retries, or older than
 * `maxRecordAgeSeconds`, is described on the on-failure queue in Lambda's own shape and skipped,
 * so the shard goes on.
 */
export function startStreamPoller(options: StreamPollerOptions): StreamPoller {
  const onError = options.onError ?? (() => {});
  const shards = new Map<string, ShardCursor>();
  let running = true;
  let interrupt: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      interrupt = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function discoverShards(): Promise<void> {
    let startShard: string | undefined;
    do {
      const { StreamDescription } = await options.streams.send(
        new DescribeStreamCommand({
          StreamArn: options.streamArn,
          ExclusiveStartShardId: startShard,
        }),
      );
      for (const shard of StreamDescription?.Shards ?? []) addShard(shard);
      startShard = StreamDescription?.LastEvaluatedShardId;
    } while (startShard);
  }

  function addShard(shard: Shard): void {
    if (!shard.ShardId || shards.has(shard.ShardId)) return;
    shards.set(shard.ShardId, {
      shardId: shard.ShardId,
      parentShardId: shard.ParentShardId,
      iterator: undefined,
      lastSequenceNumber: undefined,
      done: false,
    });
  }

  /** A shard is read once its parent, if this poller knows it, has been read to its end. */
  const readable = (cursor: ShardCursor) =>
    !cursor.done &&
    (cursor.parentShardId === undefined || shards.get(cursor.parentShardId)?.done !== false);

  /** Reads one batch from a shard and hands it over; true when there were records. */
  async function readShard(cursor: ShardCursor): Promise<boolean> {
    if (cursor.iterator === undefined) {
      const { ShardIterator } = await options.streams.send(
        new GetShardIteratorCommand({
          StreamArn: options.streamArn,
          ShardId: cursor.shardId,
          ...(cursor.lastSequenceNumber === undefined
            ? { ShardIteratorType: "TRIM_HORIZON" }
            : {
                ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
                SequenceNumber: cursor.lastSequenceNumber,
              }),
        }),
      );
      cursor.iterator = ShardIterator;
      if (cursor.iterator === undefined) {
        cursor.done = true;
        return false;
      }
    }
    let page: { Records?: StreamRecord[]; NextShardIterator?: string };
    try {
      page = await options.streams.send(
        new GetRecordsCommand({
          ShardIterator: cursor.iterator,
          Limit: Math.min(Math.max(1, options.batchSize), MAX_GET_RECORDS),
        }),
      );
    } catch (error) {
      // An iterator can lapse (DynamoDB Local also reports some as trimmed): take a new one at
      // the same place, after the last record handed over.
      if (
        error instanceof ExpiredIteratorException ||
        error instanceof TrimmedDataAccessException
      ) {
        cursor.iterator = undefined;
        return true;
      }
      throw error;
    }
    const { Records, NextShardIterator } = page;
    const records = (Records ?? [])
      .filter((record) => passesFilter(record, options.sortKeys))
      .map((record) => toLambdaRecord(record, options.streamArn));
    if (records.length > 0) await deliver(options, cursor.shardId, records, 0, onError);
    const last = Records?.[Records.length - 1]?.dynamodb?.SequenceNumber;
    if (last !== undefined) cursor.lastSequenceNumber = last;
    cursor.iterator = NextShardIterator;
    if (NextShardIterator === undefined) cursor.done = true;
    return (Records ?? []).length > 0;
  }

  async function pollLoop(): Promise<void> {
    let idleSleepMs = IDLE_SLEEP_MS;
    let describedAt = 0;
    while (running) {
      try {
        if (Date.now() - describedAt >= DESCRIBE_EVERY_MS) {
          await discoverShards();
          describedAt = Date.now();
        }
        let busy = false;
        for (const cursor of shards.values()) {
          if (!running) break;
          if (readable(cursor) && (await readShard(cursor))) busy = true;
        }
        if (busy) {
          idleSleepMs = IDLE_SLEEP_MS;
          continue;
        }
      } catch (error) {
        if (!running) break;
        onError(`${options.functionName}: reading ${options.streamArn} failed`, error);
        await pause(ERROR_SLEEP_MS);
        continue;
      }
      await pause(idleSleepMs);
      idleSleepMs = Math.min(idleSleepMs * 2, MAX_IDLE_SLEEP_MS);
    }
  }

  const polling = pollLoop();
  return {
    async stop() {
      running = false;
      interrupt?.();
      await polling;
    },
  };
}

/**
 * Hands `records` to the handler until they are all processed or given up on. A failure
 * resumes at the first record reported (everything before it is done) and, like
 * `BisectBatchOnFunctionError`, splits what is left in two before retrying each half.
 */
async function deliver(
  options: StreamPollerOptions,
  shardId: string,
  records: DynamoDBRecord[],
  attemptsBefore: number,
  onError: ErrorReporter,
): Promise<void> {
  let pending = records;
  let attempts = attemptsBefore;
  for (;;) {
    const failedAt = await invoke(options, pending, onError);
    if (failedAt === undefined) return;
    pending = pending.slice(failedAt);
    attempts++;
    const first = pending[0] as DynamoDBRecord;
    const ageSeconds = Date.now() / 1000 - (first.dynamodb?.ApproximateCreationDateTime ?? 0);
    if (attempts > options.retryAttempts || ageSeconds > options.maxRecordAgeSeconds) {
      await reportFailure(
        options,
        shardId,
        pending,
        attempts,
        attempts > options.retryAttempts ? "RetryAttemptsExhausted" : "RecordAgeExceeded",
        onError,
      );
      return;
    }
    await new Promise((resolve) =>
      setTimeout(resolve, options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS),
    );
    if (pending.length > 1) {
      const half = Math.ceil(pending.length / 2);
      await deliver(options, shardId, pending.slice(0, half), attempts, onError);
      await deliver(options, shardId, pending.slice(half), attempts, onError);
      return;
    }
  }
}

/** Invokes the handler once; the index of the first record to retry, or undefined when all went well. */
async function invoke(
  options: StreamPollerOptions,
  records: DynamoDBRecord[],
  onError: ErrorReporter,
): Promise<number | undefined> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const response = await Promise.race([
      options.handler({ Records: records }, lambdaContext(options.functionName, deadline)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new FunctionTimeoutError(`${options.functionName} timed out`)),
          Math.max(0, deadline - Date.now()),
        );
      }),
    ]);
    return firstFailure(response, records);
  } catch (error) {
    onError(`${options.functionName} failed; the batch will be retried`, error);
    return 0;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The record to resume at, as Lambda reads a partial batch response: none when it is empty, the
 * lowest reported sequence number otherwise, and the whole batch when an item names no record.
 */
function firstFailure(
  response: DynamoDBBatchResponse | undefined | null,
  records: DynamoDBRecord[],
): number | undefined {
  const items = response?.batchItemFailures ?? [];
  if (items.length === 0) return undefined;
  const positions = items.map((item) =>
    records.findIndex((record) => record.dynamodb?.SequenceNumber === item?.itemIdentifier),
  );
  if (positions.some((position) => position < 0)) return 0;
  return Math.min(...positions);
}

/** Describes records given up on, in the shape Lambda sends to an on-failure destination. */
async function reportFailure(
  options: StreamPollerOptions,
  shardId: string,
  records: DynamoDBRecord[],
  attempts: number,
  condition: "RetryAttemptsExhausted" | "RecordAgeExceeded",
  onError: ErrorReporter,
): Promise<void> {
  const first = records[0]?.dynamodb;
  const last = records[records.length - 1]?.dynamodb;
  const arrival = (seconds: number | undefined) => new Date((seconds ?? 0) * 1000).toISOString();
  const description = {
    requestContext: {
      requestId: randomUUID(),
      functionArn: `arn:aws:lambda:${localRegion}:${localAccountId}:function:${options.functionName}`,
      condition,
      approximateInvokeCount: attempts,
    },
    responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
    version: "1.0",
    timestamp: new Date().toISOString(),
    DDBStreamBatchInfo: {
      shardId,
      startSequenceNumber: first?.SequenceNumber,
      endSequenceNumber: last?.SequenceNumber,
      approximateArrivalOfFirstRecord: arrival(first?.ApproximateCreationDateTime),
      approximateArrivalOfLastRecord: arrival(last?.ApproximateCreationDateTime),
      batchSize: records.length,
      streamArn: options.streamArn,
    },
  };
  try {
    await options.sqs.send(
      new SendMessageCommand({
        QueueUrl: options.onFailureQueueUrl,
        MessageBody: JSON.stringify(description),
      }),
    );
  } catch (error) {
    onError(`${options.functionName}: could not report records given up on`, error);
  }
  onError(
    `${options.functionName}: gave up on ${records.length} stream records (${condition})`,
    description,
  );
}

function passesFilter(record: StreamRecord, sortKeys: readonly string[]): boolean {
  const sk = record.dynamodb?.Keys?.sk?.S;
  return sk !== undefined && sortKeys.includes(sk);
}

/** A stream record as Lambda hands it over: times in epoch seconds, binary in base64. */
function toLambdaRecord(record: StreamRecord, streamArn: string): DynamoDBRecord {
  const data = record.dynamodb ?? {};
  return {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: localRegion,
    eventSourceARN: streamArn,
    dynamodb: {
      ApproximateCreationDateTime:
        data.ApproximateCreationDateTime === undefined
          ? undefined
          : Math.floor(data.ApproximateCreationDateTime.getTime() / 1000),
      Keys: lambdaImage(data.Keys),
      NewImage: lambdaImage(data.NewImage),
      OldImage: lambdaImage(data.OldImage),
      SequenceNumber: data.SequenceNumber,
      SizeBytes: data.SizeBytes,
      StreamViewType: data.StreamViewType,
    },
  };
}

function lambdaImage(image: Record<string, unknown> | undefined) {
  if (image === undefined) return undefined;
  return Object.fromEntries(
    Object.entries(image).map(([name, value]) => [name, lambdaValue(value)]),
  ) as Record<string, AttributeValue>;
}

function lambdaValue(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return value.map(lambdaValue);
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, lambdaValue(inner)]));
}
