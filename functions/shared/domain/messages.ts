/** Messages on the two lanes. Both are small: state lives in DynamoDB, never in a message. */

/** Workflow-steps lane: run the action at `actionIndex` of an enrollment. */
export interface AdvanceMessage {
  readonly type: "advance";
  readonly enrollmentId: string;
  readonly actionIndex: number;
}

/**
 * Workflow-steps lane: a delay action may be over. SQS delays a message 15 minutes at most, so a
 * longer delay is walked in hops, each re-sending this message until `resumeAt` has passed.
 */
export interface ResumeMessage {
  readonly type: "resume";
  readonly enrollmentId: string;
  readonly actionIndex: number;
  /** When the delay ends (epoch ms, real time). */
  readonly resumeAt: number;
}

export type WorkflowStepMessage = AdvanceMessage | ResumeMessage;

/**
 * Workflow-steps lane: run step `step` of a replay, which re-fires one stretch of the failed
 * deliveries it selects and sends the next step's message.
 */
export interface ReplayStepMessage {
  readonly type: "replay";
  readonly replayId: string;
  readonly step: number;
}

/** Everything the workflow-steps lane carries. */
export type StepsLaneMessage = WorkflowStepMessage | ReplayStepMessage;

/** Webhook lane: make attempt `attempt` of a delivery. */
export interface DeliveryAttemptMessage {
  readonly deliveryId: string;
  readonly attempt: number;
  /**
   * The receiver the delivery targets (`host:port`), so the lane can ask for admission before it
   * reads anything; absent on messages from before it was added.
   */
  readonly host?: string;
  /** How often this attempt was put back on the lane because its receiver was at its limit. */
  readonly deferrals?: number;
}

/** Thrown for a message body that is not one of ours; it ends in the lane's dead-letter queue. */
export class MalformedMessageError extends Error {
  override name = "MalformedMessageError";
}

const isIndex = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0;
const isId = (value: unknown): value is string => typeof value === "string" && value.length > 0;

/** Reads a workflow-steps message, refusing anything of another shape. */
export function parseWorkflowStepMessage(body: string): WorkflowStepMessage {
  const message = parseJson(body) as Partial<Record<string, unknown>>;
  if (isId(message.enrollmentId) && isIndex(message.actionIndex)) {
    if (message.type === "advance") return message as unknown as AdvanceMessage;
    if (message.type === "resume" && typeof message.resumeAt === "number")
      return message as unknown as ResumeMessage;
  }
  throw new MalformedMessageError(`not a workflow step: ${body.slice(0, 200)}`);
}

/** Reads any message of the workflow-steps lane, refusing anything of another shape. */
export function parseStepsLaneMessage(body: string): StepsLaneMessage {
  const message = parseJson(body) as Partial<Record<string, unknown>>;
  if (message.type === "replay") {
    if (isId(message.replayId) && isIndex(message.step)) {
      return { type: "replay", replayId: message.replayId, step: message.step };
    }
    throw new MalformedMessageError(`not a replay step: ${body.slice(0, 200)}`);
  }
  return parseWorkflowStepMessage(body);
}

/** Reads a webhook-lane message, refusing anything of another shape. */
export function parseDeliveryAttemptMessage(body: string): DeliveryAttemptMessage {
  const message = parseJson(body) as Partial<Record<string, unknown>>;
  if (
    isId(message.deliveryId) &&
    isIndex(message.attempt) &&
    message.attempt >= 1 &&
    (message.host === undefined || isId(message.host)) &&
    (message.deferrals === undefined || isIndex(message.deferrals))
  ) {
    return {
      deliveryId: message.deliveryId,
      attempt: message.attempt,
      ...(message.host === undefined ? {} : { host: message.host }),
      ...(message.deferrals === undefined ? {} : { deferrals: message.deferrals }),
    };
  }
  throw new MalformedMessageError(`not a delivery attempt: ${body.slice(0, 200)}`);
}

function parseJson(body: string): unknown {
  try {
    const value: unknown = JSON.parse(body);
    if (value !== null && typeof value === "object") return value;
  } catch {
    // falls through to the error below
  }
  throw new MalformedMessageError(`not a JSON object: ${body.slice(0, 200)}`);
}
