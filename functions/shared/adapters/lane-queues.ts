import { createHash } from "node:crypto";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { DeliveryAttemptMessage, WorkflowStepMessage } from "#domain/messages";

/** SQS caps a message's delay at 15 minutes. */
const MAX_MESSAGE_DELAY_SECONDS = 900;
/** SQS takes message group ids of at most 128 characters. */
const MAX_MESSAGE_GROUP_ID_LENGTH = 128;

/** The SQS queue of a lane, as its senders see it: it carries one kind of message. */
class LaneQueue<Message> {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  /** Sends a message, optionally hidden for `delaySeconds` (at most 15 minutes). */
  async send(message: Message, delaySeconds = 0): Promise<void> {
    const groupId = this.messageGroupId(message);
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.min(Math.max(0, Math.ceil(delaySeconds)), MAX_MESSAGE_DELAY_SECONDS),
        ...(groupId === undefined ? {} : { MessageGroupId: groupId }),
      }),
    );
  }

  /** The tenant a message belongs to, for SQS fair queues; none by default. */
  protected messageGroupId(_message: Message): string | undefined {
    return undefined;
  }
}

/** The workflow-steps queue: setProperty, delay and resume steps of every workflow. */
export class WorkflowStepsQueue extends LaneQueue<WorkflowStepMessage> {}

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
