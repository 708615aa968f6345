/**
 * The retry policy of webhook deliveries: which results are retried, how long to wait before the
 * next attempt, and when the 3-day window is spent. Every time here is a scheduled time, so a
 * compressed clock walks the same schedule.
 */
import { STATUS_CODES } from "node:http";

export const FIRST_RETRY_DELAY_MS = 60_000;
export const MAX_RETRY_DELAY_MS = 8 * 3600_000;
export const RETRY_WINDOW_MS = 3 * 24 * 3600_000;

/** Jitter adds at most this share of the nominal delay. */
const MAX_JITTER_SHARE = 0.1;

/** The first failure count whose doubled delay reaches the cap; larger exponents are not computed. */
const CAPPED_FROM_FAILURE = 1 + Math.ceil(Math.log2(MAX_RETRY_DELAY_MS / FIRST_RETRY_DELAY_MS));

/** What one attempt's result means. */
export type AttemptOutcome =
  | { kind: "succeeded" }
  | { kind: "retryable"; reason: string }
  | { kind: "failed"; reason: string };

/**
 * Classifies a response status or a transport error (connection error, timeout...): 2xx succeeds;
 * transport errors, 408, 429 and 5xx are retried; every other status fails for good.
 */
export function classifyAttempt(
  result: { statusCode: number } | { error: string },
): AttemptOutcome {
  if ("error" in result) {
    const reason = result.error.trim();
    return { kind: "retryable", reason: reason === "" ? "request failed" : reason };
  }
  const { statusCode } = result;
  if (statusCode >= 200 && statusCode <= 299) {
    return { kind: "succeeded" };
  }
  if (statusCode === 408 || statusCode === 429 || (statusCode >= 500 && statusCode <= 599)) {
    return { kind: "retryable", reason: describeStatus(statusCode) };
  }
  if (statusCode >= 300 && statusCode <= 399) {
    return {
      kind: "failed",
      reason: `${describeStatus(statusCode)} is not retried (redirects are not followed)`,
    };
  }
  // Other 4xx, and 1xx or out-of-range codes: the receiver answered, and the same request
  // would get the same answer, so retrying would only add load.
  return { kind: "failed", reason: `${describeStatus(statusCode)} is not retried` };
}

export interface RetryInput {
  /** Number (1-based) of the attempt that just failed. */
  readonly attempt: number;
  /** When that attempt was due (epoch ms, the scheduled time, not the sent time). */
  readonly scheduledAt: number;
  /** Scheduled time of the first failed attempt of the delivery (epoch ms). */
  readonly firstFailedAt: number;
  /** Status of the failed attempt, when a response came back. */
  readonly statusCode?: number;
  /** The raw Retry-After header of that response, if any. */
  readonly retryAfter?: string;
  /** When the response arrived (epoch ms), to turn an HTTP-date Retry-After into a delay. */
  readonly receivedAt: number;
  /** Jitter source returning [0, 1); absent means no jitter. */
  readonly random?: () => number;
}

export type RetryDecision =
  | { kind: "retry"; delayMs: number; scheduledAt: number }
  | { kind: "exhausted"; reason: string };

/** When to make the next attempt, or that the 3-day window is spent; call it after a retryable outcome. */
export function decideRetry(input: RetryInput): RetryDecision {
  const nominal = retryDelayMs(input.attempt);
  const jitter = input.random
    ? Math.floor(unitInterval(input.random()) * nominal * MAX_JITTER_SHARE)
    : 0;
  let delayMs = nominal + jitter;
  if (input.statusCode === 429 || input.statusCode === 503) {
    const retryAfterMs = parseRetryAfter(input.retryAfter, input.receivedAt);
    if (retryAfterMs !== undefined) {
      delayMs = Math.max(delayMs, retryAfterMs);
    }
  }
  delayMs = Math.min(Math.max(delayMs, FIRST_RETRY_DELAY_MS), MAX_RETRY_DELAY_MS);
  const scheduledAt = input.scheduledAt + delayMs;
  if (scheduledAt - input.firstFailedAt > RETRY_WINDOW_MS) {
    return { kind: "exhausted", reason: "retry window exhausted" };
  }
  return { kind: "retry", delayMs, scheduledAt };
}

/** Nominal delay after the n-th failure: 1 min doubling, capped at 8 h. */
export function retryDelayMs(failureCount: number): number {
  if (!Number.isInteger(failureCount) || failureCount < 1) {
    throw new RangeError(`failureCount must be a positive integer, got ${failureCount}`);
  }
  if (failureCount >= CAPPED_FROM_FAILURE) {
    return MAX_RETRY_DELAY_MS;
  }
  return FIRST_RETRY_DELAY_MS * 2 ** (failureCount - 1);
}

const DELTA_SECONDS = /^\d+$/;
// The three forms an HTTP date may take (the preferred one, the obsolete one with a two-digit year,
// and asctime's); matching them first keeps Date.parse from reading arbitrary text (it takes "-5"
// for a date in 2001).
const IMF_FIXDATE = /^[a-z]{3}, \d{2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/i;
const OBSOLETE_DATE = /^[a-z]{6,9}, \d{2}-[a-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT$/i;
const ASCTIME_DATE = /^[a-z]{3} [a-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/i;

/** Parses Retry-After (delta seconds or HTTP date) into milliseconds from `receivedAt`, or undefined. */
export function parseRetryAfter(
  header: string | undefined,
  receivedAt: number,
): number | undefined {
  const value = header?.trim();
  if (!value) {
    return undefined;
  }
  if (DELTA_SECONDS.test(value)) {
    return Number(value) * 1000;
  }
  let date = Number.NaN;
  if (IMF_FIXDATE.test(value) || OBSOLETE_DATE.test(value)) {
    date = Date.parse(value);
  } else if (ASCTIME_DATE.test(value)) {
    // asctime carries no zone; HTTP dates are always GMT.
    date = Date.parse(`${value} GMT`);
  }
  if (Number.isNaN(date)) {
    return undefined;
  }
  return Math.max(0, date - receivedAt);
}

function describeStatus(statusCode: number): string {
  const text = STATUS_CODES[statusCode];
  return text ? `HTTP ${statusCode} ${text}` : `HTTP ${statusCode}`;
}

/** Keeps a misbehaving jitter source inside [0, 1), so jitter never subtracts or exceeds a tenth. */
function unitInterval(value: number): number {
  if (!(value > 0)) {
    return 0;
  }
  return Math.min(value, 1 - Number.EPSILON);
}
