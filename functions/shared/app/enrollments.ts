import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { WorkflowStepsQueue } from "#adapters/lane-queues";
import type { RecordsTable } from "#adapters/records-table";
import type { WorkflowsTable } from "#adapters/workflows-table";
import { deliveryIdFor, deliveryView } from "#domain/delivery";
import { enrollmentView, newEnrollment } from "#domain/enrollment";
import { NotFoundError } from "#domain/errors";
import type { RequestBody } from "#domain/request-schemas";

export interface EnrollDeps {
  readonly workflows: WorkflowsTable;
  readonly records: RecordsTable;
  readonly enrollments: EnrollmentsTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly now: () => number;
  readonly newId: () => string;
}

/** Enrolls a record into a workflow and starts its first action. */
export async function enroll(deps: EnrollDeps, workflowId: string, input: RequestBody<"enroll">) {
  const workflow = await deps.workflows.get(workflowId);
  if (!workflow) throw new NotFoundError(`workflow ${workflowId} not found`);
  const record = await deps.records.get({
    objectType: workflow.objectType,
    objectId: input.objectId,
  });
  if (!record) throw new NotFoundError(`${workflow.objectType}/${input.objectId} not found`);
  const enrollment = newEnrollment({
    enrollmentId: deps.newId(),
    workflowId,
    objectType: workflow.objectType,
    objectId: input.objectId,
    definition: workflow.actions,
    now: deps.now(),
  });
  await deps.enrollments.create(enrollment);
  try {
    await deps.workflowSteps.send({
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });
  } catch (error) {
    // Without its first message the enrollment would never move and would hold the record's
    // place in the workflow, so take it back before failing.
    await deps.enrollments.discard(enrollment);
    throw error;
  }
  return { enrollmentId: enrollment.enrollmentId, status: enrollment.status };
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
  return {
    ...enrollmentView(enrollment),
    deliveries: deliveries.flatMap((found) =>
      found ? [deliveryView(found.delivery, found.attempts)] : [],
    ),
  };
}
