import { createHash } from "node:crypto";
import { type Enrollment, isoOrNull } from "#domain/enrollment";
import type { DeliveryAttemptMessage } from "#domain/messages";
import { classifyAttempt, decideRetry } from "#domain/retry-policy";
import { receiverOf } from "#domain/target-url";
import type { OutputResult } from "#domain/webhook-outputs";
import type { Authentication, ObjectType, WebhookAction, WebhookOutput } from "#domain/workflow";
import { queues } from "#shared/contract";

export type DeliveryStatus = "pending" | "retrying" | "succeeded" | "failed";

/**
 * How long a consumer owns the attempt it leased: longer than the deliver function may run, so a
 * lease only lapses when its holder is gone.
 */
export const ATTEMPT_LEASE_MS = (queues.webhookLane.consumerTimeoutSeconds + 30) * 1000;

/**
 * How long after its delivery is created a first attempt may be made without a lease. Within it,
 * only the message the webhook action sent (and, rarely, SQS's duplicate of it) can make attempt
 * 1: a webhook step that runs again sends its attempt message delayed by this much
 * (`FIRST_ATTEMPT_RESEND_DELAY_SECONDS`), and the sweeper re-sends an attempt only after
 * `ATTEMPT_STALL_MS` (35 minutes). A consumer goes without a lease only when its lease would end
 * within it, so it is done, or gone, before anything else can send the attempt.
 */
export const UNLEASED_FIRST_ATTEMPT_MS = 3 * 60_000;

/** The delay of the first attempt's message when a webhook step runs again (SQS allows 900 s). */
export const FIRST_ATTEMPT_RESEND_DELAY_SECONDS = UNLEASED_FIRST_ATTEMPT_MS / 1000;

/** Why the delivery of an enrollment that was cancelled failed; replays leave such deliveries be. */
export const ENROLLMENT_CANCELLED = "enrollment cancelled";

/**
 * `auto`: the retry policy (docs/contract.md, section 5) applies and the enrollment waits for the
 * outcome.
 * `once`: a manual retry of a delivery that had failed for good; one attempt, no retries.
 */
export type RetryMode = "auto" | "once";

/** One webhook action's delivery: the request to make and where its attempts stand. */
export interface Delivery {
  readonly deliveryId: string;
  readonly enrollmentId: string;
  readonly workflowId: string;
  readonly actionId: string;
  readonly actionIndex: number;
  readonly objectType: ObjectType;
  readonly objectId: string;
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly authentication?: Authentication;
  /** Built once when the action ran; every attempt re-sends these exact bytes. */
  readonly body?: string;
  /** Values to read from a successful response into the record. */
  readonly outputs?: readonly WebhookOutput[];
  /** What the successful attempt's response gave for each output. */
  readonly outputResults?: readonly OutputResult[];
  readonly status: DeliveryStatus;
  readonly retryMode: RetryMode;
  readonly attemptCount: number;
  /** Number of the attempt to make next; null once the delivery has ended. */
  readonly nextAttempt: number | null;
  /** When that attempt is due by the retry policy (epoch ms). */
  readonly nextAttemptAt: number | null;
  /** Scheduled time of the first failed attempt; the 3-day window counts from it. */
  readonly firstFailedAt: number | null;
  readonly failureReason: string | null;
  /** When the scheduled retry fires (epoch ms, real time), while retrying. */
  readonly retryFiresAt?: number;
  /**
   * The attempt the retry policy counts failures from: absent (the first attempt), or the first
   * attempt of the replay that re-fired the delivery, so its delays start at a minute again.
   */
  readonly policyFromAttempt?: number;
  /** The last replay that re-fired the delivery; a replay re-fires a delivery once. */
  readonly replayedBy?: string;
  /** The newest attempt, when the state keeps it (a small one): the attempt log's last entry. */
  readonly lastAttempt?: Attempt;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One attempt, as the attempt log keeps it. */
export interface Attempt {
  readonly number: number;
  readonly scheduledAt: number;
  readonly sentAt: number;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly durationMs: number;
  /** The start of the response body, bounded. */
  readonly responseBody: string | null;
}

/** What to do after an attempt. */
export type AttemptVerdict =
  | { readonly status: "succeeded"; readonly outputResults?: readonly OutputResult[] }
  | {
      readonly status: "retrying";
      readonly nextAttempt: number;
      readonly nextAttemptAt: number;
      readonly delayMs: number;
      readonly firstFailedAt: number;
      /** When the retry fires (epoch ms, real time): the delay counted from the response. */
      readonly firesAt: number;
    }
  | { readonly status: "failed"; readonly reason: string };

/**
 * The id of the delivery of one action of one enrollment. Derived, not random, so that running
 * the same action twice (a message processed twice) finds the delivery it already made.
 */
export function deliveryIdFor(enrollmentId: string, actionId: string): string {
  const hex = createHash("sha256").update(`${enrollmentId}\n${actionId}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The webhook-lane message that makes attempt `attempt` of a delivery. */
export function attemptMessage(
  delivery: Pick<Delivery, "deliveryId" | "url">,
  attempt: number,
): DeliveryAttemptMessage {
  return { deliveryId: delivery.deliveryId, attempt, host: receiverOf(delivery.url) };
}

/**
 * The delivery of a webhook action of an enrollment, as the action starts it: pending, its first
 * attempt due now, retried by the retry policy. `body` is the request body, built once now.
 */
export function newDelivery(input: {
  enrollment: Enrollment;
  actionIndex: number;
  action: WebhookAction & { id: string };
  body: string | undefined;
  now: number;
}): Delivery {
  const { enrollment, actionIndex, action, body, now } = input;
  return {
    deliveryId: deliveryIdFor(enrollment.enrollmentId, action.id),
    enrollmentId: enrollment.enrollmentId,
    workflowId: enrollment.workflowId,
    actionId: action.id,
    actionIndex,
    objectType: enrollment.objectType,
    objectId: enrollment.objectId,
    method: action.method,
    url: action.url,
    ...(action.authentication ? { authentication: action.authentication } : {}),
    ...(action.outputs?.length ? { outputs: action.outputs } : {}),
    body,
    status: "pending",
    retryMode: "auto",
    attemptCount: 0,
    nextAttempt: 1,
    nextAttemptAt: now,
    firstFailedAt: null,
    failureReason: null,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * A delivery whose request can never be made (its record is gone, or its body too large): failed
 * for good before any attempt. The body is left out, since it may be what could not be stored.
 */
export function failedDelivery(delivery: Delivery, reason: string): Delivery {
  const { body: _body, ...withoutBody } = delivery;
  return {
    ...withoutBody,
    status: "failed",
    nextAttempt: null,
    nextAttemptAt: null,
    failureReason: reason,
  };
}

/** Which attempt went out, when it was due by the retry policy, and when it went out (epoch ms). */
export interface AttemptStart {
  readonly number: number;
  readonly scheduledAt: number;
  readonly sentAt: number;
}

/** An attempt the receiver answered, with whatever status. */
export function answeredAttempt(
  start: AttemptStart,
  response: { readonly statusCode: number; readonly body: string },
  durationMs: number,
): Attempt {
  const { number, scheduledAt, sentAt } = start;
  return {
    number,
    scheduledAt,
    sentAt,
    statusCode: response.statusCode,
    error: null,
    durationMs,
    responseBody: response.body,
  };
}

/** An attempt that got no answer: `error` says why (refused, DNS, connect, TLS, timeout...). */
export function unansweredAttempt(start: AttemptStart, error: string, durationMs: number): Attempt {
  const { number, scheduledAt, sentAt } = start;
  return { number, scheduledAt, sentAt, statusCode: null, error, durationMs, responseBody: null };
}

/** The name of the one-time schedule that fires an attempt: unique, at most 64 characters. */
export function retryScheduleName(deliveryId: string, attempt: number): string {
  return `${deliveryId}-${attempt}`;
}

/** Judges an attempt's result against the delivery's retry mode and the retry policy. */
export function judgeAttempt(
  delivery: Delivery,
  attempt: Attempt,
  retryAfter: string | undefined,
  random?: () => number,
): AttemptVerdict {
  const outcome = classifyAttempt(
    attempt.statusCode === null
      ? { error: attempt.error ?? "no response" }
      : { statusCode: attempt.statusCode },
  );
  if (outcome.kind === "succeeded") return { status: "succeeded" };
  if (outcome.kind === "failed") return { status: "failed", reason: outcome.reason };
  if (delivery.retryMode === "once") {
    return { status: "failed", reason: `${outcome.reason} (manual retry, not retried again)` };
  }
  const firstFailedAt = delivery.firstFailedAt ?? attempt.scheduledAt;
  const decision = decideRetry({
    attempt: attempt.number - (delivery.policyFromAttempt ?? 1) + 1,
    scheduledAt: attempt.scheduledAt,
    firstFailedAt,
    statusCode: attempt.statusCode ?? undefined,
    retryAfter,
    receivedAt: attempt.sentAt + attempt.durationMs,
    random,
  });
  if (decision.kind === "exhausted") {
    return { status: "failed", reason: `${decision.reason} (last: ${outcome.reason})` };
  }
  return {
    status: "retrying",
    nextAttempt: attempt.number + 1,
    nextAttemptAt: decision.scheduledAt,
    delayMs: decision.delayMs,
    firstFailedAt,
    firesAt: attempt.sentAt + attempt.durationMs + decision.delayMs,
  };
}

/** What the API shows of an attempt. */
function attemptView(attempt: Attempt) {
  return {
    number: attempt.number,
    scheduledAt: new Date(attempt.scheduledAt).toISOString(),
    sentAt: new Date(attempt.sentAt).toISOString(),
    statusCode: attempt.statusCode,
    error: attempt.error,
    durationMs: attempt.durationMs,
    responseBody: attempt.responseBody,
  };
}

/** What a delivery's views are made of; a list reads no more than this from its index. */
export type DeliverySummary = Pick<
  Delivery,
  | "deliveryId"
  | "enrollmentId"
  | "workflowId"
  | "actionId"
  | "objectType"
  | "objectId"
  | "method"
  | "url"
  | "status"
  | "nextAttempt"
  | "nextAttemptAt"
  | "failureReason"
  | "createdAt"
>;

/** What the API shows of a delivery: never its authentication secrets, nor its body. */
export function deliveryView(delivery: DeliverySummary, attempts: readonly Attempt[]) {
  return {
    deliveryId: delivery.deliveryId,
    enrollmentId: delivery.enrollmentId,
    workflowId: delivery.workflowId,
    actionId: delivery.actionId,
    objectType: delivery.objectType,
    objectId: delivery.objectId,
    method: delivery.method,
    url: delivery.url,
    status: delivery.status,
    attempts: attempts.map(attemptView),
    nextAttemptAt: delivery.nextAttempt === null ? null : isoOrNull(delivery.nextAttemptAt),
    failureReason: delivery.failureReason,
    createdAt: new Date(delivery.createdAt).toISOString(),
  };
}

/** A delivery as `GET /deliveries` lists it: as `GET /deliveries/{id}` shows it, without attempts. */
export function deliveryListView(delivery: DeliverySummary) {
  const { attempts: _attempts, ...view } = deliveryView(delivery, []);
  return view;
}
