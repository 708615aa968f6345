import type { ObjectType, WorkflowAction } from "#domain/workflow";

/**
 * `failed`: an action could never run; the enrollment ended there. `cancelled`: an operator
 * stopped it (`DELETE /enrollments/{id}`) while it was active or waiting.
 */
export type EnrollmentStatus = "active" | "waiting" | "completed" | "failed" | "cancelled";
export type ActionStatus = "pending" | "running" | "succeeded" | "failed";

/** Progress of one action of an enrollment. */
export interface ActionProgress {
  readonly actionId: string;
  readonly type: WorkflowAction["type"];
  readonly status: ActionStatus;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly deliveryId?: string;
}

/**
 * A record's run through a workflow. The workflow's actions are copied in at enrollment, so an
 * enrollment finishes the workflow it started even when the workflow is later replaced or deleted.
 */
export interface Enrollment {
  readonly enrollmentId: string;
  readonly workflowId: string;
  readonly objectType: ObjectType;
  readonly objectId: string;
  readonly status: EnrollmentStatus;
  /** Index of the action being run; equals `actions.length` once completed. */
  readonly currentIndex: number;
  readonly actions: readonly ActionProgress[];
  readonly definition: ReadonlyArray<WorkflowAction & { id: string }>;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Why the enrollment failed, once it has. */
  readonly failureReason?: string;
}

/** A new enrollment at its first action. */
export function newEnrollment(input: {
  enrollmentId: string;
  workflowId: string;
  objectType: ObjectType;
  objectId: string;
  definition: ReadonlyArray<WorkflowAction & { id: string }>;
  now: number;
}): Enrollment {
  return {
    enrollmentId: input.enrollmentId,
    workflowId: input.workflowId,
    objectType: input.objectType,
    objectId: input.objectId,
    status: input.definition.length === 0 ? "completed" : "active",
    currentIndex: 0,
    actions: input.definition.map((action) => ({
      actionId: action.id,
      type: action.type,
      status: "pending",
    })),
    definition: input.definition,
    createdAt: input.now,
    updatedAt: input.now,
  };
}

/**
 * The enrollment with the action at `index` started at `now`, as `EnrollmentsTable.startAction`
 * stores it: the action running (a webhook's with its delivery's id) and the enrollment waiting.
 */
export function withActionStarted(
  enrollment: Enrollment,
  index: number,
  change: { now: number; deliveryId?: string },
): Enrollment {
  return {
    ...enrollment,
    status: "waiting",
    actions: enrollment.actions.map((action, at) =>
      at === index
        ? {
            ...action,
            status: "running",
            startedAt: change.now,
            ...(change.deliveryId ? { deliveryId: change.deliveryId } : {}),
          }
        : action,
    ),
    updatedAt: change.now,
  };
}

/** The status an enrollment has once the action at `index` has finished. */
export function statusAfter(enrollment: Enrollment, index: number): EnrollmentStatus {
  return index + 1 >= enrollment.actions.length ? "completed" : "active";
}

/** What `GET /enrollments/{id}` shows of an enrollment, deliveries aside. */
export function enrollmentView(enrollment: Enrollment) {
  const current = enrollment.actions[enrollment.currentIndex];
  return {
    enrollmentId: enrollment.enrollmentId,
    workflowId: enrollment.workflowId,
    objectType: enrollment.objectType,
    objectId: enrollment.objectId,
    status: enrollment.status,
    currentActionId: hasEnded(enrollment) ? null : (current?.actionId ?? null),
    actions: enrollment.actions.map((action) => ({
      actionId: action.actionId,
      type: action.type,
      status: action.status,
      startedAt: isoOrNull(action.startedAt),
      finishedAt: isoOrNull(action.finishedAt),
    })),
    createdAt: new Date(enrollment.createdAt).toISOString(),
    failureReason: enrollment.failureReason ?? null,
  };
}

/**
 * Whether the enrollment has ended: completed, failed at an action that could not run, or
 * cancelled. Nothing moves an ended enrollment again.
 */
export function hasEnded(enrollment: Pick<Enrollment, "status">): boolean {
  return (
    enrollment.status === "completed" ||
    enrollment.status === "failed" ||
    enrollment.status === "cancelled"
  );
}

/** An epoch-ms time as an ISO-8601 UTC string, or null. */
export function isoOrNull(time: number | undefined | null): string | null {
  return time === undefined || time === null ? null : new Date(time).toISOString();
}
