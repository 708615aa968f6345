import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { API_TIME_LIMIT_SECONDS, type ApiRoute, apiRoutes } from "#shared/contract";
import { lambdaContext } from "./lambda-context.ts";
import type { ErrorReporter } from "./log.ts";
import { close, httpUrl, listen, localAccountId, loopback } from "./net.ts";

/**
 * The API's Lambda handler: proxy events of payload format 1.0 in (what the HTTP API's
 * integration sends, the REST API's event shape), proxy results out.
 */
export type ApiHandler = (
  event: APIGatewayProxyEvent,
  context: Context,
) => Promise<APIGatewayProxyResult>;

export interface ApiGatewayOptions {
  readonly handler: ApiHandler;
  readonly routes?: readonly ApiRoute[];
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly onError?: ErrorReporter;
}

export interface ApiGateway {
  readonly url: string;
  readonly port: number;
  /** Stops accepting requests and waits for those under way. */
  stop(): Promise<void>;
}

const STAGE = "local";
/**
 * The limits a request meets on AWS: the largest payload API Gateway accepts, and the api
 * function's timeout, which ends a request before the gateway's own 30 s do.
 */
export const MAX_GATEWAY_BODY_BYTES = 10 * 1024 * 1024;
const INTEGRATION_TIMEOUT_MS = API_TIME_LIMIT_SECONDS * 1000;
const FUNCTION_NAME = "api";
/** How long a client that sent too much gets to read its 413 before the socket is dropped. */
const DISCARD_GRACE_MS = 1_000;

interface Resource {
  readonly path: string;
  readonly segments: readonly string[];
  readonly methods: ReadonlySet<string>;
}

interface Match {
  readonly resource: Resource;
  readonly pathParameters: Record<string, string>;
}

class GatewayError extends Error {
  override name = "GatewayError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * Starts an HTTP server in place of API Gateway: each request to a route of `apiRoutes` becomes
 * a payload format 1.0 proxy event for the handler, whose result is written back.
 */
export async function startApiGateway(options: ApiGatewayOptions): Promise<ApiGateway> {
  const resources = resourcesOf(options.routes ?? apiRoutes);
  const onError = options.onError ?? (() => {});
  const inFlight = new Set<Promise<void>>();
  const server = createServer((request, response) => {
    const work = serve(options.handler, resources, request, response, onError).catch(
      (error: unknown) => {
        onError("the local API gateway failed to answer", error);
        response.destroy();
      },
    );
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  const host = options.host ?? loopback;
  const port = await listen(server, options.port ?? 0, host);
  return {
    url: httpUrl(host, port),
    port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.allSettled([...inFlight]);
      await close(server);
      await closed;
    },
  };
}

function resourcesOf(routes: readonly ApiRoute[]): Resource[] {
  const byPath = new Map<string, Set<string>>();
  for (const route of routes) {
    const methods = byPath.get(route.path) ?? new Set<string>();
    methods.add(route.method);
    byPath.set(route.path, methods);
  }
  return [...byPath].map(([path, methods]) => ({
    path,
    segments: path.split("/").filter(Boolean),
    methods,
  }));
}

/** The resource a path falls under; a literal segment wins over a `{parameter}`, as on API Gateway. */
function match(resources: readonly Resource[], rawSegments: readonly string[]): Match | undefined {
  let best: Match | undefined;
  for (const resource of resources) {
    if (resource.segments.length !== rawSegments.length) continue;
    const pathParameters: Record<string, string> = {};
    const fits = resource.segments.every((segment, index) => {
      const raw = rawSegments[index] as string;
      const parameter = /^\{(.+)\}$/.exec(segment)?.[1];
      if (parameter === undefined) return segment === raw;
      pathParameters[parameter] = decodeSegment(raw);
      return true;
    });
    if (fits && (!best || moreSpecific(resource, best.resource))) {
      best = { resource, pathParameters };
    }
  }
  return best;
}

function moreSpecific(candidate: Resource, current: Resource): boolean {
  for (let index = 0; index < candidate.segments.length; index++) {
    const a = candidate.segments[index]?.startsWith("{");
    const b = current.segments[index]?.startsWith("{");
    if (a !== b) return !a;
  }
  return false;
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new GatewayError(
      400,
      "bad_request",
      `path segment "${raw}" is not valid percent-encoding`,
    );
  }
}

async function serve(
  handler: ApiHandler,
  resources: readonly Resource[],
  request: IncomingMessage,
  response: ServerResponse,
  onError: ErrorReporter,
): Promise<void> {
  const requestId = randomUUID();
  response.setHeader("x-amzn-RequestId", requestId);
  try {
    const url = new URL(request.url ?? "/", "http://gateway.local");
    const method = request.method ?? "GET";
    // A trailing slash names the same resource.
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/$/, "") : url.pathname;
    const found = match(resources, path.split("/").filter(Boolean));
    if (!found) {
      throw new GatewayError(404, "not_found", `no route for ${method} ${url.pathname}`);
    }
    if (!found.resource.methods.has(method)) {
      throw new GatewayError(
        405,
        "method_not_allowed",
        `${method} is not allowed on ${url.pathname}; use ${[...found.resource.methods].join(", ")}`,
        { allow: [...found.resource.methods].join(", ") },
      );
    }
    const body = await readBody(request);
    const event = toEvent(request, url, path, found, body, requestId);
    const result = await withTimeout(
      handler(event, lambdaContext(FUNCTION_NAME, Date.now() + INTEGRATION_TIMEOUT_MS, requestId)),
    );
    writeResult(response, result);
  } catch (error) {
    if (!(error instanceof GatewayError)) {
      onError("the API handler failed", error);
      if (error instanceof IntegrationTimeoutError) {
        return writeError(response, new GatewayError(504, "gateway_timeout", error.message));
      }
      return writeError(
        response,
        new GatewayError(502, "bad_gateway", "the API handler failed; see the server's log"),
      );
    }
    if (error.status === 413) {
      // The rest of an oversized body is discarded, never buffered, until the connection closes.
      response.setHeader("connection", "close");
      response.once("finish", () => {
        request.resume();
        setTimeout(() => request.socket.destroy(), DISCARD_GRACE_MS).unref();
      });
    }
    writeError(response, error);
  }
}

function readBody(request: IncomingMessage): Promise<string | null> {
  const tooLarge = () =>
    new GatewayError(
      413,
      "payload_too_large",
      `request bodies are limited to ${MAX_GATEWAY_BODY_BYTES} bytes`,
    );
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > MAX_GATEWAY_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_GATEWAY_BODY_BYTES) {
        request.off("data", onData);
        request.pause();
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    request.on("data", onData);
    request.once("end", () => resolve(size === 0 ? null : Buffer.concat(chunks).toString("utf8")));
    request.once("error", reject);
  });
}

/**
 * The last value and every value of each name, as API Gateway's event has them: own properties
 * whatever the name, so `__proto__` or `constructor` is a parameter like any other, as it is in
 * the JSON of a deployed API's event.
 */
function byName(
  pairs: Iterable<[string, string]>,
): [Record<string, string>, Record<string, string[]>] {
  const values = new Map<string, string[]>();
  for (const [name, value] of pairs) values.set(name, [...(values.get(name) ?? []), value]);
  return [
    Object.fromEntries([...values].map(([name, all]) => [name, all.at(-1) as string])),
    Object.fromEntries(values),
  ];
}

function toEvent(
  request: IncomingMessage,
  url: URL,
  path: string,
  found: Match,
  body: string | null,
  requestId: string,
): APIGatewayProxyEvent {
  const rawHeaders: Array<[string, string]> = [];
  for (let index = 0; index < request.rawHeaders.length; index += 2) {
    rawHeaders.push([request.rawHeaders[index] as string, request.rawHeaders[index + 1] as string]);
  }
  const [headers, multiValueHeaders] = byName(rawHeaders);
  const [query, multiQuery] = byName(url.searchParams);
  const hasQuery = url.searchParams.size > 0;
  const hasParameters = Object.keys(found.pathParameters).length > 0;
  const now = new Date();
  const method = request.method ?? "GET";
  return {
    resource: found.resource.path,
    path,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: hasParameters ? found.pathParameters : null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: localAccountId,
      apiId: "local",
      authorizer: undefined,
      domainName: request.headers.host,
      httpMethod: method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: (request.socket.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, ""),
        user: null,
        userAgent: request.headers["user-agent"] ?? null,
        userArn: null,
      },
      // The path as the client called it, as on API Gateway: local URLs carry no stage.
      path,
      protocol: `HTTP/${request.httpVersion}`,
      requestId,
      requestTime: requestTime(now),
      requestTimeEpoch: now.getTime(),
      resourceId: "local",
      resourcePath: found.resource.path,
      stage: STAGE,
    },
  };
}

/** API Gateway's CLF-style request time, e.g. `09/Apr/2015:12:34:56 +0000`. */
function requestTime(date: Date): string {
  const [, day, month, year, time] = date.toUTCString().split(" ");
  return `${day}/${month}/${year}:${time} +0000`;
}

class IntegrationTimeoutError extends Error {
  override name = "IntegrationTimeoutError";
}

async function withTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new IntegrationTimeoutError(
            `the API handler did not answer within ${INTEGRATION_TIMEOUT_MS / 1000} seconds`,
          ),
        ),
      INTEGRATION_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function writeResult(response: ServerResponse, result: APIGatewayProxyResult): void {
  if (
    typeof result !== "object" ||
    result === null ||
    !Number.isInteger(result.statusCode) ||
    (result.body !== undefined && result.body !== null && typeof result.body !== "string")
  ) {
    throw new Error("malformed Lambda proxy response: statusCode and a string body are required");
  }
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    response.setHeader(name, String(value));
  }
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) {
    response.setHeader(name, values.map(String));
  }
  const body = result.body ?? "";
  response.statusCode = result.statusCode;
  response.end(result.isBase64Encoded ? Buffer.from(body, "base64") : body);
}

function writeError(response: ServerResponse, error: GatewayError): void {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  for (const [name, value] of Object.entries(error.headers)) response.setHeader(name, value);
  response.setHeader("content-type", "application/json");
  response.statusCode = error.status;
  response.end(body);
}
