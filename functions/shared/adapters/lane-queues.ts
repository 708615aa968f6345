import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { DeliveryAttemptMessage, WorkflowStepMessage } from "#domain/messages";

/** SQS caps a message's delay at 15 minutes. */
const MAX_MESSAGE_DELAY_SECONDS = 900;

/** The SQS queue of a lane, as its senders see it: it carries one kind of message. */
class LaneQueue<Message> {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  /** Sends a message, optionally hidden for `delaySeconds` (at most 15 minutes). */
  async send(message: Message, delaySeconds = 0): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.min(Math.max(0, Math.ceil(delaySeconds)), MAX_MESSAGE_DELAY_SECONDS),
      }),
    );
  }
}

/** The workflow-steps queue: setProperty, delay and resume steps of every workflow. */
export class WorkflowStepsQueue extends LaneQueue<WorkflowStepMessage> {}

/** The webhook lane's queue: one message per delivery attempt, consumed by its own function. */
export class WebhookLaneQueue extends LaneQueue<DeliveryAttemptMessage> {}
