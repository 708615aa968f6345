/** CRM records: current property values with a bounded history per property. */
import { ValidationError } from "#domain/errors";
import type { ObjectType, PropertyValue } from "#domain/workflow";

export interface PropertyVersion {
  readonly value: string;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  /**
   * Where the value came from: `API` for the HTTP API, `AUTOMATION_PLATFORM` for a workflow step,
   * `FORM` for a form submission.
   */
  readonly sourceType: string;
  readonly sourceId: string | null;
  readonly sourceLabel: string | null;
}

/** A form a contact submitted (`forms-and-lists.ts` keeps these). */
export interface FormSubmission {
  readonly formId: string;
  readonly conversionId: string;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  readonly pageUrl: string | null;
}

/** A list a contact belongs to. */
export interface ListMembership {
  readonly listId: string;
  /** When the contact joined, epoch milliseconds. */
  readonly timestamp: number;
}

export interface CrmRecord {
  readonly objectType: ObjectType;
  readonly objectId: string;
  /** Versions of each property, newest first; the first is the current value. */
  readonly properties: Readonly<Record<string, readonly PropertyVersion[]>>;
  /** Contacts only: form submissions, newest first, bounded. */
  readonly formSubmissions?: readonly FormSubmission[];
  /** Contacts only: the lists the contact belongs to, oldest first, bounded. */
  readonly listMemberships?: readonly ListMembership[];
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds. */
  readonly updatedAt: number;
}

export interface PropertyChangeSource {
  readonly sourceType: string;
  readonly sourceId: string | null;
  readonly sourceLabel: string | null;
  /** Epoch milliseconds. */
  readonly timestamp: number;
}

/**
 * Versions kept per property. Twenty covers the recent history receivers of a contact profile
 * read, and bounds how far a record grows when a workflow rewrites the same property again and
 * again. The bound is per property, so the store still has to guard its item size.
 */
export const MAX_VERSIONS_PER_PROPERTY = 20;

/**
 * The one property name a record cannot hold: stores and parsers write keys onto plain objects,
 * where `__proto__` sets the prototype instead of adding a key, so the property would vanish.
 */
export const RESERVED_PROPERTY_NAME = "__proto__";

/**
 * A property value as stored: strings as given, numbers and booleans as JSON writes them, and
 * `null` as the empty string, which is how HubSpot records a cleared property.
 */
function storedValue(value: PropertyValue): string {
  return value === null ? "" : String(value);
}

/** The current value of a property, or `undefined` when the record never had one. */
export function currentValue(record: CrmRecord, property: string): string | undefined {
  return Object.hasOwn(record.properties, property)
    ? record.properties[property]?.[0]?.value
    : undefined;
}

/** Applies changes; only values that differ from the current one add a version. */
export function applyPropertyChanges(
  record: CrmRecord | undefined,
  target: { readonly objectType: ObjectType; readonly objectId: string },
  changes: Readonly<Record<string, PropertyValue>>,
  source: PropertyChangeSource,
): { record: CrmRecord; changed: string[] } {
  const base: CrmRecord = record ?? {
    objectType: target.objectType,
    objectId: target.objectId,
    properties: {},
    createdAt: source.timestamp,
    updatedAt: source.timestamp,
  };
  // A Map, not object assignment, so that no property name can reach an object's prototype.
  const properties = new Map(Object.entries(base.properties));
  const changed: string[] = [];
  for (const [name, given] of Object.entries(changes)) {
    if (name === RESERVED_PROPERTY_NAME) throw new ValidationError(name, "is a reserved name");
    const value = storedValue(given);
    // An absent property already reads as empty, so clearing it records nothing.
    if (value === (currentValue(base, name) ?? "")) {
      continue;
    }
    const version: PropertyVersion = {
      value,
      timestamp: source.timestamp,
      sourceType: source.sourceType,
      sourceId: source.sourceId,
      sourceLabel: source.sourceLabel,
    };
    const history = properties.get(name) ?? [];
    properties.set(name, [version, ...history].slice(0, MAX_VERSIONS_PER_PROPERTY));
    changed.push(name);
  }
  if (changed.length === 0) {
    return { record: base, changed };
  }
  return {
    record: {
      ...base,
      properties: Object.fromEntries(properties),
      updatedAt: Math.max(base.updatedAt, source.timestamp),
    },
    changed,
  };
}
