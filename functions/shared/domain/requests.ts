/**
 * Request bodies and path parameters of the HTTP API (SPEC section 2): the zod schemas, the types
 * inferred from them, and the one place where a zod issue becomes a `ValidationError`.
 *
 * The schemas avoid transforms so that `z.toJSONSchema` can express them; where a rule needs a
 * refinement (unique keys, URL parsing, reserved header names, no custom body on GET) the generated
 * JSON Schema is a looser superset and this module stays the authority.
 */
import { z } from "zod";
import { ValidationError } from "#domain/errors";
import { MAX_TARGET_URL_LENGTH, targetUrlProblem } from "#domain/target-url";
import type { RequestBodyName } from "#shared/contract";

export const OBJECT_TYPES = ["contacts", "companies", "deals", "tickets"] as const;

const MAX_NAME_LENGTH = 200;
const MAX_ID_LENGTH = 100;
const MAX_PROPERTY_NAME_LENGTH = 100;
const MAX_PROPERTY_VALUE_LENGTH = 65_536;
const MAX_PROPERTIES_PER_REQUEST = 1_000;
const MAX_ACTIONS = 50;
const MAX_CUSTOM_FIELDS = 100;
const MAX_DELAY_SECONDS = 90 * 24 * 3600;

const objectTypeSchema = z.enum(OBJECT_TYPES);

const nameSchema = z.string().min(1).max(MAX_NAME_LENGTH).regex(/\S/, "must not be blank");

const idSchema = z
  .string()
  .min(1)
  .max(MAX_ID_LENGTH)
  .regex(/^[A-Za-z0-9_.:-]+$/, "must contain only letters, digits, _ . : or -");

const propertyNameSchema = z
  .string()
  .min(1)
  .max(MAX_PROPERTY_NAME_LENGTH)
  .regex(/^[A-Za-z0-9_.-]+$/, "must contain only letters, digits, _ . or -")
  // Stored records and payloads are plain objects keyed by property name.
  .regex(/^(?!__proto__$)/, "is a reserved name");

const propertyValueSchema = z.union(
  [z.string().max(MAX_PROPERTY_VALUE_LENGTH), z.number(), z.boolean(), z.null()],
  { error: "must be a string, number, boolean or null" },
);

const clientSecretSchema = z
  .string()
  .min(16)
  .max(256)
  .regex(/^[\x21-\x7E]+$/, "must contain only printable ASCII characters without spaces");

/** What a target URL may be is the URL policy's to say; the model only carries its length bound. */
const targetUrlSchema = z
  .string()
  .superRefine((url, ctx) => {
    const problem = targetUrlProblem(url);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({ maxLength: MAX_TARGET_URL_LENGTH });

/** Headers every webhook request carries; an API key must not replace them. */
const RESERVED_HEADER_NAMES = new Set([
  "host",
  "content-type",
  "content-length",
  "transfer-encoding",
  "connection",
  "user-agent",
  "x-delivery-id",
  "x-delivery-attempt",
  "x-hubspot-signature",
  "x-hubspot-signature-version",
  "x-hubspot-signature-v3",
  "x-hubspot-request-timestamp",
]);

const signatureAuthenticationSchema = z.strictObject({
  type: z.literal("signature"),
  appId: idSchema,
});

const apiKeyAuthenticationSchema = z
  .strictObject({
    type: z.literal("apiKey"),
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(
        /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/,
        "must contain only letters, digits and !#$%&'*+-.^_`|~ (an HTTP header name)",
      ),
    location: z.enum(["header", "query"]),
    value: z
      .string()
      .min(1)
      .max(4_096)
      .regex(/^[\x20-\x7E]+$/, "must contain only printable ASCII characters"),
  })
  .refine(
    (key) => key.location !== "header" || !RESERVED_HEADER_NAMES.has(key.name.toLowerCase()),
    {
      path: ["name"],
      message: "must not be a header that every webhook request sets itself",
    },
  );

const authenticationSchema = z.discriminatedUnion("type", [
  signatureAuthenticationSchema,
  apiKeyAuthenticationSchema,
]);

const customFieldSchema = z.union(
  [
    z.strictObject({ key: z.string().min(1).max(100), property: propertyNameSchema }),
    z.strictObject({ key: z.string().min(1).max(100), value: propertyValueSchema }),
  ],
  { error: "must be {key, property} or {key, value}" },
);

const bodySpecSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("all") }),
  z.strictObject({
    type: z.literal("custom"),
    fields: z
      .array(customFieldSchema)
      .min(1)
      .max(MAX_CUSTOM_FIELDS)
      .superRefine((fields, ctx) => {
        const firstIndexOfKey = new Map<string, number>();
        fields.forEach((field, index) => {
          const first = firstIndexOfKey.get(field.key);
          if (first === undefined) {
            firstIndexOfKey.set(field.key, index);
            return;
          }
          ctx.addIssue({
            code: "custom",
            path: [index, "key"],
            message: `must be unique (fields[${first}] has the same key)`,
          });
        });
      }),
  }),
]);

const webhookActionSchema = z
  .strictObject({
    type: z.literal("webhook"),
    url: targetUrlSchema,
    method: z.enum(["POST", "GET"]).default("POST"),
    authentication: authenticationSchema.optional(),
    body: bodySpecSchema.default({ type: "all" }),
  })
  .refine((action) => action.method !== "GET" || action.body.type !== "custom", {
    path: ["body"],
    message: "must not be custom when method is GET (a GET sends no body)",
  });

const setPropertyActionSchema = z.strictObject({
  type: z.literal("setProperty"),
  property: propertyNameSchema,
  value: z.string().max(MAX_PROPERTY_VALUE_LENGTH),
});

const delayActionSchema = z.strictObject({
  type: z.literal("delay"),
  seconds: z.int().min(1).max(MAX_DELAY_SECONDS),
});

const workflowActionSchema = z.discriminatedUnion("type", [
  webhookActionSchema,
  setPropertyActionSchema,
  delayActionSchema,
]);

/** The request body schemas, keyed by the `body` names of `apiRoutes`. */
export const requestBodies = {
  createApp: z.strictObject({
    name: nameSchema,
    clientSecret: clientSecretSchema.optional(),
  }),
  putObject: z.strictObject({
    properties: z
      .record(propertyNameSchema, propertyValueSchema)
      .refine((properties) => Object.keys(properties).length <= MAX_PROPERTIES_PER_REQUEST, {
        message: `must have at most ${MAX_PROPERTIES_PER_REQUEST} properties`,
      })
      .meta({ maxProperties: MAX_PROPERTIES_PER_REQUEST }),
  }),
  workflow: z.strictObject({
    name: nameSchema,
    objectType: objectTypeSchema,
    actions: z.array(workflowActionSchema).min(1).max(MAX_ACTIONS),
  }),
  enroll: z.strictObject({ objectId: idSchema }),
  testAction: z.strictObject({ objectId: idSchema }),
} as const satisfies Record<RequestBodyName, z.ZodType>;

export type RequestBody<N extends RequestBodyName> = z.output<(typeof requestBodies)[N]>;
export type ObjectType = z.output<typeof objectTypeSchema>;
export type PropertyValue = z.output<typeof propertyValueSchema>;
export type WorkflowDefinition = RequestBody<"workflow">;
export type WorkflowAction = z.output<typeof workflowActionSchema>;
export type WebhookAction = z.output<typeof webhookActionSchema>;
export type SetPropertyAction = z.output<typeof setPropertyActionSchema>;
export type DelayAction = z.output<typeof delayActionSchema>;
export type Authentication = z.output<typeof authenticationSchema>;
export type BodySpec = z.output<typeof bodySpecSchema>;

/** A workflow as stored and returned: the definition plus server-assigned ids and times. */
export interface Workflow {
  id: string;
  name: string;
  objectType: ObjectType;
  actions: Array<WorkflowAction & { id: string }>;
  createdAt: string;
  updatedAt: string;
}

/** Validates a request body, applying defaults; throws `ValidationError` for the first issue. */
export function parseRequestBody<N extends RequestBodyName>(
  name: N,
  input: unknown,
): RequestBody<N> {
  const result = requestBodies[name].safeParse(input, { reportInput: true });
  if (!result.success) {
    throw toValidationError(result.error.issues, []);
  }
  return result.data as RequestBody<N>;
}

/** Validates the `objectType` path parameter. */
export function parseObjectType(raw: string | undefined): ObjectType {
  const result = objectTypeSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    throw toValidationError(result.error.issues, ["objectType"]);
  }
  return result.data;
}

/** Validates an id path parameter (or body field) named `field`. */
export function parseId(field: string, raw: string | undefined): string {
  const result = idSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    throw toValidationError(result.error.issues, [field]);
  }
  return result.data;
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

type Issue = z.core.$ZodIssue;

interface Problem {
  readonly path: readonly PropertyKey[];
  readonly rule: string;
}

/** Fields a client may copy from a response but that only the server assigns. */
const SERVER_ASSIGNED_FIELDS = new Set(["id", "createdAt", "updatedAt"]);

function toValidationError(issues: readonly Issue[], prefix: readonly PropertyKey[]) {
  const first = issues[0];
  if (first === undefined) {
    return new ValidationError(formatPath(prefix), "is invalid");
  }
  const problem = describeIssue(first, prefix);
  return new ValidationError(formatPath(problem.path), problem.rule);
}

// Rules never quote the offending value: it may be a client secret or an API key.
function describeIssue(issue: Issue, parentPath: readonly PropertyKey[]): Problem {
  const path = [...parentPath, ...issue.path];
  switch (issue.code) {
    case "invalid_type":
      return {
        path,
        rule: issue.input === undefined ? "is required" : mustBeType(issue.expected, path),
      };
    case "too_small":
      return { path, rule: tooSmallRule(issue) };
    case "too_big":
      return { path, rule: tooBigRule(issue) };
    case "invalid_value":
      return { path, rule: oneOfRule(issue.values) };
    case "unrecognized_keys": {
      const key = issue.keys[0] ?? "";
      return {
        path: [...path, key],
        rule: SERVER_ASSIGNED_FIELDS.has(key)
          ? "is assigned by the server; leave it out"
          : "unknown field",
      };
    }
    case "invalid_key": {
      const inner = issue.issues[0];
      return { path, rule: `name ${inner ? describeIssue(inner, []).rule : "is invalid"}` };
    }
    case "invalid_union":
      return describeUnionIssue(issue, path);
    default:
      return { path, rule: issue.message };
  }
}

function describeUnionIssue(issue: z.core.$ZodIssueInvalidUnion, path: PropertyKey[]): Problem {
  if (issue.discriminator !== undefined && issue.errors.length === 0) {
    const given = isPlainObject(issue.input) ? issue.input[issue.discriminator] : undefined;
    const options = "options" in issue ? (issue.options ?? []) : [];
    return { path, rule: given === undefined ? "is required" : oneOfRule(options) };
  }
  // Explain the option the input was evidently meant for: one whose type matched and that has the
  // fewest complaints. When no single option stands out, the union's own message says what fits.
  const plausible = issue.errors
    .filter(
      (branch) => !branch.some((inner) => inner.code === "invalid_type" && inner.path.length === 0),
    )
    .sort((a, b) => a.length - b.length);
  const [best = [], runnerUp] = plausible;
  const [bestFirst] = best;
  if (bestFirst !== undefined && (runnerUp === undefined || best.length < runnerUp.length)) {
    return describeIssue(bestFirst, path);
  }
  return { path, rule: issue.message };
}

function mustBeType(expected: string, path: readonly PropertyKey[]): string {
  switch (expected) {
    case "int":
      return "must be a whole number";
    case "boolean":
      return "must be true or false";
    case "object":
    case "record":
      return path.length === 0 ? "must be a JSON object" : "must be an object";
    case "array":
      return "must be an array";
    case "null":
      return "must be null";
    default:
      return `must be a ${expected}`;
  }
}

function tooSmallRule(issue: z.core.$ZodIssueTooSmall): string {
  const minimum = Number(issue.minimum);
  switch (issue.origin) {
    case "string":
      return minimum === 1 ? "must not be empty" : `must be at least ${minimum} characters`;
    case "array":
      return `must have at least ${minimum} ${minimum === 1 ? "item" : "items"}`;
    default:
      return issue.inclusive ? `must be at least ${minimum}` : `must be greater than ${minimum}`;
  }
}

function tooBigRule(issue: z.core.$ZodIssueTooBig): string {
  const maximum = Number(issue.maximum);
  switch (issue.origin) {
    case "string":
      return `must be at most ${maximum} characters`;
    case "array":
      return `must have at most ${maximum} items`;
    default:
      return issue.inclusive ? `must be at most ${maximum}` : `must be less than ${maximum}`;
  }
}

function oneOfRule(values: readonly unknown[]): string {
  const listed = values.map(String);
  return listed.length === 1 ? `must be ${listed[0]}` : `must be one of ${listed.join(", ")}`;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MAX_KEY_IN_PATH = 100;

/** `actions[0].url`, `properties.email`, `properties["first-name"]`; the root is `body`. */
function formatPath(path: readonly PropertyKey[]): string {
  let formatted = "";
  for (const key of path) {
    if (typeof key === "number") {
      formatted += `[${key}]`;
      continue;
    }
    // Keys come from the client; a long one would swamp the message.
    const text = String(key);
    const shown = text.length > MAX_KEY_IN_PATH ? `${text.slice(0, MAX_KEY_IN_PATH)}…` : text;
    if (typeof key === "string" && PLAIN_KEY.test(shown)) {
      formatted += formatted === "" ? shown : `.${shown}`;
    } else {
      formatted += `[${JSON.stringify(shown)}]`;
    }
  }
  return formatted === "" ? "body" : formatted;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
