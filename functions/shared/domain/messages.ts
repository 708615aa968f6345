/** Messages on the two lanes. Both are small: state lives in DynamoDB, never in a message. */

/** Workflow-steps lane: run the action at `actionIndex` of an enrollment. */
export interface AdvanceMessage {
  readonly type: "advance";
  readonly enrollmentId: string;
  readonly actionIndex: number;
}

/** Workflow-steps lane: a delay action's wait is over (or a chunk of it, for long delays). */
export interface ResumeMessage {
  readonly type: "resume";
  readonly enrollmentId: string;
  readonly actionIndex: number;
}

/** Workflow-steps lane: the delivery of a webhook action ended (succeeded or failed for good). */
export interface DeliveryEndedMessage {
  readonly type: "deliveryEnded";
  readonly enrollmentId: string;
  readonly actionIndex: number;
  readonly deliveryId: string;
}

export type WorkflowStepMessage = AdvanceMessage | ResumeMessage | DeliveryEndedMessage;

/** Webhook lane: make attempt `attempt` of a delivery. */
export interface DeliveryAttemptMessage {
  readonly deliveryId: string;
  readonly attempt: number;
}
