import type { EnrollmentTriggers } from "#domain/enrollment-triggers";

/**
 * The workflow model (docs/contract.md): a workflow runs its actions in order over one record of
 * its object type. The request schemas in `request-schemas.ts` validate input into these types.
 */

/** The CRM object types a workflow can run over. */
export const OBJECT_TYPES = ["contacts", "companies", "deals", "tickets"] as const;

export type ObjectType = (typeof OBJECT_TYPES)[number];

/** The value of one property of a record. */
export type PropertyValue = string | number | boolean | null;

/** A webhook request signed with the client secret of the app `appId` (docs/contract.md). */
export interface SignatureAuthentication {
  type: "signature";
  appId: string;
}

/** A webhook request that carries an API key in a header or a query parameter. */
export interface ApiKeyAuthentication {
  type: "apiKey";
  name: string;
  location: "header" | "query";
  value: string;
}

/**
 * A webhook request signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) with `secret`, `whsec_` followed by the base64 of the key.
 */
export interface StandardWebhooksAuthentication {
  type: "standardWebhooks";
  secret: string;
}

export type Authentication =
  | SignatureAuthentication
  | ApiKeyAuthentication
  | StandardWebhooksAuthentication;

/** A secret that was replaced: requests are signed with it too, beside the new one, until then. */
export interface PreviousSecret {
  readonly secret: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/**
 * How long a replaced secret keeps signing beside the new one: a day for the receiver to switch
 * without dropping a request.
 */
export const PREVIOUS_SECRET_LIFETIME_MS = 24 * 3600 * 1000;

/**
 * Standard Webhooks authentication as the server keeps it: after its secret is replaced, the one
 * before keeps signing for a day. Only the server sets `previousSecret`, and no response shows it.
 */
export type StoredStandardWebhooksAuthentication = StandardWebhooksAuthentication & {
  previousSecret?: PreviousSecret;
};

/** The previous secret's value while it still signs at `now` (epoch ms). */
export function unexpiredPreviousSecret(
  previous: PreviousSecret | undefined,
  now: number,
): string | undefined {
  return previous !== undefined && now < previous.expiresAt ? previous.secret : undefined;
}

/** The replaced Standard Webhooks secret an action's authentication holds, if any. */
export function previousStandardWebhooksSecret(
  authentication: Authentication | undefined,
): PreviousSecret | undefined {
  if (authentication?.type !== "standardWebhooks") return undefined;
  return (authentication as StoredStandardWebhooksAuthentication).previousSecret;
}

/** One field of a custom body: a property of the record, or a fixed value. */
export type CustomField = { key: string; property: string } | { key: string; value: PropertyValue };

/** What a webhook sends: the whole record, or the chosen fields. */
export type BodySpec = { type: "all" } | { type: "custom"; fields: CustomField[] };

/**
 * A value to take from a webhook's JSON response into the record: `path` in dot notation (array
 * indices as numbers), `property` the record's property that receives it.
 */
export interface WebhookOutput {
  path: string;
  property: string;
}

/** "Trigger a webhook": sends the record to `url`. */
export interface WebhookAction {
  type: "webhook";
  url: string;
  method: "POST" | "GET";
  authentication?: Authentication | undefined;
  body: BodySpec;
  outputs?: WebhookOutput[] | undefined;
}

/** Sets a property of the record. */
export interface SetPropertyAction {
  type: "setProperty";
  property: string;
  value: string;
}

/** Waits before the next action. */
export interface DelayAction {
  type: "delay";
  seconds: number;
}

export type WorkflowAction = WebhookAction | SetPropertyAction | DelayAction;

/** A workflow as a client defines it. */
export interface WorkflowDefinition {
  name: string;
  objectType: ObjectType;
  actions: WorkflowAction[];
  enrollmentTriggers?: EnrollmentTriggers | undefined;
}

/** A workflow as stored and returned: the definition plus server-assigned ids and times. */
export interface Workflow {
  id: string;
  name: string;
  objectType: ObjectType;
  actions: Array<WorkflowAction & { id: string }>;
  enrollmentTriggers?: EnrollmentTriggers | undefined;
  createdAt: string;
  updatedAt: string;
}

/**
 * Most bytes a stored workflow may take as JSON. A DynamoDB item stops at 400 KB, and every
 * enrollment carries a copy of its workflow's actions next to its own progress; JSON is never
 * smaller than DynamoDB's count of the same item, so both fit with room to spare.
 */
export const MAX_WORKFLOW_BYTES = 300_000;

/** How many bytes the workflow takes as JSON, when that is more than may be stored. */
export function oversizeWorkflowBytes(workflow: Workflow): number | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(workflow));
  return bytes > MAX_WORKFLOW_BYTES ? bytes : undefined;
}

/** Gives every action of a definition a fresh id, in order. */
export function assignActionIds(
  definition: WorkflowDefinition,
  newId: () => string,
): Array<WorkflowAction & { id: string }> {
  return definition.actions.map((action) => ({ id: newId(), ...action }));
}

/** What responses show in place of a secret. */
export const REDACTED_SECRET = "***";

/** The workflow as API responses show it: API-key values and signing secrets replaced by `***`. */
export function redactWorkflow(workflow: Workflow): Workflow {
  return {
    ...workflow,
    actions: workflow.actions.map((action) => {
      if (action.type !== "webhook") return action;
      const auth = action.authentication;
      if (auth?.type === "apiKey") {
        return { ...action, authentication: { ...auth, value: REDACTED_SECRET } };
      }
      if (auth?.type === "standardWebhooks") {
        return { ...action, authentication: { type: auth.type, secret: REDACTED_SECRET } };
      }
      return action;
    }),
  };
}
