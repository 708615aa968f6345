import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import type { RecordsTable } from "#adapters/records-table";
import type { WorkflowsTable } from "#adapters/workflows-table";
import { startWebhook } from "#app/workflow-steps";
import { deliveryIdFor, deliveryView } from "#domain/delivery";
import {
  type Enrollment,
  enrollmentView,
  newEnrollment,
  withActionStarted,
} from "#domain/enrollment";
import { NotFoundError } from "#domain/errors";
import type { CrmRecord } from "#domain/record";
import type { RequestBody } from "#domain/request-schemas";

export interface EnrollDeps {
  readonly workflows: WorkflowsTable;
  readonly records: RecordsTable;
  readonly enrollments: EnrollmentsTable;
  readonly deliveries: DeliveriesTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly webhookLane: WebhookLaneQueue;
  readonly now: () => number;
  readonly newId: () => string;
  readonly portalId: number;
}

/** How an enrollment came about, when not by `POST /workflows/{id}/enrollments`. */
export interface EnrollOptions {
  /**
   * The enrollment's id, when the caller derives it: an enrollment that was started already
   * under this id is a ConflictError, so a repeated request starts nothing.
   */
  readonly enrollmentId?: string;
}

/** Enrolls a record into a workflow and starts its first action. */
export async function enroll(
  deps: EnrollDeps,
  workflowId: string,
  input: RequestBody<"enroll">,
  options: EnrollOptions = {},
) {
  const workflow = await deps.workflows.get(workflowId);
  if (!workflow) throw new NotFoundError(`workflow ${workflowId} not found`);
  const record = await deps.records.get({
    objectType: workflow.objectType,
    objectId: input.objectId,
  });
  if (!record) throw new NotFoundError(`${workflow.objectType}/${input.objectId} not found`);
  const enrollment = startedAtFirstWebhook(
    newEnrollment({
      enrollmentId: options.enrollmentId ?? deps.newId(),
      workflowId,
      objectType: workflow.objectType,
      objectId: input.objectId,
      definition: workflow.actions,
      now: deps.now(),
    }),
  );
  await deps.enrollments.create(enrollment);
  try {
    await startFirstAction(deps, enrollment, record);
  } catch (error) {
    // Without its first message the enrollment would never move and would hold the record's
    // place in the workflow, so take it back before failing, with the delivery it may have
    // created, which nothing would end. An attempt of it recorded means the message went out
    // after all: the enrollment is under way.
    const deliveryId = enrollment.actions[0]?.deliveryId;
    const underWay =
      deliveryId !== undefined && !(await deps.deliveries.discardUnattempted(deliveryId));
    if (!underWay) {
      await deps.enrollments.discard(enrollment);
      throw error;
    }
  }
  return { enrollmentId: enrollment.enrollmentId, status: enrollment.status };
}

/**
 * A new enrollment whose first action is a webhook is stored with that action running already,
 * its delivery named by the id the delivery will have: the API starts it at once (below), and
 * marking it started in a write of its own would cost an update per enrollment. Until the
 * delivery exists, a step or the sweeper that finds the action running creates it.
 */
function startedAtFirstWebhook(enrollment: Enrollment): Enrollment {
  const first = enrollment.definition[0];
  if (first?.type !== "webhook") return enrollment;
  return withActionStarted(enrollment, 0, {
    now: enrollment.createdAt,
    deliveryId: deliveryIdFor(enrollment.enrollmentId, first.id),
  });
}

/**
 * Starts a new enrollment. A first action that is a webhook is started here and now: its
 * delivery is built from the record just read and handed to the webhook lane, which saves a hop
 * through the workflow-steps lane (a message, an invocation and two reads). Should that fail
 * half-way, the workflow-steps lane is asked to finish the start instead: it creates the delivery
 * if it is missing and hands its first attempt to the lane again while none was made.
 */
async function startFirstAction(
  deps: EnrollDeps,
  enrollment: Enrollment,
  record: CrmRecord,
): Promise<void> {
  const first = enrollment.definition[0];
  if (first?.type === "webhook") {
    try {
      await startWebhook(deps, enrollment, 0, first, { record });
      return;
    } catch {
      // Falls through to the engine, which retries the start until it succeeds.
    }
  }
  await deps.workflowSteps.send({
    type: "advance",
    enrollmentId: enrollment.enrollmentId,
    actionIndex: 0,
  });
}

export interface EnrollmentViewDeps {
  readonly enrollments: EnrollmentsTable;
  readonly deliveries: DeliveriesTable;
}

/** An enrollment with each action's outcome and every delivery's attempts. */
export async function readEnrollment(deps: EnrollmentViewDeps, enrollmentId: string) {
  const enrollment = await deps.enrollments.get(enrollmentId);
  if (!enrollment) throw new NotFoundError(`enrollment ${enrollmentId} not found`);
  const started = enrollment.actions.filter(
    (action) => action.type === "webhook" && action.status !== "pending",
  );
  const deliveries = await Promise.all(
    started.map((action) =>
      deps.deliveries.getWithAttempts(
        action.deliveryId ?? deliveryIdFor(enrollmentId, action.actionId),
      ),
    ),
  );
  const view = enrollmentView(enrollment);
  const outputsOf = new Map(
    deliveries.flatMap((found) =>
      found?.delivery.outputResults
        ? [[found.delivery.actionId, found.delivery.outputResults]]
        : [],
    ),
  );
  return {
    ...view,
    // A webhook action's outcome shows what its outputs wrote, or why they did not.
    actions: view.actions.map((action) =>
      outputsOf.has(action.actionId)
        ? { ...action, outputs: outputsOf.get(action.actionId) }
        : action,
    ),
    deliveries: deliveries.flatMap((found) =>
      found ? [deliveryView(found.delivery, found.attempts)] : [],
    ),
  };
}
