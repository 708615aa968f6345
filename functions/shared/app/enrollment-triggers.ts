import type { RecordChange } from "#adapters/record-changes";
import type { TriggeredWorkflow, WorkflowsTable } from "#adapters/workflows-table";
import { type EnrollDeps, enroll } from "#app/enrollments";
import { newlyMeets, triggeredEnrollmentId } from "#domain/enrollment-triggers";
import { ConflictError, NotFoundError } from "#domain/errors";
import type { ObjectType } from "#domain/workflow";

/** The workflows with triggers over an object type. */
export type TriggeredWorkflows = (objectType: ObjectType) => Promise<readonly TriggeredWorkflow[]>;

/**
 * Reads the trigger index once per object type for as long as it lives: the enrollment function
 * makes one per batch, so a batch of changes costs one index query per object type in it, and a
 * workflow saved meanwhile is seen from the next batch on.
 */
export function triggeredWorkflowsOnce(workflows: WorkflowsTable): TriggeredWorkflows {
  const read = new Map<ObjectType, Promise<readonly TriggeredWorkflow[]>>();
  return (objectType) => {
    let found = read.get(objectType);
    if (!found) {
      found = workflows.withTriggers(objectType);
      // A failed read is not kept: the next record of the batch asks again.
      found.catch(() => read.delete(objectType));
      read.set(objectType, found);
    }
    return found;
  };
}

/** What a change did for one workflow whose triggers it newly met. */
export type TriggerOutcome =
  | { readonly workflowId: string; readonly kind: "enrolled"; readonly enrollmentId: string }
  | { readonly workflowId: string; readonly kind: "skipped"; readonly reason: string };

/**
 * Starts the enrollments a change of a record calls for: in every workflow over its object type
 * whose triggers the change newly meets, and that was saved before the change was made (a
 * workflow does not enroll records for what happened before it). Each starts exactly as an
 * enrollment through the API, under an id derived from the change, so the same change seen
 * twice starts nothing more; a record already active in the workflow, or already enrolled once
 * by triggers that do not re-enroll, is skipped.
 */
export async function enrollOnChange(
  deps: EnrollDeps,
  triggeredWorkflows: TriggeredWorkflows,
  change: RecordChange,
): Promise<TriggerOutcome[]> {
  const { before, after, revision } = change;
  const candidates = (await triggeredWorkflows(after.objectType)).filter(
    (workflow) =>
      Date.parse(workflow.updatedAt) <= after.updatedAt &&
      newlyMeets(workflow.enrollmentTriggers, before, after),
  );
  const settled = await Promise.allSettled(
    candidates.map(async (workflow): Promise<TriggerOutcome> => {
      const enrollmentId = triggeredEnrollmentId({
        workflowId: workflow.id,
        objectType: after.objectType,
        objectId: after.objectId,
        reenroll: workflow.enrollmentTriggers.reenroll,
        revision,
      });
      try {
        await enroll(deps, workflow.id, { objectId: after.objectId }, { enrollmentId });
        return { workflowId: workflow.id, kind: "enrolled", enrollmentId };
      } catch (error) {
        if (error instanceof ConflictError || error instanceof NotFoundError) {
          return { workflowId: workflow.id, kind: "skipped", reason: error.message };
        }
        throw error;
      }
    }),
  );
  // Every workflow had its chance; a failure fails the change, which comes back, and the
  // enrollments it did start are not started again.
  const failure = settled.find((result) => result.status === "rejected");
  if (failure) throw failure.reason;
  return settled.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
}
