/**
 * The workflow model (SPEC section 2): a workflow runs its actions in order over one record of
 * its object type. The request schemas in `request-schemas.ts` validate input into these types.
 */

/** The CRM object types a workflow can run over. */
export const OBJECT_TYPES = ["contacts", "companies", "deals", "tickets"] as const;

export type ObjectType = (typeof OBJECT_TYPES)[number];

/** The value of one property of a record. */
export type PropertyValue = string | number | boolean | null;

/** A webhook request signed with the client secret of the app `appId` (SPEC section 3). */
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

export type Authentication = SignatureAuthentication | ApiKeyAuthentication;

/** One field of a custom body: a property of the record, or a fixed value. */
export type CustomField = { key: string; property: string } | { key: string; value: PropertyValue };

/** What a webhook sends: the whole record, or the chosen fields. */
export type BodySpec = { type: "all" } | { type: "custom"; fields: CustomField[] };

/** "Trigger a webhook": sends the record to `url`. */
export interface WebhookAction {
  type: "webhook";
  url: string;
  method: "POST" | "GET";
  authentication?: Authentication | undefined;
  body: BodySpec;
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
}

/** A workflow as stored and returned: the definition plus server-assigned ids and times. */
export interface Workflow {
  id: string;
  name: string;
  objectType: ObjectType;
  actions: Array<WorkflowAction & { id: string }>;
  createdAt: string;
  updatedAt: string;
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

/** The workflow as API responses show it: API-key values replaced by `***`. */
export function redactWorkflow(workflow: Workflow): Workflow {
  return {
    ...workflow,
    actions: workflow.actions.map((action) =>
      action.type === "webhook" && action.authentication?.type === "apiKey"
        ? { ...action, authentication: { ...action.authentication, value: REDACTED_SECRET } }
        : action,
    ),
  };
}
