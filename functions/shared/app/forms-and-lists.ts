import type { ListsTable } from "#adapters/lists-table";
import type { RecordsTable } from "#adapters/records-table";
import { NotFoundError } from "#domain/errors";
import { joinList, leaveList, withFormSubmission } from "#domain/forms-and-lists";
import { applyPropertyChanges } from "#domain/record";
import type { RequestBody } from "#domain/request-schemas";

export interface FormsAndListsDeps {
  readonly records: RecordsTable;
  readonly lists: ListsTable;
  readonly now: () => number;
  readonly newId: () => string;
}

/**
 * Records a form submission: the contact takes the submitted values (source `FORM`, the form as
 * source id), and is created when it does not exist; the submission joins its form submissions.
 */
export async function submitForm(
  deps: FormsAndListsDeps,
  formId: string,
  input: RequestBody<"formSubmission">,
) {
  const key = { objectType: "contacts" as const, objectId: input.objectId };
  const submission = {
    formId,
    conversionId: deps.newId(),
    timestamp: deps.now(),
    pageUrl: input.pageUrl ?? null,
  };
  await deps.records.update(key, (current) => {
    const { record } = applyPropertyChanges(current, key, input.values, {
      sourceType: "FORM",
      sourceId: formId,
      sourceLabel: null,
      timestamp: submission.timestamp,
    });
    return withFormSubmission(record, submission);
  });
  return { conversionId: submission.conversionId };
}

/** Creates an empty list. */
export async function createList(deps: FormsAndListsDeps, input: RequestBody<"createList">) {
  const list = await deps.lists.create(input.name, deps.now());
  return { listId: list.listId, name: list.name };
}

export async function readList(deps: Pick<FormsAndListsDeps, "lists">, listId: string) {
  const list = await deps.lists.get(listId);
  if (!list) throw new NotFoundError(`list ${listId} not found`);
  return { listId: list.listId, name: list.name, size: list.size };
}

/** Adds a contact to a list; adding a member again changes nothing. */
export async function addListMember(deps: FormsAndListsDeps, listId: string, objectId: string) {
  await readList(deps, listId);
  const key = { objectType: "contacts" as const, objectId };
  await deps.records.update(
    key,
    (current) => {
      if (!current) throw new NotFoundError(`contacts/${objectId} not found`);
      return joinList(current, listId, deps.now());
    },
    deps.lists.withSizeChange(listId, 1),
  );
  return readList(deps, listId);
}

/** Removes a contact from a list; removing a contact that is not a member changes nothing. */
export async function removeListMember(deps: FormsAndListsDeps, listId: string, objectId: string) {
  await readList(deps, listId);
  const key = { objectType: "contacts" as const, objectId };
  await deps.records.update(
    key,
    (current) => (current ? leaveList(current, listId, deps.now()) : undefined),
    deps.lists.withSizeChange(listId, -1),
  );
}
