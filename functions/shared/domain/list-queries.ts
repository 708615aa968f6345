/**
 * The query strings of the API's lists (`GET /deliveries`, `GET /workflows`,
 * `GET /workflows/{id}/enrollments`): each parameter's schema and description, which the OpenAPI
 * document shows, and the parsers that turn a query string into a validated query. Unknown
 * parameters are refused, as unknown body fields are.
 */
import * as z from "zod/mini";
import type { DeliveryStatus } from "#domain/delivery";
import type { EnrollmentStatus } from "#domain/enrollment";
import { ValidationError } from "#domain/errors";
import { idSchema, isoDateTimeSchema } from "#domain/request-schemas";
import { toValidationError } from "#domain/validation-messages";

/** The most items a page holds: a page of deliveries stays far below the API's 6 MB response. */
export const MAX_PAGE_SIZE = 100;
/** Deliveries per page when the client names no limit. */
export const DEFAULT_DELIVERY_PAGE_SIZE = 25;
/**
 * Workflows per page when the client names no limit: the most a page holds, so a client written
 * before `GET /workflows` was paged still gets every workflow of an account with up to 100.
 */
export const DEFAULT_WORKFLOW_PAGE_SIZE = MAX_PAGE_SIZE;
/** Enrollments per page when the client names no limit. */
export const DEFAULT_ENROLLMENT_PAGE_SIZE = 20;
/** Far longer than any token the lists give, which encode one item's keys. */
const MAX_PAGE_TOKEN_LENGTH = 2_048;
/** A whole number with digits enough for any limit; a longer one is refused before it is read. */
const WHOLE_NUMBER = /^\d{1,6}$/;

const DELIVERY_STATUSES = [
  "pending",
  "retrying",
  "succeeded",
  "failed",
] as const satisfies readonly DeliveryStatus[];

/** The statuses `GET /workflows/{id}/enrollments` filters by. */
const ENROLLMENT_STATUS_FILTERS = [
  "active",
  "waiting",
  "completed",
  "failed",
  "cancelled",
] as const satisfies readonly EnrollmentStatus[];
export type EnrollmentStatusFilter = (typeof ENROLLMENT_STATUS_FILTERS)[number];

/** One query parameter: the schema of its value and what it means. */
export interface QueryParameter {
  readonly schema: z.core.$ZodType;
  readonly description: string;
  readonly required?: boolean;
  /** A whole number, which a query string carries as text. */
  readonly integer?: boolean;
}

const limitParameter = (fallback: number): QueryParameter => ({
  schema: z.int().check(z.gte(1), z.lte(MAX_PAGE_SIZE)),
  description: `Items per page, 1 to ${MAX_PAGE_SIZE}; ${fallback} when absent. A page may hold fewer and still have a nextToken.`,
  integer: true,
});

const nextTokenParameter: QueryParameter = {
  schema: z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(MAX_PAGE_TOKEN_LENGTH),
      z.regex(/^[A-Za-z0-9_-]+$/, "must be a nextToken from an earlier page"),
    ),
  description:
    "The nextToken of the previous page, as given; absent for the first page. Opaque, and only good for the same query.",
};

/** The parameters of `GET /deliveries`. */
export const deliveryListParameters = {
  workflowId: {
    schema: idSchema,
    description: "The workflow whose deliveries to list",
    required: true,
  },
  status: {
    schema: z.enum(DELIVERY_STATUSES),
    description: "Only deliveries with this status",
  },
  since: {
    schema: isoDateTimeSchema,
    description: "Only deliveries created at or after this time (ISO-8601)",
  },
  until: {
    schema: isoDateTimeSchema,
    description: "Only deliveries created at or before this time (ISO-8601)",
  },
  limit: limitParameter(DEFAULT_DELIVERY_PAGE_SIZE),
  nextToken: nextTokenParameter,
} as const satisfies Record<string, QueryParameter>;

/** The parameters of `GET /workflows`. */
export const workflowListParameters = {
  limit: limitParameter(DEFAULT_WORKFLOW_PAGE_SIZE),
  nextToken: nextTokenParameter,
} as const satisfies Record<string, QueryParameter>;

/** The parameters of `GET /workflows/{id}/enrollments`. */
export const enrollmentListParameters = {
  objectId: { schema: idSchema, description: "Only this record's enrollments" },
  status: {
    schema: z.enum(ENROLLMENT_STATUS_FILTERS),
    description: "Only enrollments with this status",
  },
  limit: limitParameter(DEFAULT_ENROLLMENT_PAGE_SIZE),
  nextToken: nextTokenParameter,
} as const satisfies Record<string, QueryParameter>;

/** A validated `GET /deliveries` query; times in epoch milliseconds. */
export interface DeliveryListQuery {
  readonly workflowId: string;
  readonly status?: DeliveryStatus;
  readonly since?: number;
  readonly until?: number;
  readonly limit: number;
  readonly nextToken?: string;
}

/** A validated `GET /workflows` query. */
export interface WorkflowListQuery {
  readonly limit: number;
  readonly nextToken?: string;
}

/** A validated `GET /workflows/{id}/enrollments` query. */
export interface EnrollmentListQuery {
  readonly objectId?: string;
  readonly status?: EnrollmentStatusFilter;
  readonly limit: number;
  readonly nextToken?: string;
}

/**
 * A query string as API Gateway hands it over, null when the request had none: every value of
 * each name (`multiValueQueryStringParameters`), or one value per name.
 */
export type RawQuery =
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | null
  | undefined;

/** Validates the query string of `GET /deliveries`; ValidationError names the parameter. */
export function parseDeliveryListQuery(raw: RawQuery): DeliveryListQuery {
  const values = parseQuery(deliveryListParameters, raw);
  const since = values.since === undefined ? undefined : Date.parse(String(values.since));
  const until = values.until === undefined ? undefined : Date.parse(String(values.until));
  if (since !== undefined && until !== undefined && until < since) {
    throw new ValidationError("until", "must not be before since");
  }
  return {
    workflowId: String(values.workflowId),
    ...(values.status === undefined ? {} : { status: values.status as DeliveryStatus }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    limit: (values.limit as number | undefined) ?? DEFAULT_DELIVERY_PAGE_SIZE,
    ...(values.nextToken === undefined ? {} : { nextToken: String(values.nextToken) }),
  };
}

/** Validates the query string of `GET /workflows`. */
export function parseWorkflowListQuery(raw: RawQuery): WorkflowListQuery {
  const values = parseQuery(workflowListParameters, raw);
  return {
    limit: (values.limit as number | undefined) ?? DEFAULT_WORKFLOW_PAGE_SIZE,
    ...(values.nextToken === undefined ? {} : { nextToken: String(values.nextToken) }),
  };
}

/** Validates the query string of `GET /workflows/{id}/enrollments`. */
export function parseEnrollmentListQuery(raw: RawQuery): EnrollmentListQuery {
  const values = parseQuery(enrollmentListParameters, raw);
  return {
    ...(values.objectId === undefined ? {} : { objectId: String(values.objectId) }),
    ...(values.status === undefined ? {} : { status: values.status as EnrollmentStatusFilter }),
    limit: (values.limit as number | undefined) ?? DEFAULT_ENROLLMENT_PAGE_SIZE,
    ...(values.nextToken === undefined ? {} : { nextToken: String(values.nextToken) }),
  };
}

/** Each given parameter's value, validated by its schema; the first problem is thrown. */
function parseQuery(
  parameters: Readonly<Record<string, QueryParameter>>,
  raw: RawQuery,
): Record<string, unknown> {
  const given: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(raw ?? {})) {
    if (value === undefined) continue;
    if (!Object.hasOwn(parameters, name)) {
      throw new ValidationError(
        name,
        `unknown query parameter; this route takes ${Object.keys(parameters).join(", ")}`,
      );
    }
    const values = typeof value === "string" ? [value] : value;
    // Several values make the query ambiguous (API Gateway's single-value map keeps only one).
    if (values.length > 1) throw new ValidationError(name, "is given more than once; give it once");
    const [only] = values;
    if (only !== undefined) given.push([name, only]);
  }
  const values: Record<string, unknown> = {};
  for (const [name, parameter] of Object.entries(parameters)) {
    const text = given.find(([key]) => key === name)?.[1];
    if (text === undefined) {
      if (parameter.required) throw new ValidationError(name, "is required");
      continue;
    }
    let value: unknown = text;
    if (parameter.integer) {
      if (!WHOLE_NUMBER.test(text)) {
        throw new ValidationError(name, `must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
      }
      value = Number(text);
    }
    const result = z.safeParse(parameter.schema, value, { reportInput: true });
    if (!result.success) throw toValidationError(result.error.issues, [name]);
    values[name] = result.data;
  }
  return values;
}
