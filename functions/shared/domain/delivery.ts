import { createHash } from "node:crypto";
import { isoOrNull } from "#domain/enrollment";
import type { Authentication, ObjectType } from "#domain/requests";
import { classifyAttempt, decideRetry } from "#domain/retry-policy";

export type DeliveryStatus = "pending" | "retrying" | "succeeded" | "failed";

/**
 * `auto`: the retry policy of SPEC section 5 applies and the enrollment waits for the outcome.
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
  | { readonly status: "succeeded" }
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
    attempt: attempt.number,
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
export function attemptView(attempt: Attempt) {
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

/** What the API shows of a delivery: never its authentication secrets, nor its body. */
export function deliveryView(delivery: Delivery, attempts: readonly Attempt[]) {
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
