import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import type { RecordsTable } from "#adapters/records-table";
import { failAction, finishAction, type ProgressReport } from "#app/enrollment-progress";
import {
  attemptMessage,
  deliveryIdFor,
  FIRST_ATTEMPT_RESEND_DELAY_SECONDS,
  failedDelivery,
  newDelivery,
} from "#domain/delivery";
import { type Enrollment, hasEnded } from "#domain/enrollment";
import { PayloadTooLargeError, StaleStateError, ValidationError } from "#domain/errors";
import type { AdvanceMessage, ResumeMessage, WorkflowStepMessage } from "#domain/messages";
import { webhookBody } from "#domain/payload";
import { applyPropertyChanges, type CrmRecord } from "#domain/record";
import type { DelayAction, SetPropertyAction, WebhookAction } from "#domain/workflow";

export interface WorkflowStepsDeps {
  readonly enrollments: EnrollmentsTable;
  readonly records: RecordsTable;
  readonly deliveries: DeliveriesTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly webhookLane: WebhookLaneQueue;
  readonly now: () => number;
  /** Multiplies delay actions' waits; 1 on AWS. */
  readonly timeScale: number;
  readonly portalId: number;
  /**
   * How long an enrollment must have stood still before a stale message re-sends its current
   * step: longer than a consumer can run, so a consumer still at work is never second-guessed.
   */
  readonly stalledAfterMs: number;
}

/** What a step did, for logs and metrics. */
export type StepReport = ProgressReport | { readonly kind: "waiting"; readonly actionType: string };

/**
 * Runs one message of the workflow-steps lane. Every move of the enrollment is conditional on
 * the action it expects, so a message processed twice (or two racing consumers) moves it once;
 * a message that finds the enrollment already further along, and stalled there, re-sends the step
 * that should follow, in case the consumer before it stopped between moving the enrollment and
 * sending that step.
 */
export async function runWorkflowStep(
  deps: WorkflowStepsDeps,
  message: WorkflowStepMessage,
): Promise<StepReport> {
  const enrollment = await deps.enrollments.get(message.enrollmentId);
  if (!enrollment) return { kind: "skipped", reason: "enrollment not found" };
  if (hasEnded(enrollment)) {
    return { kind: "skipped", reason: `enrollment ${enrollment.status} already` };
  }
  if (enrollment.currentIndex !== message.actionIndex) {
    await resendCurrentStep(deps, enrollment);
    return { kind: "skipped", reason: `enrollment is at action ${enrollment.currentIndex}` };
  }
  switch (message.type) {
    case "advance":
      return startAction(deps, enrollment, message);
    case "resume":
      return resumeAfterDelay(deps, enrollment, message);
  }
}

async function startAction(
  deps: WorkflowStepsDeps,
  enrollment: Enrollment,
  message: AdvanceMessage,
): Promise<StepReport> {
  const index = message.actionIndex;
  const progress = enrollment.actions[index];
  const action = enrollment.definition[index];
  if (!progress || !action) return { kind: "skipped", reason: `no action ${index}` };
  if (progress.status === "running" && action.type === "webhook") {
    return finishWebhookStart(deps, enrollment, index, action);
  }
  if (progress.status !== "pending")
    return { kind: "skipped", reason: `action ${index} is ${progress.status}` };
  switch (action.type) {
    case "setProperty":
      return setProperty(deps, enrollment, index, action);
    case "delay":
      return startDelay(deps, enrollment, index, action);
    case "webhook":
      return startWebhook(deps, enrollment, index, action);
  }
}

async function setProperty(
  deps: WorkflowStepsDeps,
  enrollment: Enrollment,
  index: number,
  action: SetPropertyAction,
): Promise<StepReport> {
  const key = { objectType: enrollment.objectType, objectId: enrollment.objectId };
  try {
    await deps.records.update(key, (current) => {
      const { record, changed } = applyPropertyChanges(
        current,
        key,
        { [action.property]: action.value },
        {
          sourceType: "AUTOMATION_PLATFORM",
          sourceId: enrollment.workflowId,
          sourceLabel: null,
          timestamp: deps.now(),
        },
      );
      return changed.length === 0 ? undefined : record;
    });
  } catch (error) {
    // No retry can make a refused value or an over-large record fit: the enrollment ends here.
    if (!(error instanceof PayloadTooLargeError || error instanceof ValidationError)) throw error;
    return failAction(deps, enrollment, index, `setProperty ${action.property}: ${error.message}`);
  }
  return finishAction(deps, enrollment, index, { status: "succeeded" });
}

async function startDelay(
  deps: WorkflowStepsDeps,
  enrollment: Enrollment,
  index: number,
  action: DelayAction,
): Promise<StepReport> {
  const now = deps.now();
  const waitMs = action.seconds * 1000 * deps.timeScale;
  const resumeAt = now + waitMs;
  await deps.workflowSteps.send(
    { type: "resume", enrollmentId: enrollment.enrollmentId, actionIndex: index, resumeAt },
    waitMs / 1000,
  );
  await ignoringStale(() => deps.enrollments.startAction(enrollment, index, { now, resumeAt }));
  return { kind: "waiting", actionType: "delay" };
}

async function resumeAfterDelay(
  deps: WorkflowStepsDeps,
  enrollment: Enrollment,
  message: ResumeMessage,
): Promise<StepReport> {
  const index = message.actionIndex;
  const progress = enrollment.actions[index];
  if (!progress || (progress.status !== "pending" && progress.status !== "running")) {
    return { kind: "skipped", reason: `action ${index} is ${progress?.status ?? "missing"}` };
  }
  const remainingMs = message.resumeAt - deps.now();
  if (remainingMs > 0) {
    await deps.workflowSteps.send(message, remainingMs / 1000);
    return { kind: "waiting", actionType: "delay" };
  }
  return finishAction(deps, enrollment, index, { status: "succeeded" });
}

/** What starting a webhook action takes. */
export type WebhookStartDeps = Pick<
  WorkflowStepsDeps,
  "enrollments" | "records" | "deliveries" | "workflowSteps" | "webhookLane" | "now" | "portalId"
>;

/**
 * Builds the delivery of a webhook action (its body is fixed now, for every attempt) and hands
 * it to the webhook lane. The enrollment waits at this action until the delivery ends. `known`
 * passes the record when the caller has just read it.
 */
export async function startWebhook(
  deps: WebhookStartDeps,
  enrollment: Enrollment,
  index: number,
  action: WebhookAction & { id: string },
  known?: { readonly record: CrmRecord | undefined },
): Promise<StepReport> {
  const now = deps.now();
  const record = known
    ? known.record
    : await deps.records.get({ objectType: enrollment.objectType, objectId: enrollment.objectId });
  let failure = record
    ? undefined
    : `${enrollment.objectType}/${enrollment.objectId} no longer exists`;
  let body: string | undefined;
  if (record) {
    try {
      body = webhookBody(action.body, action.method, record, { portalId: deps.portalId });
    } catch (error) {
      if (!(error instanceof PayloadTooLargeError)) throw error;
      failure = error.message;
    }
  }
  const delivery = newDelivery({ enrollment, actionIndex: index, action, body, now });
  const { deliveryId } = delivery;
  let created = false;
  if (!failure) {
    try {
      created = await deps.deliveries.create(delivery);
    } catch (error) {
      if (!(error instanceof PayloadTooLargeError)) throw error;
      failure = error.message;
    }
  }
  if (failure) {
    // The request can never be made: the delivery fails for good at once, and the record moves on.
    await deps.deliveries.create(failedDelivery(delivery, failure));
    return finishAction(deps, enrollment, index, { status: "failed", deliveryId });
  }
  // Run again, the step may find attempt 1 in flight without a lease: its message comes later.
  await deps.webhookLane.send(
    attemptMessage(delivery, 1),
    created ? 0 : FIRST_ATTEMPT_RESEND_DELAY_SECONDS,
  );
  // An enrollment created at its first webhook has that action marked running already.
  if (enrollment.actions[index]?.status === "pending") {
    await ignoringStale(() => deps.enrollments.startAction(enrollment, index, { now, deliveryId }));
  }
  return { kind: "waiting", actionType: "webhook" };
}

/**
 * A webhook action marked running whose start may not have been finished: an enrollment is
 * created with its first webhook running, and the API asks for this step when it could not
 * create the delivery or hand its first attempt to the lane (the sweeper asks for it when the
 * delivery is still missing later on). The delivery is created when it is missing, and its
 * first attempt handed to the lane again while none was made or is in flight; the lane makes
 * each attempt once, so a second message for it sends nothing.
 */
async function finishWebhookStart(
  deps: WorkflowStepsDeps,
  enrollment: Enrollment,
  index: number,
  action: WebhookAction & { id: string },
): Promise<StepReport> {
  const deliveryId = deliveryIdFor(enrollment.enrollmentId, action.id);
  const state = await deps.deliveries.readState(deliveryId);
  if (!state) return startWebhook(deps, enrollment, index, action);
  const { delivery, leaseUntil } = state;
  const inFlight = leaseUntil !== undefined && leaseUntil > deps.now();
  if (delivery.status !== "pending" || delivery.attemptCount > 0 || inFlight) {
    return { kind: "skipped", reason: `action ${index} is running, its delivery under way` };
  }
  // Attempt 1 may be in flight without a lease (the first message may have gone out after all):
  // this one comes late enough that the first is recorded, and then it sends nothing.
  await deps.webhookLane.send(attemptMessage(delivery, 1), FIRST_ATTEMPT_RESEND_DELAY_SECONDS);
  return { kind: "waiting", actionType: "webhook" };
}

async function resendCurrentStep(deps: WorkflowStepsDeps, enrollment: Enrollment): Promise<void> {
  const current = enrollment.actions[enrollment.currentIndex];
  if (current?.status !== "pending") return;
  if (deps.now() - enrollment.updatedAt < deps.stalledAfterMs) return;
  await deps.workflowSteps.send({
    type: "advance",
    enrollmentId: enrollment.enrollmentId,
    actionIndex: enrollment.currentIndex,
  });
}

/** A lost race to mark an action started is fine: the winner did the same. */
async function ignoringStale(write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (error) {
    if (!(error instanceof StaleStateError)) throw error;
  }
}
