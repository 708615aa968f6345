/**
 * Request bodies and path parameters of the HTTP API (docs/contract.md): the zod schemas that
 * validate them into the workflow model, and the functions that parse them. A zod issue becomes a
 * `ValidationError` in `validation-messages.ts`.
 *
 * The schemas are written with `zod/mini`, whose functions tree-shake, so the API's bundle carries
 * only the validation it uses instead of all of zod (some 450 kB with its locales); the issues are
 * the same, and so are the messages built from them.
 *
 * The schemas avoid transforms so that `z.toJSONSchema` can express them; where a rule needs a
 * refinement (unique keys, URL parsing, reserved header names, no custom body on GET) the generated
 * JSON Schema is a looser superset and this module stays the authority.
 */
import { en } from "zod/locales";
import * as z from "zod/mini";
import {
  LIST_OPERATORS,
  NUMERIC_OPERATORS,
  numeric,
  PROPERTY_OPERATORS,
  SINGLE_VALUE_OPERATORS,
} from "#domain/enrollment-triggers";
import { RESERVED_PROPERTY_NAME } from "#domain/record";
import { STANDARD_WEBHOOKS_SECRET_PREFIX } from "#domain/signatures";
import { MAX_TARGET_URL_LENGTH, targetUrlProblem } from "#domain/target-url";
import { toValidationError } from "#domain/validation-messages";
import {
  OBJECT_TYPES,
  type ObjectType,
  type PropertyValue,
  REDACTED_SECRET,
  type WorkflowDefinition,
} from "#domain/workflow";
import type { RequestBodyName } from "#shared/contract";

// Full zod sets its English messages when loaded; mini leaves that to its user. The rules of a
// `ValidationError` come from issue codes, but an issue without wording of its own falls back to
// zod's message, which must read as it always has rather than as "Invalid input".
z.config(en());

const MAX_NAME_LENGTH = 200;
const MAX_ID_LENGTH = 100;
const MAX_PROPERTY_NAME_LENGTH = 100;
const MAX_PROPERTY_VALUE_LENGTH = 65_536;
const MAX_PROPERTIES_PER_REQUEST = 1_000;
const MAX_ACTIONS = 50;
const MAX_CUSTOM_FIELDS = 100;
const MAX_DELAY_SECONDS = 90 * 24 * 3600;
/** At most 20 outputs per webhook action (docs/contract.md). */
const MAX_OUTPUTS = 20;
const MAX_OUTPUT_PATH_LENGTH = 500;
/** Criteria stay small enough to judge on every change of every record. */
const MAX_FILTER_GROUPS = 10;
const MAX_FILTERS_PER_GROUP = 10;
const MAX_FILTER_VALUES = 100;
const MAX_FILTER_VALUE_LENGTH = 1_000;
const MAX_PAGE_URL_LENGTH = 2_048;

const objectTypeSchema = z.enum(OBJECT_TYPES);

const nameSchema = z
  .string()
  .check(z.minLength(1), z.maxLength(MAX_NAME_LENGTH), z.regex(/\S/, "must not be blank"));

/** An id in a path, a body or a query: what every id the server assigns looks like. */
export const idSchema = z
  .string()
  .check(
    z.minLength(1),
    z.maxLength(MAX_ID_LENGTH),
    z.regex(/^[A-Za-z0-9_.:-]+$/, "must contain only letters, digits, _ . : or -"),
  );

const propertyNameSchema = z.string().check(
  z.minLength(1),
  z.maxLength(MAX_PROPERTY_NAME_LENGTH),
  z.regex(/^[A-Za-z0-9_.-]+$/, "must contain only letters, digits, _ . or -"),
  // Stored records and payloads are plain objects keyed by property name.
  z.regex(new RegExp(`^(?!${RESERVED_PROPERTY_NAME}$)`), "is a reserved name"),
);

const propertyValueSchema = z.union(
  [z.string().check(z.maxLength(MAX_PROPERTY_VALUE_LENGTH)), z.number(), z.boolean(), z.null()],
  { error: "must be a string, number, boolean or null" },
);

/**
 * The smallest magnitude a DynamoDB number can have; smaller ones are refused, not rounded to 0.
 * At the other end, the SDK's marshaller refuses numbers beyond 2^53 - 1, which it could not
 * store exactly (DynamoDB itself stops below 1e126).
 */
const MIN_STORED_NUMBER_MAGNITUDE = 1e-130;

/** Whether a workflow can store this number as it is, for every attempt to send it the same. */
function isStorableNumber(value: number): boolean {
  const magnitude = Math.abs(value);
  return (
    magnitude === 0 ||
    (magnitude >= MIN_STORED_NUMBER_MAGNITUDE && magnitude <= Number.MAX_SAFE_INTEGER)
  );
}

/** A number a workflow keeps as given (a fixed value, a filter's value). */
const storableNumberSchema = z
  .number()
  .check(
    z.refine(
      isStorableNumber,
      "must be 0 or between 1e-130 and 9007199254740991 (2^53 - 1) in size; send other numbers as a string",
    ),
  );

/** A fixed value of a custom body: kept in the workflow as given, so its numbers must be storable. */
const staticValueSchema = z.union(
  [
    z.string().check(z.maxLength(MAX_PROPERTY_VALUE_LENGTH)),
    storableNumberSchema,
    z.boolean(),
    z.null(),
  ],
  { error: "must be a string, number, boolean or null" },
);

const clientSecretSchema = z
  .string()
  .check(
    z.minLength(16),
    z.maxLength(256),
    z.regex(/^[\x21-\x7E]+$/, "must contain only printable ASCII characters without spaces"),
  );

/** What a target URL may be is the URL policy's to say; the model only carries its length bound. */
const targetUrlSchema = z.string().check(
  z.superRefine((url, ctx) => {
    const problem = targetUrlProblem(url);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  }),
  z.meta({ maxLength: MAX_TARGET_URL_LENGTH }),
);

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
  "x-hubspot-signature-previous",
  "x-hubspot-signature-v3-previous",
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
]);

/**
 * Headers that servers and proxies act on or drop instead of handing them to the application
 * (a server answers an unknown Expect with 417, Upgrade asks for another protocol, Keep-Alive is
 * hop-by-hop, Trailer announces trailing headers, which Node refuses to send on a GET): an API
 * key under one of these names would never reach the receiver's code, and every attempt would
 * fail for three days. The reserved names above cover the rest.
 */
export const UNSENDABLE_HEADER_NAMES: ReadonlySet<string> = new Set([
  "expect",
  "upgrade",
  "keep-alive",
  "trailer",
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
      .check(
        z.minLength(1),
        z.maxLength(100),
        z.regex(
          /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/,
          "must contain only letters, digits and !#$%&'*+-.^_`|~ (an HTTP header name)",
        ),
      ),
    location: z.enum(["header", "query"]),
    value: z
      .string()
      .check(
        z.minLength(1),
        z.maxLength(4_096),
        z.regex(/^[\x20-\x7E]+$/, "must contain only printable ASCII characters"),
      ),
  })
  .check(
    z.refine(
      (key) => key.location !== "header" || !RESERVED_HEADER_NAMES.has(key.name.toLowerCase()),
      {
        path: ["name"],
        message: "must not be a header that every webhook request sets itself",
      },
    ),
    z.refine(
      (key) => key.location !== "header" || !UNSENDABLE_HEADER_NAMES.has(key.name.toLowerCase()),
      {
        path: ["name"],
        message:
          "must not be a header that does not reach the receiver's application (Expect, Upgrade, Keep-Alive, Trailer)",
      },
    ),
  );

const MIN_STANDARD_WEBHOOKS_KEY_BYTES = 24;
const MAX_STANDARD_WEBHOOKS_KEY_BYTES = 64;
const STANDARD_WEBHOOKS_SECRET_RULE =
  "must be whsec_ followed by the base64 of a 24 to 64 byte key";

/**
 * Standard Webhooks recommends keys of 24 to 64 bytes, base64 in 32 to 88 characters. `***`, as
 * responses show the secret, means "keep the secret this action has" when a workflow is replaced.
 */
const standardWebhooksSecretSchema = z.string().check(
  z.regex(
    new RegExp(`^(?:${STANDARD_WEBHOOKS_SECRET_PREFIX}[A-Za-z0-9+/]{32,86}={0,2}|\\*\\*\\*)$`),
    { message: STANDARD_WEBHOOKS_SECRET_RULE, abort: true },
  ),
  z.refine((secret) => secret === REDACTED_SECRET || isStandardWebhooksKey(secret), {
    message: STANDARD_WEBHOOKS_SECRET_RULE,
  }),
);

/** Whether a `whsec_` secret is canonical base64 of a key of an accepted length. */
function isStandardWebhooksKey(secret: string): boolean {
  const encoded = secret.slice(STANDARD_WEBHOOKS_SECRET_PREFIX.length);
  const key = Buffer.from(encoded, "base64");
  return (
    key.toString("base64") === encoded &&
    key.length >= MIN_STANDARD_WEBHOOKS_KEY_BYTES &&
    key.length <= MAX_STANDARD_WEBHOOKS_KEY_BYTES
  );
}

const standardWebhooksAuthenticationSchema = z.strictObject({
  type: z.literal("standardWebhooks"),
  secret: standardWebhooksSecretSchema,
});

const authenticationSchema = z.discriminatedUnion("type", [
  signatureAuthenticationSchema,
  apiKeyAuthenticationSchema,
  standardWebhooksAuthenticationSchema,
]);

const customFieldKeySchema = z.string().check(z.minLength(1), z.maxLength(100));

const customFieldSchema = z.union(
  [
    z.strictObject({ key: customFieldKeySchema, property: propertyNameSchema }),
    z.strictObject({ key: customFieldKeySchema, value: staticValueSchema }),
  ],
  { error: "must be {key, property} or {key, value}" },
);

const bodySpecSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("all") }),
  z.strictObject({
    type: z.literal("custom"),
    fields: z.array(customFieldSchema).check(
      z.minLength(1),
      z.maxLength(MAX_CUSTOM_FIELDS),
      z.superRefine((fields, ctx) => {
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
    ),
  }),
]);

const webhookOutputSchema = z.strictObject({
  path: z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(MAX_OUTPUT_PATH_LENGTH),
      z.regex(
        /^[^.]+(\.[^.]+)*$/,
        "must be dot notation: names or array indices joined by single dots",
      ),
    ),
  property: propertyNameSchema,
});

const webhookActionSchema = z
  .strictObject({
    type: z.literal("webhook"),
    url: targetUrlSchema,
    method: z._default(z.enum(["POST", "GET"]), "POST"),
    authentication: z.optional(authenticationSchema),
    body: z._default(bodySpecSchema, { type: "all" }),
    outputs: z.optional(z.array(webhookOutputSchema).check(z.maxLength(MAX_OUTPUTS))),
  })
  .check(
    z.refine((action) => action.method !== "GET" || action.body.type !== "custom", {
      path: ["body"],
      message: "must not be custom when method is GET (a GET sends no body)",
    }),
  );

const setPropertyActionSchema = z.strictObject({
  type: z.literal("setProperty"),
  property: propertyNameSchema,
  value: z.string().check(z.maxLength(MAX_PROPERTY_VALUE_LENGTH)),
});

const delayActionSchema = z.strictObject({
  type: z.literal("delay"),
  seconds: z.int().check(z.gte(1), z.lte(MAX_DELAY_SECONDS)),
});

/** A point in time as the API takes it: ISO-8601, with its zone (`Z` or an offset). */
export const isoDateTimeSchema = z.iso.datetime({
  offset: true,
  error: "must be an ISO-8601 date and time with a zone, such as 2024-05-01T00:00:00Z",
});

const workflowActionSchema = z.discriminatedUnion("type", [
  webhookActionSchema,
  setPropertyActionSchema,
  delayActionSchema,
]);

const filterValueSchema = z.union(
  [z.string().check(z.maxLength(MAX_FILTER_VALUE_LENGTH)), storableNumberSchema, z.boolean()],
  { error: "must be a string, number or boolean" },
);

/** Which of `value` and `values` a filter takes follows from its operator. */
const propertyFilterSchema = z
  .strictObject({
    type: z.literal("property"),
    property: propertyNameSchema,
    operator: z.enum(PROPERTY_OPERATORS),
    value: z.optional(filterValueSchema),
    values: z.optional(
      z.array(filterValueSchema).check(z.minLength(1), z.maxLength(MAX_FILTER_VALUES)),
    ),
  })
  .check(
    z.superRefine((filter, ctx) => {
      const { operator, value, values } = filter;
      const problem = (path: string, message: string) =>
        ctx.addIssue({
          code: "custom",
          path: [path],
          message: `${message} with operator ${operator}`,
        });
      if (SINGLE_VALUE_OPERATORS.includes(operator)) {
        if (value === undefined) problem("value", "is required");
        else if (NUMERIC_OPERATORS.includes(operator) && numeric(String(value)) === undefined)
          problem("value", "must be a number");
        else if (operator === "CONTAINS" && String(value) === "")
          problem("value", "must not be empty");
        if (values !== undefined) problem("values", "must be left out (use value)");
      } else if (LIST_OPERATORS.includes(operator)) {
        if (values === undefined) problem("values", "is required");
        if (value !== undefined) problem("value", "must be left out (use values)");
      } else {
        if (value !== undefined) problem("value", "must be left out");
        if (values !== undefined) problem("values", "must be left out");
      }
    }),
  );

const triggerFilterSchema = z.discriminatedUnion("type", [
  propertyFilterSchema,
  z.strictObject({ type: z.literal("formSubmission"), formId: idSchema }),
  z.strictObject({ type: z.literal("listMembership"), listId: idSchema }),
]);

const enrollmentTriggersSchema = z.strictObject({
  filterGroups: z
    .array(
      z.strictObject({
        filters: z
          .array(triggerFilterSchema)
          .check(z.minLength(1), z.maxLength(MAX_FILTERS_PER_GROUP)),
      }),
    )
    .check(z.minLength(1), z.maxLength(MAX_FILTER_GROUPS)),
  reenroll: z._default(z.boolean(), false),
});

const propertiesSchema = z.record(propertyNameSchema, propertyValueSchema).check(
  z.refine((properties) => Object.keys(properties).length <= MAX_PROPERTIES_PER_REQUEST, {
    message: `must have at most ${MAX_PROPERTIES_PER_REQUEST} properties`,
  }),
  z.meta({ maxProperties: MAX_PROPERTIES_PER_REQUEST }),
);

/** The request body schemas, keyed by the `body` names of `apiRoutes`. */
export const requestBodies = {
  createApp: z.strictObject({
    name: nameSchema,
    clientSecret: z.optional(clientSecretSchema),
  }),
  putObject: z.strictObject({ properties: propertiesSchema }),
  workflow: z
    .strictObject({
      name: nameSchema,
      objectType: objectTypeSchema,
      actions: z.array(workflowActionSchema).check(z.minLength(1), z.maxLength(MAX_ACTIONS)),
      enrollmentTriggers: z.optional(enrollmentTriggersSchema),
    })
    .check(
      // Forms and lists hold contacts: a workflow over another type triggers on properties only.
      z.superRefine((workflow, ctx) => {
        if (workflow.objectType === "contacts") return;
        workflow.enrollmentTriggers?.filterGroups.forEach((group, groupIndex) => {
          group.filters.forEach((filter, filterIndex) => {
            if (filter.type === "property") return;
            ctx.addIssue({
              code: "custom",
              path: [
                "enrollmentTriggers",
                "filterGroups",
                groupIndex,
                "filters",
                filterIndex,
                "type",
              ],
              message: `must be property for ${workflow.objectType} (forms and lists hold contacts only)`,
            });
          });
        });
      }),
    ),
  enroll: z.strictObject({ objectId: idSchema }),
  testAction: z.strictObject({ objectId: idSchema }),
  rotateSecret: z.strictObject({ clientSecret: z.optional(clientSecretSchema) }),
  formSubmission: z.strictObject({
    objectId: idSchema,
    values: propertiesSchema,
    pageUrl: z.optional(z.string().check(z.minLength(1), z.maxLength(MAX_PAGE_URL_LENGTH))),
  }),
  createList: z.strictObject({ name: nameSchema }),
  replayDeliveries: z
    .strictObject({
      workflowId: idSchema,
      since: isoDateTimeSchema,
      until: z.optional(isoDateTimeSchema),
    })
    .check(
      z.refine(
        (body) => body.until === undefined || Date.parse(body.until) >= Date.parse(body.since),
        {
          path: ["until"],
          message: "must not be before since",
        },
      ),
    ),
} as const satisfies Record<RequestBodyName, z.ZodMiniType>;

/** A request body as validated, with defaults applied. */
export type RequestBody<N extends RequestBodyName> = z.output<(typeof requestBodies)[N]>;

/** True only when `A` and `B` are the same type. */
type Same<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Holds<_ extends true> = never;
/** The schemas produce exactly the model's types: a change on one side alone does not compile. */
type _SchemasProduceTheModel = Holds<
  | Same<RequestBody<"workflow">, WorkflowDefinition>
  | Same<z.output<typeof objectTypeSchema>, ObjectType>
  | Same<z.output<typeof propertyValueSchema>, PropertyValue>
>;

/** Validates a request body, applying defaults; throws `ValidationError` for the first issue. */
export function parseRequestBody<N extends RequestBodyName>(
  name: N,
  input: unknown,
): RequestBody<N> {
  const reserved = reservedKeyPath(input);
  if (reserved !== undefined) {
    throw toValidationError(
      [{ code: "custom", path: reserved, message: "is a reserved name", input }],
      [],
    );
  }
  const result = requestBodies[name].safeParse(input, { reportInput: true });
  if (!result.success) {
    throw toValidationError(result.error.issues, []);
  }
  return result.data as RequestBody<N>;
}

/** The schema of a path parameter: `objectType` is one of the object types, any other an id. */
export function pathParameterSchema(name: string): z.core.$ZodType {
  return name === "objectType" ? objectTypeSchema : idSchema;
}

/**
 * Deeper than any body the schemas accept (a custom body field sits at depth 5), so what lies
 * below is refused by them anyway; it also keeps the walk's paths short.
 */
const MAX_CHECKED_DEPTH = 8;

/**
 * The path of the first own `__proto__` key in parsed JSON, if any. zod leaves such a key out of
 * a record's output without a word, so a property of that name would vanish; it is refused
 * instead. The walks keep their own stacks, so a deeply nested body cannot overflow the call
 * stack, and only a body that has the key pays for tracking paths.
 */
function reservedKeyPath(input: unknown): PropertyKey[] | undefined {
  const values: unknown[] = [input];
  const depths: number[] = [0];
  while (values.length > 0) {
    const value = values.pop();
    const depth = depths.pop() ?? 0;
    if (typeof value !== "object" || value === null || depth > MAX_CHECKED_DEPTH) continue;
    if (!Array.isArray(value) && Object.hasOwn(value, RESERVED_PROPERTY_NAME)) {
      return pathToReservedKey(input);
    }
    for (const item of Array.isArray(value) ? value : Object.values(value)) {
      values.push(item);
      depths.push(depth + 1);
    }
  }
  return undefined;
}

function pathToReservedKey(input: unknown): PropertyKey[] | undefined {
  const pending: Array<{ value: unknown; path: PropertyKey[] }> = [{ value: input, path: [] }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, path } = next;
    if (typeof value !== "object" || value === null || path.length > MAX_CHECKED_DEPTH) continue;
    if (!Array.isArray(value) && Object.hasOwn(value, RESERVED_PROPERTY_NAME)) {
      return [...path, RESERVED_PROPERTY_NAME];
    }
    const entries: Array<[PropertyKey, unknown]> = Array.isArray(value)
      ? [...value.entries()]
      : Object.entries(value);
    for (const [key, item] of entries) pending.push({ value: item, path: [...path, key] });
  }
  return undefined;
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
