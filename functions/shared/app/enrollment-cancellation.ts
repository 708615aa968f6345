import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { TransactItem } from "#adapters/dynamodb-client";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { RetrySchedules } from "#adapters/retry-schedules";
import { readEnrollment } from "#app/enrollments";
import {
  attemptMessage,
  type Delivery,
  deliveryIdFor,
  ENROLLMENT_CANCELLED,
  failedDelivery,
  newDelivery,
} from "#domain/delivery";
import { type Enrollment, hasEnded } from "#domain/enrollment";
import { ConflictError, NotFoundError, StaleStateError } from "#domain/errors";
import type { RetryScheduleGroup } from "#shared/config";

/**
 * Reads a cancel makes before it gives up on an enrollment that keeps moving: each lost race means
 * the lane moved it one step in between, and three steps within one request's few milliseconds
 * is already more than a healthy lane does.
 */
const MAX_CANCEL_TRIES = 3;

export interface CancellationDeps {
  readonly enrollments: EnrollmentsTable;
  readonly deliveries: DeliveriesTable;
  /** Only deletes schedules: cancelling needs no more than the retry group. */
  readonly retrySchedules: RetrySchedules<RetryScheduleGroup>;
  readonly now: () => number;
}

/**
 * Cancels an active or waiting enrollment (`DELETE /enrollments/{id}`) and answers with it. In
 * one transaction, conditional on both standing as read, the enrollment becomes `cancelled` and
 * the delivery of its current webhook action, if pending or retrying, fails with reason
 * `enrollment cancelled`; a race with the lane makes it read again. Then the delivery's scheduled
 * retry is deleted and the record's place in the workflow released. From then on a step or an
 * attempt message that arrives for the enrollment does nothing: it has ended. ConflictError
 * (409) for an enrollment that has ended already.
 */
export async function cancelEnrollment(deps: CancellationDeps, enrollmentId: string) {
  for (let tries = 1; ; tries++) {
    const enrollment = await deps.enrollments.get(enrollmentId);
    if (!enrollment) throw new NotFoundError(`enrollment ${enrollmentId} not found`);
    if (hasEnded(enrollment)) {
      throw new ConflictError(
        `enrollment ${enrollmentId} is ${enrollment.status}; only active or waiting enrollments can be cancelled`,
      );
    }
    const now = deps.now();
    const current = await currentDelivery(deps, enrollment, now);
    try {
      await deps.enrollments.cancel(enrollment, now, current?.write ? [current.write] : []);
    } catch (error) {
      if (!(error instanceof StaleStateError)) throw error;
      if (tries >= MAX_CANCEL_TRIES) {
        throw new ConflictError(
          `enrollment ${enrollmentId} kept moving while being cancelled; try again`,
        );
      }
      continue;
    }
    const stopped = current?.delivery;
    if (stopped?.status === "retrying" && stopped.nextAttempt !== null) {
      await deleteScheduledRetry(deps, attemptMessage(stopped, stopped.nextAttempt));
    }
    return readEnrollment(deps, enrollmentId);
  }
}

/**
 * The delivery of the enrollment's current action, when that action is a webhook, and the write
 * the cancel makes on it: failing it while it is pending or retrying, or, while there is none
 * yet, putting it there failed, so that a step that read the enrollment before the cancel finds
 * it ended and sends nothing.
 */
async function currentDelivery(
  deps: CancellationDeps,
  enrollment: Enrollment,
  now: number,
): Promise<{ delivery?: Delivery; write?: TransactItem } | undefined> {
  const index = enrollment.currentIndex;
  const action = enrollment.actions[index];
  const definition = enrollment.definition[index];
  if (action?.type !== "webhook" || definition?.type !== "webhook") return undefined;
  const deliveryId = action.deliveryId ?? deliveryIdFor(enrollment.enrollmentId, action.actionId);
  const delivery = await deps.deliveries.get(deliveryId);
  if (!delivery) {
    const unstarted = newDelivery({
      enrollment,
      actionIndex: index,
      action: definition,
      body: undefined,
      now,
    });
    return { write: deps.deliveries.preemption(failedDelivery(unstarted, ENROLLMENT_CANCELLED)) };
  }
  if (delivery.status !== "pending" && delivery.status !== "retrying") return { delivery };
  return { delivery, write: deps.deliveries.cancellation(delivery, now) };
}

/**
 * Deletes the schedule of the retry the cancel stopped. Should that fail, the schedule fires
 * into a delivery that has failed: its message is skipped and nothing is sent.
 */
async function deleteScheduledRetry(
  deps: CancellationDeps,
  message: ReturnType<typeof attemptMessage>,
): Promise<void> {
  try {
    await deps.retrySchedules.cancel(message);
  } catch {
    // Harmless, as said above; the cancel has been made and is answered as such.
  }
}
