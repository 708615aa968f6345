/**
 * The JSON a webhook sends for a record (docs/contract.md, section 4), which
 * `GET /objects/{type}/{id}` returns too: HubSpot's legacy contact profile for contacts, its CRM
 * object shape for the other types.
 */
import { PayloadTooLargeError } from "#domain/errors";
import { type CrmRecord, currentValue, type PropertyVersion } from "#domain/record";
import type { BodySpec, ObjectType } from "#domain/workflow";

/**
 * The largest body a webhook sends, in UTF-8 bytes. A whole record stays far below it; a custom
 * body that names one long property many times could otherwise reach tens of megabytes, sent again
 * at every attempt and echoed by the test action past what a Lambda response may hold.
 */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;

export interface PayloadOptions {
  /** The account id receivers see as `portal-id` / `portalId`. */
  readonly portalId: number;
}

export interface ContactPropertyVersionPayload {
  readonly value: string;
  readonly "source-type": string;
  readonly "source-id": string | null;
  readonly "source-label": string | null;
  readonly timestamp: number;
  readonly selected: boolean;
}

export interface ContactIdentityPayload {
  readonly type: "EMAIL";
  readonly value: string;
  readonly timestamp: number;
  readonly "is-primary": boolean;
}

/** One form submission, newest first, as HubSpot's contact profile lists them. */
export interface ContactFormSubmissionPayload {
  readonly "form-id": string;
  readonly "conversion-id": string;
  readonly timestamp: number;
  readonly "page-url": string | null;
}

/** One list the contact belongs to, as HubSpot's contact profile lists them. */
export interface ContactListMembershipPayload {
  readonly "static-list-id": number | string;
  readonly "internal-list-id": number | string;
  readonly timestamp: number;
  readonly vid: number | string;
  readonly "is-member": true;
}

export interface ContactProfilePayload {
  readonly vid: number | string;
  readonly "canonical-vid": number | string;
  readonly "portal-id": number;
  readonly "is-contact": true;
  readonly properties: Readonly<
    Record<string, { readonly value: string; readonly versions: ContactPropertyVersionPayload[] }>
  >;
  readonly "form-submissions": readonly ContactFormSubmissionPayload[];
  readonly "list-memberships": readonly ContactListMembershipPayload[];
  readonly "identity-profiles": ReadonlyArray<{
    readonly vid: number | string;
    readonly identities: ContactIdentityPayload[];
  }>;
  readonly "merge-audits": readonly never[];
}

export interface CrmObjectPayload {
  readonly objectId: number | string;
  readonly objectType: "COMPANY" | "DEAL" | "TICKET";
  readonly portalId: number;
  readonly isDeleted: false;
  readonly properties: Readonly<
    Record<
      string,
      {
        readonly value: string;
        readonly timestamp: number;
        readonly source: string;
        readonly sourceId: string | null;
      }
    >
  >;
}

export type RecordPayload = ContactProfilePayload | CrmObjectPayload;

const OBJECT_TYPE_NAMES: Record<Exclude<ObjectType, "contacts">, CrmObjectPayload["objectType"]> = {
  companies: "COMPANY",
  deals: "DEAL",
  tickets: "TICKET",
};

/** The record in the JSON shape a webhook sends for its object type. */
export function recordPayload(record: CrmRecord, options: PayloadOptions): RecordPayload {
  return record.objectType === "contacts"
    ? contactProfile(record, options)
    : crmObject(record, record.objectType, options);
}

/**
 * The exact bytes a webhook action sends for a record: `undefined` for GET, the whole record for
 * `{type: "all"}`, and for a custom body a flat object of the fields in the order given, where a
 * property the record lacks is `null`. PayloadTooLargeError past `MAX_WEBHOOK_BODY_BYTES`.
 */
export function webhookBody(
  body: BodySpec,
  method: "GET" | "POST",
  record: CrmRecord,
  options: PayloadOptions,
): string | undefined {
  if (method === "GET") {
    return undefined;
  }
  const text =
    body.type === "all"
      ? JSON.stringify(recordPayload(record, options))
      : fields(body.fields, record);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_WEBHOOK_BODY_BYTES) {
    throw new PayloadTooLargeError(
      `webhook body would be ${bytes} bytes; at most ${MAX_WEBHOOK_BODY_BYTES} are sent`,
    );
  }
  return text;
}

/** A custom body, written member by member: a JS object would move integer-like keys first. */
function fields(specs: Extract<BodySpec, { type: "custom" }>["fields"], record: CrmRecord): string {
  const members = specs.map((field) => {
    const value =
      "property" in field ? (currentValue(record, field.property) ?? null) : field.value;
    return `${JSON.stringify(field.key)}:${JSON.stringify(value)}`;
  });
  return `{${members.join(",")}}`;
}

function contactProfile(record: CrmRecord, options: PayloadOptions): ContactProfilePayload {
  const vid = numericWhenPossible(record.objectId);
  const properties = Object.fromEntries(
    sortedProperties(record).map(([name, versions]) => [
      name,
      {
        value: versions[0].value,
        versions: versions.map((version) => ({
          value: version.value,
          "source-type": version.sourceType,
          "source-id": version.sourceId,
          "source-label": version.sourceLabel,
          timestamp: version.timestamp,
          // HubSpot's profile API reports every version unselected; receivers built for it expect so.
          selected: false,
        })),
      },
    ]),
  );
  return {
    vid,
    "canonical-vid": vid,
    "portal-id": options.portalId,
    "is-contact": true,
    properties,
    "form-submissions": (record.formSubmissions ?? []).map((submission) => ({
      "form-id": submission.formId,
      "conversion-id": submission.conversionId,
      timestamp: submission.timestamp,
      "page-url": submission.pageUrl,
    })),
    "list-memberships": (record.listMemberships ?? []).map((membership) => {
      // List ids are numbers, as HubSpot's are; the one id serves as both of its list ids.
      const listId = numericWhenPossible(membership.listId);
      return {
        "static-list-id": listId,
        "internal-list-id": listId,
        timestamp: membership.timestamp,
        vid,
        "is-member": true as const,
      };
    }),
    "identity-profiles": [{ vid, identities: emailIdentities(record) }],
    "merge-audits": [],
  };
}

function emailIdentities(record: CrmRecord): ContactIdentityPayload[] {
  const email = Object.hasOwn(record.properties, "email")
    ? record.properties.email?.[0]
    : undefined;
  if (email === undefined || email.value === "") {
    return [];
  }
  return [{ type: "EMAIL", value: email.value, timestamp: email.timestamp, "is-primary": true }];
}

function crmObject(
  record: CrmRecord,
  objectType: Exclude<ObjectType, "contacts">,
  options: PayloadOptions,
): CrmObjectPayload {
  const properties = Object.fromEntries(
    sortedProperties(record).map(([name, [latest]]) => [
      name,
      {
        value: latest.value,
        timestamp: latest.timestamp,
        source: latest.sourceType,
        sourceId: latest.sourceId,
      },
    ]),
  );
  return {
    objectId: numericWhenPossible(record.objectId),
    objectType: OBJECT_TYPE_NAMES[objectType],
    portalId: options.portalId,
    isDeleted: false,
    properties,
  };
}

type NonEmptyHistory = readonly [PropertyVersion, ...PropertyVersion[]];

/** Properties that have a value, by name, so that the bytes do not depend on storage order. */
function sortedProperties(record: CrmRecord): Array<[string, NonEmptyHistory]> {
  return Object.entries(record.properties)
    .filter((entry): entry is [string, NonEmptyHistory] => entry[1].length > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** HubSpot ids are numbers; ours are strings, sent as numbers when that loses nothing. */
function numericWhenPossible(id: string): number | string {
  if (!/^(0|[1-9][0-9]*)$/.test(id)) {
    return id;
  }
  const numeric = Number(id);
  return Number.isSafeInteger(numeric) ? numeric : id;
}
