import { createHash } from "node:crypto";
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { DeliveryAttemptMessage, StepsLaneMessage } from "#domain/messages";

/** SQS caps a message's delay at 15 minutes. */
const MAX_MESSAGE_DELAY_SECONDS = 900;
/** SQS takes message group ids of at most 128 characters. */
const MAX_MESSAGE_GROUP_ID_LENGTH = 128;
/** SQS takes at most ten messages per batch. */
const MAX_BATCH_ENTRIES = 10;

/** Some messages of a batch were not sent; sending the whole batch again is safe for its senders. */
export class BatchSendError extends Error {
  override name = "BatchSendError";
}

/** The SQS queue of a lane, as its senders see it: it carries one kind of message. */
class LaneQueue<Message> {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  /** Sends a message, optionally hidden for `delaySeconds` (at most 15 minutes). */
  async send(message: Message, delaySeconds = 0): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({ QueueUrl: this.queueUrl, ...this.entry(message, delaySeconds) }),
    );
  }

  /**
   * Sends messages ten to a request, each hidden for its own `delaySeconds`. BatchSendError when
   * SQS refused some of them, after the rest were sent.
   */
  async sendBatch(
    messages: ReadonlyArray<{ readonly message: Message; readonly delaySeconds: number }>,
  ): Promise<void> {
    for (let start = 0; start < messages.length; start += MAX_BATCH_ENTRIES) {
      const entries: SendMessageBatchRequestEntry[] = messages
        .slice(start, start + MAX_BATCH_ENTRIES)
        .map(({ message, delaySeconds }, index) => ({
          Id: String(index),
          ...this.entry(message, delaySeconds),
        }));
      const { Failed } = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
      );
      if (Failed !== undefined && Failed.length > 0) {
        throw new BatchSendError(
          `${Failed.length} of ${entries.length} messages were not sent: ${Failed[0]?.Code} ${Failed[0]?.Message ?? ""}`,
        );
      }
    }
  }

  private entry(message: Message, delaySeconds: number) {
    const groupId = this.messageGroupId(message);
    return {
      MessageBody: JSON.stringify(message),
      DelaySeconds: Math.min(Math.max(0, Math.ceil(delaySeconds)), MAX_MESSAGE_DELAY_SECONDS),
      ...(groupId === undefined ? {} : { MessageGroupId: groupId }),
    };
  }

  /** The tenant a message belongs to, for SQS fair queues; none by default. */
  protected messageGroupId(_message: Message): string | undefined {
    return undefined;
  }
}

/** The workflow-steps queue: setProperty, delay and resume steps of every workflow, and replays. */
export class WorkflowStepsQueue extends LaneQueue<StepsLaneMessage> {}

/**
 * The webhook lane's queue: one message per delivery attempt, consumed by its own function.
 * Each message's group is its receiver, so SQS fair queues serve a receiver with a backlog after
 * the quiet ones.
 */
export class WebhookLaneQueue extends LaneQueue<DeliveryAttemptMessage> {
  protected override messageGroupId(message: DeliveryAttemptMessage): string | undefined {
    const host = message.host;
    if (host === undefined) return undefined;
    return host.length <= MAX_MESSAGE_GROUP_ID_LENGTH
      ? host
      : createHash("sha256").update(host).digest("hex");
  }
}
