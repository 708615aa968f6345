/**
 * The OpenAPI 3.1 document of the HTTP API, built from the route list of the contract, the zod
 * schemas the handler validates requests with, and each route's description (`route-docs.ts`).
 * A route of the contract needs only its description to appear here; nothing is written twice.
 */
import * as z from "zod/mini";
import { pathParameterSchema, requestBodies } from "#domain/request-schemas";
import { type ApiRoute, apiRoutes, type RequestBodyName, type RouteKey } from "#shared/contract";
import { PROJECT_VERSION } from "#shared/version";
import { routeDocs } from "./route-docs.ts";

/** The OpenAPI version the document follows; its schemas are JSON Schema draft 2020-12. */
export const OPENAPI_VERSION = "3.1.0";

/** A JSON Schema object, as the document holds it. */
type JsonSchema = Record<string, unknown>;

/** The refusals every route may answer, by status: the code and when (docs/contract.md). */
const REFUSALS = {
  400: "invalid_request: a path parameter, query parameter or body field breaks a rule (the message names it)",
  404: "not_found: no such resource",
  409: "conflict: the request does not fit the resource's current state",
  413: "payload_too_large: the body is over 1 MiB",
  415: "unsupported_media_type: the body is not declared application/json",
} as const;

/** A status the API refuses a request with. */
export type RefusalStatus = keyof typeof REFUSALS;

/** What the document says of one route beyond what the contract and the request schemas say. */
export interface RouteDoc {
  /** Unique across the API; client generators name their methods after it. */
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  /** The group the route is listed under. */
  readonly tag: string;
  /** The status of success, what it means, and the schema of its body when it has one. */
  readonly success: {
    readonly status: number;
    readonly description: string;
    readonly schema?: z.core.$ZodType;
  };
  /** Refusals that only the route's logic knows of (409); 400, 404, 413 and 415 follow from its inputs. */
  readonly refusals?: readonly RefusalStatus[];
  /** Query parameters, with the schemas the handler validates them with. */
  readonly query?: Readonly<
    Record<
      string,
      {
        readonly schema: z.core.$ZodType;
        readonly description: string;
        readonly required?: boolean;
      }
    >
  >;
}

/** The error shape of every refusal. */
const errorSchema = z.strictObject({
  error: z.strictObject({
    code: z.string().check(z.meta({ description: "A stable, machine-readable code" })),
    message: z
      .string()
      .check(z.meta({ description: "What was wrong, naming the field and the rule" })),
  }),
});

export interface OpenApiSources {
  readonly routes: readonly ApiRoute[];
  readonly docs: Readonly<Record<string, RouteDoc>>;
  readonly requestBodies: Readonly<Record<RequestBodyName, z.core.$ZodType>>;
  readonly pathParameterSchema: (name: string) => z.core.$ZodType;
  readonly version: string;
}

/** Thrown when a route of the contract has no description to build its operation from. */
export class UndocumentedRouteError extends Error {
  override name = "UndocumentedRouteError";
}

/** The OpenAPI document of `sources.routes`; `serverUrl` is where the API is called. */
export function buildOpenApiDocument(
  sources: OpenApiSources,
  serverUrl?: string,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const usedBodies = new Set<RequestBodyName>();
  for (const route of sources.routes) {
    const key = `${route.method} ${route.path}`;
    const doc = sources.docs[key];
    if (doc === undefined) throw new UndocumentedRouteError(`route ${key} has no description`);
    if (route.body !== undefined) usedBodies.add(route.body);
    paths[route.path] = {
      ...paths[route.path],
      [route.method.toLowerCase()]: operation(route, doc, sources),
    };
  }
  const schemas: Record<string, JsonSchema> = { Error: jsonSchema(errorSchema, "output") };
  for (const body of [...usedBodies].sort()) {
    schemas[requestBodyComponent(body)] = jsonSchema(sources.requestBodies[body], "input");
  }
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: "workflow-webhooks",
      version: sources.version,
      description:
        'Workflows over CRM records whose webhook actions send the record, signed, to an HTTPS URL, with retries for three days. Errors are {"error": {"code", "message"}}. On AWS every route needs authorization (SigV4 by default); the local runtime (npm start) needs none.',
    },
    ...(serverUrl === undefined ? {} : { servers: [{ url: serverUrl }] }),
    security: [{ awsSigV4: [] }],
    tags: [
      ...new Set(sources.routes.map((route) => sources.docs[`${route.method} ${route.path}`]?.tag)),
    ]
      .filter((tag): tag is string => tag !== undefined)
      .map((name) => ({ name })),
    paths,
    components: {
      schemas,
      securitySchemes: {
        awsSigV4: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description:
            "AWS Signature Version 4 for the execute-api service (apiAuthorization=iam, the default); with apiAuthorization=token or cognito, the token instead.",
        },
      },
    },
  };
}

function operation(route: ApiRoute, doc: RouteDoc, sources: OpenApiSources) {
  const pathNames = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? "");
  const parameters = [
    ...pathNames.map((name) => ({
      name,
      in: "path",
      required: true,
      schema: jsonSchema(sources.pathParameterSchema(name), "input"),
    })),
    ...Object.entries(doc.query ?? {}).map(([name, query]) => ({
      name,
      in: "query",
      required: query.required ?? false,
      description: query.description,
      schema: jsonSchema(query.schema, "input"),
    })),
  ];
  const refusals = new Set<RefusalStatus>(doc.refusals ?? []);
  if (parameters.length > 0 || route.body !== undefined) refusals.add(400);
  if (pathNames.length > 0) refusals.add(404);
  if (route.body !== undefined) {
    refusals.add(413);
    refusals.add(415);
  }
  const success = doc.success;
  const responses: Record<string, unknown> = {
    [String(success.status)]: {
      description: success.description,
      ...(success.schema === undefined
        ? {}
        : { content: { "application/json": { schema: jsonSchema(success.schema, "output") } } }),
    },
  };
  for (const status of [...refusals].sort()) {
    responses[String(status)] = {
      description: REFUSALS[status],
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  return {
    operationId: doc.operationId,
    summary: doc.summary,
    ...(doc.description === undefined ? {} : { description: doc.description }),
    tags: [doc.tag],
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(route.body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: { $ref: `#/components/schemas/${requestBodyComponent(route.body)}` },
              },
            },
          },
        }),
    responses,
  };
}

/** `createApp` → `CreateAppRequest`. */
function requestBodyComponent(body: RequestBodyName): string {
  return `${body.charAt(0).toUpperCase()}${body.slice(1)}Request`;
}

/**
 * A zod schema as JSON Schema 2020-12, the dialect of OpenAPI 3.1. Refinements have no JSON
 * Schema form, so a request schema here is a looser superset and the handler has the last word.
 */
function jsonSchema(schema: z.core.$ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" });
  return rest;
}

let cached: Record<string, unknown> | undefined;

/**
 * The document of this API, served at `GET /openapi.json`; built once per process (at the first
 * request, so cold starts of other routes do not pay for it), with `serverUrl` filled in.
 */
export function openApiDocument(serverUrl?: string): Record<string, unknown> {
  cached ??= buildOpenApiDocument({
    routes: apiRoutes,
    docs: routeDocs satisfies Record<RouteKey, RouteDoc>,
    requestBodies,
    pathParameterSchema,
    version: PROJECT_VERSION,
  });
  return serverUrl === undefined ? cached : { ...cached, servers: [{ url: serverUrl }] };
}
