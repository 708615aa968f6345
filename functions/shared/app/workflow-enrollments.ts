import type { WorkflowEnrollments } from "#adapters/workflow-enrollments";
import type { WorkflowsTable } from "#adapters/workflows-table";
import { enrollmentView } from "#domain/enrollment";
import { NotFoundError } from "#domain/errors";
import type { EnrollmentListQuery } from "#domain/list-queries";

export interface WorkflowEnrollmentsDeps {
  readonly workflows: WorkflowsTable;
  readonly workflowEnrollments: WorkflowEnrollments;
}

/**
 * One page of a workflow's enrollments, newest first, each as `GET /enrollments/{id}` shows it
 * without its deliveries. A deleted workflow's enrollments stay listable; an id that never had a
 * workflow nor an enrollment is a 404.
 */
export async function listWorkflowEnrollments(
  deps: WorkflowEnrollmentsDeps,
  workflowId: string,
  query: EnrollmentListQuery,
) {
  const [workflow, page] = await Promise.all([
    deps.workflows.get(workflowId),
    deps.workflowEnrollments.page({
      workflowId,
      objectId: query.objectId,
      status: query.status,
      limit: query.limit,
      nextToken: query.nextToken,
    }),
  ]);
  if (!workflow && page.enrollments.length === 0 && page.nextToken === null) {
    throw new NotFoundError(`workflow ${workflowId} not found`);
  }
  return { enrollments: page.enrollments.map(enrollmentView), nextToken: page.nextToken };
}
