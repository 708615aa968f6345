import { randomUUID } from "node:crypto";
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type {
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSMessageAttributes,
  SQSRecord,
  SQSRecordAttributes,
} from "aws-lambda";
import { lambdaContext } from "./lambda-context.ts";
import type { ErrorReporter } from "./log.ts";
import { localAccountId, localRegion } from "./net.ts";

/** A function that consumes an SQS queue with partial batch responses. */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export interface QueuePollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly handler: SqsHandler;
  /** Names the function in the Lambda context and in error reports. */
  readonly functionName: string;
  /** Messages per invocation; SQS hands out at most 10 per receive. */
  readonly batchSize: number;
  /** Batches handled at the same time, like an event source mapping's maximum concurrency. */
  readonly maxConcurrency: number;
  /** After this the batch counts as failed, as when Lambda times a function out. */
  readonly timeoutSeconds: number;
  /**
   * Subscribes to news of a message sent (returns how to unsubscribe): an idle poller then
   * receives at once instead of at its next poll, as long polling does on AWS.
   */
  readonly onSend?: (listener: () => void) => () => void;
  readonly onError?: ErrorReporter;
}

export interface QueuePoller {
  /** Stops receiving and waits for the batches under way. */
  stop(): Promise<void>;
}

/**
 * An empty queue is polled again after 20 ms, backing off to 100 ms while it stays empty; a send
 * cuts the wait short. Messages that become visible later (delays, visibility timeouts) are
 * found by the polls.
 */
const IDLE_SLEEP_MS = 20;
const MAX_IDLE_SLEEP_MS = 100;
const ERROR_SLEEP_MS = 250;
const MAX_RECEIVE = 10;

/** The handler ran past its timeout: Lambda would have stopped it and failed the whole batch. */
class FunctionTimeoutError extends Error {
  override name = "FunctionTimeoutError";
}

/**
 * Does locally what a Lambda SQS event source mapping does: receives batches, invokes the
 * handler, deletes what succeeded and leaves failures to reappear after the visibility timeout.
 * One receiver per queue feeds up to `maxConcurrency` batches at once, so an idle queue costs
 * one poll at a time however high the cap.
 */
export function startQueuePoller(options: QueuePollerOptions): QueuePoller {
  const onError = options.onError ?? (() => {});
  const maxConcurrency = Math.max(1, options.maxConcurrency);
  const batches = new Set<Promise<void>>();
  let running = true;
  let interrupt: (() => void) | undefined;
  /** A send happened since the last receive began: the next pause is skipped. */
  let sent = false;
  const unsubscribe = options.onSend?.(() => {
    sent = true;
    interrupt?.();
  });

  /** Waits `ms`, or less when the poller stops or a message is sent. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (sent) return resolve();
      const timer = setTimeout(resolve, ms);
      interrupt = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function receiveLoop(): Promise<void> {
    let idleSleepMs = IDLE_SLEEP_MS;
    while (running) {
      if (batches.size >= maxConcurrency) {
        await Promise.race(batches);
        continue;
      }
      let messages: Message[];
      sent = false;
      try {
        messages = await receive(options);
      } catch (error) {
        if (!running) break;
        onError(`${options.functionName}: receiving from ${options.queueUrl} failed`, error);
        await pause(ERROR_SLEEP_MS);
        continue;
      }
      if (messages.length === 0) {
        await pause(idleSleepMs);
        idleSleepMs = Math.min(idleSleepMs * 2, MAX_IDLE_SLEEP_MS);
        continue;
      }
      idleSleepMs = IDLE_SLEEP_MS;
      const batch = handleBatch(options, messages, onError).finally(() => batches.delete(batch));
      batches.add(batch);
    }
    await Promise.all(batches);
  }

  const receiving = receiveLoop();
  return {
    async stop() {
      running = false;
      unsubscribe?.();
      interrupt?.();
      await receiving;
    },
  };
}

async function receive(options: QueuePollerOptions): Promise<Message[]> {
  const { Messages } = await options.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: options.queueUrl,
      MaxNumberOfMessages: Math.min(Math.max(1, options.batchSize), MAX_RECEIVE),
      // The emulator waits out the whole wait time even with messages ready: poll instead.
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ["All"],
      // The emulator reads only the older name of the same request field.
      AttributeNames: ["All"],
      MessageAttributeNames: ["All"],
    }),
  );
  return Messages ?? [];
}

async function handleBatch(
  options: QueuePollerOptions,
  messages: Message[],
  onError: ErrorReporter,
): Promise<void> {
  let event: SQSEvent;
  let failed: Set<string>;
  try {
    event = { Records: messages.map((message) => toRecord(message, options)) };
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    const response = await withTimeout(
      options.handler(event, lambdaContext(options.functionName, deadline)),
      deadline,
      options.functionName,
    );
    failed = failedIds(response, event);
  } catch (error) {
    onError(`${options.functionName} failed; the whole batch will be retried`, error);
    return;
  }
  const succeeded = event.Records.filter((record) => !failed.has(record.messageId));
  if (succeeded.length === 0) return;
  try {
    const { Failed } = await options.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: succeeded.map((record, index) => ({
          Id: String(index),
          ReceiptHandle: record.receiptHandle,
        })),
      }),
    );
    if (Failed?.length) {
      onError(
        `${options.functionName}: ${Failed.length} processed messages were not deleted`,
        Failed,
      );
    }
  } catch (error) {
    onError(`${options.functionName}: deleting processed messages failed`, error);
  }
}

/**
 * The messages to keep, as Lambda reads a partial batch response: none when it is empty, all
 * when an item names no message of the batch.
 */
function failedIds(response: SQSBatchResponse | undefined | null, event: SQSEvent): Set<string> {
  const items = response?.batchItemFailures ?? [];
  const ids = new Set(event.Records.map((record) => record.messageId));
  const failed = new Set<string>();
  for (const item of items) {
    const id = item?.itemIdentifier;
    if (typeof id !== "string" || !ids.has(id)) return ids;
    failed.add(id);
  }
  return failed;
}

async function withTimeout<T>(
  work: Promise<T>,
  deadline: number,
  functionName: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new FunctionTimeoutError(`${functionName} timed out`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function toRecord(message: Message, options: QueuePollerOptions): SQSRecord {
  const system = message.Attributes ?? {};
  const required = (
    name: "ApproximateReceiveCount" | "SentTimestamp" | "ApproximateFirstReceiveTimestamp",
  ) => {
    const value = system[name];
    if (value === undefined)
      throw new Error(`SQS sent message ${message.MessageId} without ${name}`);
    return value;
  };
  const attributes: SQSRecordAttributes = {
    ApproximateReceiveCount: required("ApproximateReceiveCount"),
    SentTimestamp: required("SentTimestamp"),
    SenderId: system.SenderId ?? localAccountId,
    ApproximateFirstReceiveTimestamp: required("ApproximateFirstReceiveTimestamp"),
  };
  for (const key of [
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
  ] as const) {
    const value = system[key];
    if (value !== undefined) attributes[key] = value;
  }
  const record: SQSRecord = {
    messageId: message.MessageId ?? randomUUID(),
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes,
    messageAttributes: toMessageAttributes(message.MessageAttributes ?? {}),
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: options.queueArn,
    awsRegion: localRegion,
  };
  if (message.MD5OfMessageAttributes)
    record.md5OfMessageAttributes = message.MD5OfMessageAttributes;
  return record;
}

/** Lambda's spelling of message attributes: camelCase, binary values in base64. */
function toMessageAttributes(
  attributes: Record<string, MessageAttributeValue>,
): SQSMessageAttributes {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      {
        dataType: value.DataType ?? "String",
        stringValue: value.StringValue,
        binaryValue: value.BinaryValue
          ? Buffer.from(value.BinaryValue).toString("base64")
          : undefined,
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map((item) =>
          Buffer.from(item).toString("base64"),
        ),
      },
    ]),
  );
}
