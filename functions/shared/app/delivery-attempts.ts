import type { AppsTable } from "#adapters/apps-table";
import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import type { RetrySchedules } from "#adapters/retry-schedules";
import type { WebhookClient } from "#adapters/webhook-client";
import {
  type Attempt,
  type AttemptVerdict,
  answeredAttempt,
  type Delivery,
  judgeAttempt,
  unansweredAttempt,
} from "#domain/delivery";
import { StaleStateError } from "#domain/errors";
import type { DeliveryAttemptMessage } from "#domain/messages";
import { buildAttemptRequest } from "#domain/webhook-request";

export interface DeliveryAttemptsDeps {
  readonly deliveries: DeliveriesTable;
  readonly apps: AppsTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly webhookLane: WebhookLaneQueue;
  readonly retrySchedules: RetrySchedules;
  readonly webhookClient: WebhookClient;
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
  | {
      readonly kind: "sent";
      readonly delivery: Delivery;
      readonly attempt: Attempt;
      readonly verdict: AttemptVerdict;
      /** True when a scheduled retry fired this attempt. */
      readonly fromSchedule: boolean;
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
 * Makes one attempt of a delivery: takes the attempt's lease so no other consumer sends it,
 * sends it, records it with its verdict in one conditional write, then schedules the retry or
 * tells the enrollment the delivery ended. A message for an attempt already made only makes sure
 * that what follows it happened.
 */
export async function makeDeliveryAttempt(
  deps: DeliveryAttemptsDeps,
  message: DeliveryAttemptMessage,
): Promise<AttemptReport> {
  const delivery = await deps.deliveries.get(message.deliveryId);
  if (!delivery) return { kind: "skipped", reason: "delivery not found" };
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
  if (
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

  const attempt = await send(deps, delivery, message.attempt);
  // A target the policy refuses, or a signing app that is gone, stays so: retrying cannot help.
  const verdict: AttemptVerdict = attempt.permanentFailure
    ? { status: "failed", reason: attempt.permanentFailure }
    : judgeAttempt(delivery, attempt.attempt, attempt.retryAfter, deps.random);
  try {
    await deps.deliveries.recordAttempt(delivery, attempt.attempt, verdict, deps.now());
  } catch (error) {
    // Our lease ran out and another consumer made and recorded this attempt: its record stands.
    if (error instanceof StaleStateError) return { kind: "skipped", reason: error.message };
    throw error;
  }
  await ensureFollowUp(deps, {
    ...delivery,
    status: verdict.status,
    nextAttempt: verdict.status === "retrying" ? verdict.nextAttempt : null,
    ...(verdict.status === "retrying" ? { retryFiresAt: verdict.firesAt } : {}),
  });
  return {
    kind: "sent",
    delivery,
    attempt: attempt.attempt,
    verdict,
    fromSchedule: delivery.status === "retrying",
  };
}

interface SentAttempt {
  readonly attempt: Attempt;
  readonly retryAfter?: string;
  /** Set when the attempt failed in a way no retry can change. */
  readonly permanentFailure?: string;
}

async function send(
  deps: DeliveryAttemptsDeps,
  delivery: Delivery,
  number: number,
): Promise<SentAttempt> {
  const auth = delivery.authentication;
  const app = auth?.type === "signature" ? await deps.apps.get(auth.appId) : undefined;
  const sentAt = deps.now();
  const start = { number, scheduledAt: delivery.nextAttemptAt ?? sentAt, sentAt };
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
    now: sentAt,
  });
  const result = await deps.webhookClient.send(request);
  const attempt = result.ok
    ? answeredAttempt(start, result.response, result.durationMs)
    : unansweredAttempt(start, result.error, result.durationMs);
  if (!result.ok) {
    return result.errorKind === "refused"
      ? { attempt, permanentFailure: result.error }
      : { attempt };
  }
  return { attempt, retryAfter: result.response.headers["retry-after"] };
}

/**
 * Makes sure what follows the delivery's last recorded attempt happened: its retry is scheduled,
 * or the enrollment heard that it ended. Both are idempotent, so doing it again is harmless.
 */
async function ensureFollowUp(deps: DeliveryAttemptsDeps, delivery: Delivery): Promise<void> {
  if (delivery.status === "retrying" && delivery.nextAttempt !== null) {
    const message = { deliveryId: delivery.deliveryId, attempt: delivery.nextAttempt };
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
    return;
  }
  if (
    (delivery.status === "succeeded" || delivery.status === "failed") &&
    delivery.retryMode === "auto"
  ) {
    await deps.workflowSteps.send({
      type: "deliveryEnded",
      enrollmentId: delivery.enrollmentId,
      actionIndex: delivery.actionIndex,
      deliveryId: delivery.deliveryId,
    });
  }
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
