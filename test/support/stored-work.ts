import { randomUUID } from "node:crypto";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { RecordsTable } from "#adapters/records-table";
import { type Enrollment, newEnrollment } from "#domain/enrollment";
import { applyPropertyChanges } from "#domain/record";
import type { WorkflowAction } from "#domain/workflow";

/** Stores a contact with `properties`, as a `PUT` through the API would; returns its id. */
export async function storedContact(
  records: RecordsTable,
  properties: Record<string, string>,
  objectId: string = randomUUID(),
): Promise<string> {
  const key = { objectType: "contacts" as const, objectId };
  const source = { sourceType: "API", sourceId: null, sourceLabel: null, timestamp: Date.now() };
  await records.update(
    key,
    (current) => applyPropertyChanges(current, key, properties, source).record,
  );
  return objectId;
}

/** Stores an enrollment of the contact into a new workflow of `actions`, at its first action. */
export async function storedEnrollment(
  enrollments: EnrollmentsTable,
  objectId: string,
  actions: readonly WorkflowAction[],
): Promise<Enrollment> {
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId: randomUUID(),
    objectType: "contacts",
    objectId,
    definition: actions.map((action) => ({ ...action, id: randomUUID() })),
    now: Date.now(),
  });
  await enrollments.create(enrollment);
  return enrollment;
}
