import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { WorkflowStepsQueue } from "#adapters/lane-queues";
import type { RecordsTable } from "#adapters/records-table";
import { type Delivery, deliveryIdFor } from "#domain/delivery";
import { type Enrollment, type EnrollmentStatus, hasEnded } from "#domain/enrollment";
import { PayloadTooLargeError, StaleStateError, ValidationError } from "#domain/errors";
import { applyPropertyChanges } from "#domain/record";
import { notWritten, outputChanges } from "#domain/webhook-outputs";

/** What moving an enrollment on did, for logs and metrics. */
export type ProgressReport =
  | { readonly kind: "skipped"; readonly reason: string }
  | {
      readonly kind: "finished";
      readonly actionType: string;
      readonly enrollmentStatus: EnrollmentStatus;
      /** Why the action could not run, when the enrollment failed at it. */
      readonly reason?: string;
    };

export interface EnrollmentProgressDeps {
  readonly enrollments: EnrollmentsTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly now: () => number;
}

/**
 * Finishes an action and sends the next one to the workflow-steps lane, unless another consumer
 * finished it first.
 */
export async function finishAction(
  deps: EnrollmentProgressDeps,
  enrollment: Enrollment,
  index: number,
  change: { status: "succeeded" | "failed"; deliveryId?: string },
): Promise<ProgressReport> {
  const actionType = enrollment.actions[index]?.type ?? "unknown";
  let next: EnrollmentStatus;
  try {
    next = await deps.enrollments.finishAction(enrollment, index, { ...change, now: deps.now() });
  } catch (error) {
    if (error instanceof StaleStateError) return { kind: "skipped", reason: error.message };
    throw error;
  }
  if (next !== "completed") {
    await deps.workflowSteps.send({
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: index + 1,
    });
  }
  return { kind: "finished", actionType, enrollmentStatus: next };
}

/** Fails an action that can never run, which ends the enrollment, unless it moved on already. */
export async function failAction(
  deps: EnrollmentProgressDeps,
  enrollment: Enrollment,
  index: number,
  reason: string,
): Promise<ProgressReport> {
  const actionType = enrollment.actions[index]?.type ?? "unknown";
  try {
    await deps.enrollments.failAction(enrollment, index, { now: deps.now(), reason });
  } catch (error) {
    if (error instanceof StaleStateError) return { kind: "skipped", reason: error.message };
    throw error;
  }
  return { kind: "finished", actionType, enrollmentStatus: "failed", reason };
}

/** What finishing a webhook action takes: the record receives the webhook's outputs. */
export interface WebhookFinishDeps extends EnrollmentProgressDeps {
  readonly records: RecordsTable;
  /** Told when the record did not take the outputs, so the action's outcome says so. */
  readonly deliveries: Pick<DeliveriesTable, "replaceOutputResults">;
}

/**
 * Moves the enrollment of a delivery that ended (succeeded or failed for good) past its webhook
 * action: the webhook lane does it as soon as it knows, with no hop through the workflow-steps
 * lane. The values a successful response gave for the action's outputs are written into the
 * record first, so the next action sees them. Safe to repeat: a finished action is not finished
 * again, outputs written again add no version, and an enrollment that ended is left alone.
 */
export async function finishWebhookAction(
  deps: WebhookFinishDeps,
  delivery: Pick<
    Delivery,
    "enrollmentId" | "actionIndex" | "deliveryId" | "status" | "outputResults"
  >,
): Promise<ProgressReport> {
  if (delivery.status !== "succeeded" && delivery.status !== "failed") {
    return { kind: "skipped", reason: `delivery is ${delivery.status}` };
  }
  const enrollment = await deps.enrollments.get(delivery.enrollmentId);
  if (!enrollment) return { kind: "skipped", reason: "enrollment not found" };
  if (hasEnded(enrollment)) {
    return { kind: "skipped", reason: `enrollment ${enrollment.status} already` };
  }
  const index = delivery.actionIndex;
  if (enrollment.currentIndex !== index) {
    return { kind: "skipped", reason: `enrollment is at action ${enrollment.currentIndex}` };
  }
  const progress = enrollment.actions[index];
  if (progress?.type !== "webhook") {
    return { kind: "skipped", reason: `action ${index} is no webhook` };
  }
  if (delivery.deliveryId !== deliveryIdFor(enrollment.enrollmentId, progress.actionId)) {
    return { kind: "skipped", reason: "delivery belongs to another action" };
  }
  if (delivery.status === "succeeded" && delivery.outputResults) {
    const refused = await writeOutputs(deps, enrollment, outputChanges(delivery.outputResults));
    if (refused !== undefined) {
      await deps.deliveries.replaceOutputResults(
        delivery.deliveryId,
        notWritten(delivery.outputResults, refused),
      );
    }
  }
  return finishAction(deps, enrollment, index, {
    status: delivery.status,
    deliveryId: delivery.deliveryId,
  });
}

/**
 * Writes the values a webhook's response gave into the record (source `WORKFLOW`, the workflow as
 * source id), and says why not when the record takes none: one at its size bound, or that cannot
 * store a value, takes none, and one deleted meanwhile is not brought back by a webhook's answer.
 * The workflow goes on either way.
 */
async function writeOutputs(
  deps: WebhookFinishDeps,
  enrollment: Enrollment,
  changes: ReadonlyMap<string, string>,
): Promise<string | undefined> {
  if (changes.size === 0) return undefined;
  const key = { objectType: enrollment.objectType, objectId: enrollment.objectId };
  let deleted = false;
  try {
    await deps.records.update(key, (current) => {
      deleted = !current;
      if (!current) return undefined;
      const { record, changed } = applyPropertyChanges(current, key, Object.fromEntries(changes), {
        sourceType: "WORKFLOW",
        sourceId: enrollment.workflowId,
        sourceLabel: null,
        timestamp: deps.now(),
      });
      return changed.length === 0 ? undefined : record;
    });
  } catch (error) {
    if (!(error instanceof PayloadTooLargeError || error instanceof ValidationError)) throw error;
    return `the record did not take it: ${error.message}`;
  }
  return deleted ? "the record was deleted" : undefined;
}
