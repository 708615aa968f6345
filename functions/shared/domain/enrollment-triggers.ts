/**
 * Enrollment triggers (docs/contract.md): the criteria under which a workflow enrolls records by
 * itself, and how a change to a record is judged against them. Pure: the stream consumer reads
 * the images, this module says which workflows the change newly satisfies.
 */
import { createHash } from "node:crypto";
import { type CrmRecord, currentValue } from "#domain/record";
import type { ObjectType } from "#domain/workflow";

/** Operators of a property filter. */
export const PROPERTY_OPERATORS = [
  "EQ",
  "NEQ",
  "CONTAINS",
  "GT",
  "GTE",
  "LT",
  "LTE",
  "IN",
  "NOT_IN",
  "HAS_PROPERTY",
  "NOT_HAS_PROPERTY",
] as const;

export type PropertyOperator = (typeof PROPERTY_OPERATORS)[number];

/** Operators that compare with one `value`. */
export const SINGLE_VALUE_OPERATORS: readonly PropertyOperator[] = [
  "EQ",
  "NEQ",
  "CONTAINS",
  "GT",
  "GTE",
  "LT",
  "LTE",
];
/** Operators that compare with a list of `values`. */
export const LIST_OPERATORS: readonly PropertyOperator[] = ["IN", "NOT_IN"];
/** Operators that compare numbers. */
export const NUMERIC_OPERATORS: readonly PropertyOperator[] = ["GT", "GTE", "LT", "LTE"];

/** A value a filter compares with. */
export type FilterValue = string | number | boolean;

/** A condition on one property's current value. */
export interface PropertyFilter {
  type: "property";
  property: string;
  operator: PropertyOperator;
  value?: FilterValue | undefined;
  values?: FilterValue[] | undefined;
}

/** Met by a submission of the form, at the change that records it. */
export interface FormSubmissionFilter {
  type: "formSubmission";
  formId: string;
}

/** Met while the contact is a member of the list. */
export interface ListMembershipFilter {
  type: "listMembership";
  listId: string;
}

export type TriggerFilter = PropertyFilter | FormSubmissionFilter | ListMembershipFilter;

/** Filters that must all hold. */
export interface FilterGroup {
  filters: TriggerFilter[];
}

/** A workflow's enrollment criteria: any group, every filter of it. */
export interface EnrollmentTriggers {
  filterGroups: FilterGroup[];
  /** Whether a record may be enrolled again by the triggers after its last enrollment ended. */
  reenroll: boolean;
}

/** What a record looks like at one moment, for judging filters. */
export interface TriggerState {
  /** Undefined before the record existed: nothing is met then. */
  readonly record: CrmRecord | undefined;
  /** Forms submitted in the change being judged (a submission is an event, not a state). */
  readonly submittedForms: ReadonlySet<string>;
}

/** Whether one filter holds for a record. */
export function filterMatches(filter: TriggerFilter, state: TriggerState): boolean {
  const { record } = state;
  if (record === undefined) return false;
  switch (filter.type) {
    case "formSubmission":
      return state.submittedForms.has(filter.formId);
    case "listMembership":
      return (record.listMemberships ?? []).some((member) => member.listId === filter.listId);
    case "property":
      return propertyMatches(filter, currentValue(record, filter.property) ?? "");
  }
}

/**
 * A property filter against a stored value (`""` when the property has none). Values are stored
 * as strings: EQ compares strings exactly, or numbers numerically when the filter's value is a
 * number; CONTAINS ignores case; GT to LTE hold only for numeric values. NEQ, NOT_IN and
 * NOT_HAS_PROPERTY are the exact negations of EQ, IN and HAS_PROPERTY.
 */
function propertyMatches(filter: PropertyFilter, stored: string): boolean {
  switch (filter.operator) {
    case "HAS_PROPERTY":
      return stored !== "";
    case "NOT_HAS_PROPERTY":
      return stored === "";
    case "EQ":
      return equals(stored, filter.value);
    case "NEQ":
      return !equals(stored, filter.value);
    case "IN":
      return (filter.values ?? []).some((value) => equals(stored, value));
    case "NOT_IN":
      return !(filter.values ?? []).some((value) => equals(stored, value));
    case "CONTAINS":
      return stored.toLowerCase().includes(String(filter.value ?? "").toLowerCase());
    case "GT":
    case "GTE":
    case "LT":
    case "LTE":
      return compareNumbers(filter.operator, stored, filter.value);
  }
}

function equals(stored: string, value: FilterValue | undefined): boolean {
  if (value === undefined) return false;
  if (typeof value === "number") {
    const number = numeric(stored);
    return number !== undefined && number === value;
  }
  return stored === String(value);
}

function compareNumbers(
  operator: "GT" | "GTE" | "LT" | "LTE",
  stored: string,
  value: FilterValue | undefined,
): boolean {
  const left = numeric(stored);
  const right = value === undefined ? undefined : numeric(String(value));
  if (left === undefined || right === undefined) return false;
  switch (operator) {
    case "GT":
      return left > right;
    case "GTE":
      return left >= right;
    case "LT":
      return left < right;
    case "LTE":
      return left <= right;
  }
}

/** A stored string as a number, when it is one (not empty, not blank, finite). */
export function numeric(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : undefined;
}

/** Whether every filter of the group holds. */
export function groupMatches(group: FilterGroup, state: TriggerState): boolean {
  return group.filters.every((filter) => filterMatches(filter, state));
}

/** Whether any group holds. */
export function triggersMatch(triggers: EnrollmentTriggers, state: TriggerState): boolean {
  return triggers.filterGroups.some((group) => groupMatches(group, state));
}

/** Form ids of the submissions `after` has and `before` had not. */
export function newSubmissions(
  before: CrmRecord | undefined,
  after: CrmRecord,
): ReadonlySet<string> {
  const known = new Set((before?.formSubmissions ?? []).map((entry) => entry.conversionId));
  return new Set(
    (after.formSubmissions ?? [])
      .filter((entry) => !known.has(entry.conversionId))
      .map((entry) => entry.formId),
  );
}

/**
 * Whether the change from `before` to `after` makes the record meet the criteria: they hold
 * after it and did not just before (a record that did not exist met nothing). A group with a
 * form-submission filter is met by the submission itself, so it counts even when the record
 * already met the criteria some other way.
 */
export function newlyMeets(
  triggers: EnrollmentTriggers,
  before: CrmRecord | undefined,
  after: CrmRecord,
): boolean {
  const now: TriggerState = { record: after, submittedForms: newSubmissions(before, after) };
  const matched = triggers.filterGroups.filter((group) => groupMatches(group, now));
  if (matched.length === 0) return false;
  if (matched.some((group) => group.filters.some((filter) => filter.type === "formSubmission"))) {
    return true;
  }
  return !triggersMatch(triggers, { record: before, submittedForms: new Set() });
}

/**
 * The id of the enrollment a trigger starts, derived rather than random so that starting it is
 * idempotent: the same change seen twice (a stream record delivered again) gives the same id,
 * and an id that exists already starts nothing. Without `reenroll` the id is one per workflow
 * and record, so the triggers enroll a record at most once; with it, one per change (the
 * record's revision), so a record that meets the criteria again is enrolled again.
 */
export function triggeredEnrollmentId(input: {
  readonly workflowId: string;
  readonly objectType: ObjectType;
  readonly objectId: string;
  readonly reenroll: boolean;
  /** The record's revision after the change. */
  readonly revision: number;
}): string {
  const occasion = input.reenroll ? `revision ${input.revision}` : "once";
  const hex = createHash("sha256")
    .update(`${input.workflowId}\n${input.objectType}\n${input.objectId}\n${occasion}`)
    .digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
