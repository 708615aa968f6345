import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { DeliveryAttemptMessage, WorkflowStepMessage } from "#domain/messages";

/** SQS caps a message's delay at 15 minutes. */
export const MAX_MESSAGE_DELAY_SECONDS = 900;

/** A queue that carries one kind of message. */
class Lane<Message> {
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

/** setProperty, delay and resume steps of every workflow. */
export class WorkflowStepsLane extends Lane<WorkflowStepMessage> {}

/** The webhook lane: one message per delivery attempt, consumed by its own function. */
export class WebhookLane extends Lane<DeliveryAttemptMessage> {}
