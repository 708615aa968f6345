/**
 * Form submissions and list memberships of contacts (docs/contract.md): what they add to a
 * contact, and the bounds that keep a contact's item small.
 */
import { ConflictError } from "#domain/errors";
import type { CrmRecord, FormSubmission, ListMembership } from "#domain/record";

/**
 * Submissions kept per contact, newest first. Like property history, receivers read the recent
 * ones; older ones are dropped so a contact that submits forms daily does not outgrow its item.
 */
export const MAX_FORM_SUBMISSIONS = 20;

/**
 * Lists a contact may belong to. Memberships are state, not history, so none can be dropped:
 * joining one more list is refused instead.
 */
export const MAX_LIST_MEMBERSHIPS = 100;

/** A list of contacts. */
export interface ContactList {
  readonly listId: string;
  readonly name: string;
  /** Members now. */
  readonly size: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

/** The contact with the submission first, the oldest dropped past the bound. */
export function withFormSubmission(record: CrmRecord, submission: FormSubmission): CrmRecord {
  return {
    ...record,
    formSubmissions: [submission, ...(record.formSubmissions ?? [])].slice(0, MAX_FORM_SUBMISSIONS),
    updatedAt: Math.max(record.updatedAt, submission.timestamp),
  };
}

/** Whether the contact belongs to the list. */
export function isMember(record: CrmRecord, listId: string): boolean {
  return (record.listMemberships ?? []).some((membership) => membership.listId === listId);
}

/** The contact as a member of the list; undefined when it already is one. */
export function joinList(record: CrmRecord, listId: string, now: number): CrmRecord | undefined {
  if (isMember(record, listId)) return undefined;
  const memberships = record.listMemberships ?? [];
  if (memberships.length >= MAX_LIST_MEMBERSHIPS) {
    throw new ConflictError(
      `${record.objectType}/${record.objectId} is in ${memberships.length} lists, the most a contact can be in`,
    );
  }
  const membership: ListMembership = { listId, timestamp: now };
  return {
    ...record,
    listMemberships: [...memberships, membership],
    updatedAt: Math.max(record.updatedAt, now),
  };
}

/** The contact without the list; undefined when it was not a member. */
export function leaveList(record: CrmRecord, listId: string, now: number): CrmRecord | undefined {
  if (!isMember(record, listId)) return undefined;
  return {
    ...record,
    listMemberships: (record.listMemberships ?? []).filter(
      (membership) => membership.listId !== listId,
    ),
    updatedAt: Math.max(record.updatedAt, now),
  };
}
