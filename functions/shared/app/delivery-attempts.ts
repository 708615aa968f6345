import type { AppsTable } from "#adapters/apps-table";
import type { DeliveriesTable, DeliveryState } from "#adapters/deliveries-table";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import type { RecordsTable } from "#adapters/records-table";
import type { RetrySchedules } from "#adapters/retry-schedules";
import {
  DEFAULT_MAX_BODY_BYTES,
  type WebhookClient,
  type WebhookResult,
} from "#adapters/webhook-client";
import { finishWebhookAction, type ProgressReport } from "#app/enrollment-progress";
import {
  type Attempt,
  type AttemptStart,
  type AttemptVerdict,
  answeredAttempt,
  attemptMessage,
  type Delivery,
  judgeAttempt,
  UNLEASED_FIRST_ATTEMPT_MS,
  unansweredAttempt,
} from "#domain/delivery";
import { StaleStateError } from "#domain/errors";
import type { Admission, HostAdmission, HostOutcome } from "#domain/host-admission";
import type { DeliveryAttemptMessage } from "#domain/messages";
import { receiverOf } from "#domain/target-url";
import { MAX_OUTPUT_RESPONSE_BYTES, type OutputResult, readOutputs } from "#domain/webhook-outputs";
import { buildAttemptRequest, redactSecrets, requestSecrets } from "#domain/webhook-request";

export interface DeliveryAttemptsDeps {
  readonly deliveries: DeliveriesTable;
  /** The lane moves an enrollment past its webhook action itself, once the delivery ends. */
  readonly enrollments: EnrollmentsTable;
  /** Where a webhook's outputs are written, before the enrollment moves on. */
  readonly records: RecordsTable;
  readonly apps: AppsTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly webhookLane: WebhookLaneQueue;
  readonly retrySchedules: RetrySchedules;
  readonly webhookClient: WebhookClient;
  /** Each receiver's share of the lane: attempts in flight and its breaker. */
  readonly admission: HostAdmission;
  readonly now: () => number;
  /** Jitter source for retry delays. */
  readonly random: () => number;
  /** How long a consumer owns an attempt; longer than the function can run. */
  readonly leaseMs: number;
}

/** A retry due within this time is sent to the lane at once rather than scheduled. */
const DUE_NOW_MS = 1000;

/** What an attempt message led to, for logs and metrics. */
export type AttemptReport =
  | { readonly kind: "skipped"; readonly reason: string }
  /** The receiver was at its limit: the message went back on the lane for `delayMs`. */
  | { readonly kind: "deferred"; readonly reason: string; readonly delayMs: number }
  | {
      readonly kind: "sent";
      readonly delivery: Delivery;
      readonly attempt: Attempt;
      readonly verdict: AttemptVerdict;
      /** True when a scheduled retry fired this attempt. */
      readonly fromSchedule: boolean;
      /** True when the receiver's breaker was open: the attempt failed without being sent. */
      readonly paused: boolean;
      /** True when this attempt ended the delivery and, with it, the enrollment's last action. */
      readonly enrollmentCompleted: boolean;
    };

/** Another consumer holds the attempt; the message comes back after its visibility timeout. */
export class AttemptInFlightError extends Error {
  override name = "AttemptInFlightError";
}

/** The retry could not be scheduled; the message is retried, and re-schedules when it returns. */
export class RetryScheduleError extends Error {
  override name = "RetryScheduleError";
}

/**
 * Makes one attempt of a delivery: asks its receiver's admission (the receiver may be at its
 * limit, and the message goes back on the lane for a while, or its breaker may be open, and the
 * attempt fails without being sent), takes the attempt's lease so no other consumer sends it
 * (but for a first attempt that nothing else can be sending, `goesUnleased`), sends it, records
 * it with its verdict, then schedules the retry or tells the enrollment the delivery ended. A
 * message for an attempt already made only makes sure that what follows it happened.
 */
export async function makeDeliveryAttempt(
  deps: DeliveryAttemptsDeps,
  message: DeliveryAttemptMessage,
): Promise<AttemptReport> {
  // A message that names its receiver is admitted before anything is read: a deferral is free.
  let admission =
    message.host === undefined
      ? undefined
      : await deps.admission.admit(message.host, message.deferrals);
  try {
    if (admission?.kind === "deferred") return await defer(deps, message, admission);
    const state = await deps.deliveries.getForAttempt(message.deliveryId);
    if (!state) return { kind: "skipped", reason: "delivery not found" };
    const { delivery } = state;
    if (delivery.nextAttempt === null || message.attempt < delivery.nextAttempt) {
      await ensureFollowUp(deps, delivery);
      return { kind: "skipped", reason: `attempt ${message.attempt} was made already` };
    }
    if (message.attempt > delivery.nextAttempt) {
      return {
        kind: "skipped",
        reason: `attempt ${message.attempt} is not due (next is ${delivery.nextAttempt})`,
      };
    }
    admission ??= await deps.admission.admit(receiverOf(delivery.url), message.deferrals);
    if (admission.kind === "deferred") return await defer(deps, message, admission);
    return await attempt(deps, state, message, admission);
  } finally {
    // Released without an outcome on every path that made no request; `send` released the rest.
    if (admission?.kind === "admitted") admission.release();
  }
}

async function attempt(
  deps: DeliveryAttemptsDeps,
  state: DeliveryState,
  message: DeliveryAttemptMessage,
  admission: Exclude<Admission, { kind: "deferred" }>,
): Promise<AttemptReport> {
  const { delivery } = state;
  const leased = !goesUnleased(state, message.attempt, deps.now(), deps.leaseMs);
  if (
    leased &&
    !(await deps.deliveries.claimAttempt(
      delivery.deliveryId,
      message.attempt,
      deps.now(),
      deps.leaseMs,
    ))
  ) {
    throw new AttemptInFlightError(
      `attempt ${message.attempt} of ${delivery.deliveryId} is being made elsewhere`,
    );
  }
  const manual = delivery.status === "pending" && message.attempt > 1;
  if (manual) await cancelSupersededSchedule(deps, message);

  const sent: SentAttempt =
    admission.kind === "paused"
      ? {
          attempt: unansweredAttempt(
            attemptStart(deps, delivery, message.attempt),
            admission.reason,
            0,
          ),
        }
      : await send(deps, delivery, message.attempt, admission);
  // A target the policy refuses, or a signing app that is gone, stays so: retrying cannot help.
  const judged: AttemptVerdict = sent.permanentFailure
    ? { status: "failed", reason: sent.permanentFailure }
    : judgeAttempt(delivery, sent.attempt, sent.retryAfter, deps.random);
  const verdict: AttemptVerdict =
    judged.status === "succeeded" && sent.outputResults
      ? { ...judged, outputResults: sent.outputResults }
      : judged;
  try {
    await deps.deliveries.recordAttempt(delivery, sent.attempt, verdict, deps.now(), { leased });
  } catch (error) {
    // Our lease ran out and another consumer made and recorded this attempt, or, unleased, a
    // duplicate of our message recorded it or leased it: its record stands.
    if (error instanceof StaleStateError) return { kind: "skipped", reason: error.message };
    throw error;
  }
  const followUp = await ensureFollowUp(deps, {
    ...delivery,
    status: verdict.status,
    nextAttempt: verdict.status === "retrying" ? verdict.nextAttempt : null,
    ...(verdict.status === "retrying" ? { retryFiresAt: verdict.firesAt } : {}),
    ...(verdict.status === "succeeded" && verdict.outputResults
      ? { outputResults: verdict.outputResults }
      : {}),
  });
  return {
    kind: "sent",
    delivery,
    attempt: sent.attempt,
    verdict,
    fromSchedule: delivery.status === "retrying",
    paused: admission.kind === "paused",
    enrollmentCompleted: followUp?.kind === "finished" && followUp.enrollmentStatus === "completed",
  };
}

/**
 * Whether attempt `number` may be made without a lease write: the first attempt of a delivery
 * that has not moved since the webhook action created it (no lease taken, never in the open-work
 * index, so neither the sweeper nor a replay re-sent it), made early enough that this consumer's
 * lease would end within `UNLEASED_FIRST_ATTEMPT_MS` of the creation. Nothing else can then be
 * sending it but a duplicate of its message, which SQS delivers rarely: both may send it (at
 * least once, the same `X-Delivery-Id` and attempt number), and the first to record it wins.
 */
function goesUnleased(state: DeliveryState, number: number, now: number, leaseMs: number): boolean {
  const { delivery, leaseUntil, marks } = state;
  return (
    number === 1 &&
    delivery.nextAttempt === 1 &&
    delivery.attemptCount === 0 &&
    delivery.status === "pending" &&
    delivery.replayedBy === undefined &&
    leaseUntil === undefined &&
    marks.sweepAt === undefined &&
    marks.resumes === 0 &&
    now + leaseMs <= delivery.createdAt + UNLEASED_FIRST_ATTEMPT_MS
  );
}

/** Puts the message back on the lane, hidden for the admission's delay; not an attempt. */
async function defer(
  deps: DeliveryAttemptsDeps,
  message: DeliveryAttemptMessage,
  admission: Extract<Admission, { kind: "deferred" }>,
): Promise<AttemptReport> {
  await deps.webhookLane.send(
    { ...message, deferrals: (message.deferrals ?? 0) + 1 },
    admission.delayMs / 1000,
  );
  return { kind: "deferred", reason: admission.reason, delayMs: admission.delayMs };
}

function attemptStart(
  deps: DeliveryAttemptsDeps,
  delivery: Delivery,
  number: number,
): AttemptStart {
  const sentAt = deps.now();
  return { number, scheduledAt: delivery.nextAttemptAt ?? sentAt, sentAt };
}

interface SentAttempt {
  readonly attempt: Attempt;
  readonly retryAfter?: string;
  /** Set when the attempt failed in a way no retry can change. */
  readonly permanentFailure?: string;
  /** What a 2xx response gave for the delivery's outputs, when it has some. */
  readonly outputResults?: OutputResult[];
}

async function send(
  deps: DeliveryAttemptsDeps,
  delivery: Delivery,
  number: number,
  admission: Extract<Admission, { kind: "admitted" }>,
): Promise<SentAttempt> {
  const auth = delivery.authentication;
  const app = auth?.type === "signature" ? await deps.apps.get(auth.appId) : undefined;
  const start = attemptStart(deps, delivery, number);
  if (auth?.type === "signature" && !app) {
    const error = `signing app ${auth.appId} not found`;
    return { attempt: unansweredAttempt(start, error, 0), permanentFailure: error };
  }
  const request = buildAttemptRequest({
    deliveryId: delivery.deliveryId,
    attempt: number,
    method: delivery.method,
    url: delivery.url,
    authentication: auth,
    body: delivery.body,
    clientSecret: app?.clientSecret,
    previousClientSecret: app?.previousClientSecret,
    now: start.sentAt,
  });
  const outputs = delivery.outputs ?? [];
  // Outputs are read from a longer stretch of the response than the attempt log keeps.
  const result = await deps.webhookClient.send(
    request,
    outputs.length > 0 ? { maxBodyBytes: MAX_OUTPUT_RESPONSE_BYTES } : undefined,
  );
  admission.release(hostOutcome(result));
  // The attempt log shows what came back, and outputs take values from it: a receiver that
  // echoes the request must put the request's secrets in neither.
  const secrets = requestSecrets(auth, app);
  if (!result.ok) {
    const error = redactSecrets(result.error, secrets);
    const attempt = unansweredAttempt(start, error, result.durationMs);
    return result.errorKind === "refused"
      ? { attempt, permanentFailure: result.error }
      : { attempt };
  }
  const { statusCode, headers, bodyTruncated } = result.response;
  const body = redactSecrets(result.response.body, secrets, bodyTruncated);
  const attempt = answeredAttempt(start, { statusCode, body: logged(body) }, result.durationMs);
  const succeeded = statusCode >= 200 && statusCode < 300;
  return {
    attempt,
    retryAfter: headers["retry-after"],
    ...(succeeded && outputs.length > 0
      ? { outputResults: readOutputs(outputs, { body, bodyTruncated }) }
      : {}),
  };
}

/** The start of a response body, as much as the attempt log keeps. */
function logged(body: string): string {
  const bytes = Buffer.from(body, "utf8");
  return bytes.byteLength <= DEFAULT_MAX_BODY_BYTES
    ? body
    : bytes.subarray(0, DEFAULT_MAX_BODY_BYTES).toString("utf8");
}

/**
 * What a result shows of the receiver's capacity: an answer of any status reached it; a timeout
 * or a failed connection did not. Other failures (a name that does not resolve, a refused
 * address, a bad certificate) are quick and say nothing of its capacity.
 */
function hostOutcome(result: WebhookResult): HostOutcome | undefined {
  if (result.ok) return { reached: true, durationMs: result.durationMs };
  if (result.errorKind === "timeout" || result.errorKind === "connect") {
    return { reached: false, durationMs: result.durationMs };
  }
  return undefined;
}

/**
 * Makes sure what follows the delivery's last recorded attempt happened: its retry is scheduled,
 * or its enrollment moved past the webhook action. Both are idempotent, so doing it again is
 * harmless.
 */
async function ensureFollowUp(
  deps: DeliveryAttemptsDeps,
  delivery: Delivery,
): Promise<ProgressReport | undefined> {
  if (delivery.status === "retrying" && delivery.nextAttempt !== null) {
    const message = attemptMessage(delivery, delivery.nextAttempt);
    const firesAt = delivery.retryFiresAt ?? deps.now();
    try {
      // A schedule cannot be set in the past: a retry already due goes straight to the lane.
      if (firesAt - deps.now() < DUE_NOW_MS) await deps.webhookLane.send(message);
      else await deps.retrySchedules.schedule(message, new Date(firesAt));
    } catch (error) {
      throw new RetryScheduleError(`could not schedule ${JSON.stringify(message)}`, {
        cause: error,
      });
    }
    return undefined;
  }
  if (
    (delivery.status === "succeeded" || delivery.status === "failed") &&
    delivery.retryMode === "auto"
  ) {
    return finishWebhookAction(deps, delivery);
  }
  return undefined;
}

/** A manual retry replaces the scheduled attempt of the same number: that schedule must not fire. */
async function cancelSupersededSchedule(
  deps: DeliveryAttemptsDeps,
  message: DeliveryAttemptMessage,
) {
  try {
    await deps.retrySchedules.cancel(message);
  } catch {
    // Harmless if it fires anyway: its attempt will have been made, and the message is skipped.
  }
}
