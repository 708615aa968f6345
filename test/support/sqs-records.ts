import { createHash } from "node:crypto";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { localAccountId, localRegion } from "#infra/local/net";

/** What a test may set on a record; everything else is what a first delivery carries. */
export interface SqsRecordOptions {
  readonly messageId?: string;
  /** The queue the record came from; a made-up local queue unless given. */
  readonly queueArn?: string;
  /** How many times SQS has handed the message out, this time included. */
  readonly receiveCount?: number;
  /** When the message was sent, in epoch milliseconds. */
  readonly sentAt?: number;
}

const DEFAULT_QUEUE_ARN = `arn:aws:sqs:${localRegion}:${localAccountId}:test-queue`;

/** One SQS record as Lambda's event source mapping hands it to a consumer. */
export function sqsRecord(body: string, options: SqsRecordOptions = {}): SQSRecord {
  const messageId = options.messageId ?? "m-0";
  const sentAt = String(options.sentAt ?? Date.now());
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: sentAt,
      SenderId: localAccountId,
      ApproximateFirstReceiveTimestamp: sentAt,
    },
    messageAttributes: {},
    md5OfBody: createHash("md5").update(body).digest("hex"),
    eventSource: "aws:sqs",
    eventSourceARN: options.queueArn ?? DEFAULT_QUEUE_ARN,
    awsRegion: localRegion,
  };
}

/** A batch with one record per body, whose message ids are `m-0`, `m-1`, ... in order. */
export function sqsEvent(
  bodies: readonly string[],
  options: Omit<SqsRecordOptions, "messageId"> = {},
): SQSEvent {
  return {
    Records: bodies.map((body, index) => sqsRecord(body, { ...options, messageId: `m-${index}` })),
  };
}
