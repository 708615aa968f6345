import { randomUUID } from "node:crypto";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { lambdaContext } from "#infra/local/lambda-context";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";

type ApiHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** The stage of the API on AWS; HTTP APIs put it in front of `path`, not of `resource`. */
const STAGE = "v1";

interface Request {
  readonly method: string;
  /** The route's path as declared, or undefined for the catch-all `$default` route. */
  readonly routePath?: string;
  readonly path: string;
  readonly pathParameters?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
}

/**
 * An event as an HTTP API's Lambda proxy integration with payload format 1.0 sends it, after
 * AWS's own example: header names lowercased, the stage in `path` but not in `resource`, the
 * route's path (or, for `$default`, the request's) in `resource`, no REST-only fields.
 */
function httpApiEvent(request: Request): APIGatewayProxyEvent {
  const headers: Record<string, string> = {
    host: "abc123.execute-api.eu-west-1.amazonaws.com",
    "user-agent": "aws-sdk-js/3",
    "x-amz-date": "20250101T000000Z",
    ...request.headers,
  };
  const now = Date.now();
  const event = {
    version: "1.0",
    resource: request.routePath ?? request.path,
    path: `/${STAGE}${request.path}`,
    httpMethod: request.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    requestContext: {
      accountId: "123456789012",
      apiId: "abc123",
      authorizer: { claims: null, scopes: null },
      domainName: "abc123.execute-api.eu-west-1.amazonaws.com",
      domainPrefix: "abc123",
      extendedRequestId: "Ab1CdEfGhIjKlM=",
      httpMethod: request.method,
      identity: {
        accessKey: "AKIAEXAMPLE",
        accountId: "123456789012",
        caller: "AIDAEXAMPLE",
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: "198.51.100.7",
        user: "AIDAEXAMPLE",
        userAgent: "aws-sdk-js/3",
        userArn: "arn:aws:iam::123456789012:user/ci",
        apiKey: null,
        apiKeyId: null,
        clientCert: null,
      },
      path: `/${STAGE}${request.path}`,
      protocol: "HTTP/1.1",
      requestId: "Ab1CdEfGhIjKlM=",
      requestTime: "01/Jan/2025:00:00:00 +0000",
      requestTimeEpoch: now,
      resourceId: null,
      resourcePath: request.routePath ?? request.path,
      stage: STAGE,
    },
    pathParameters: request.pathParameters ?? null,
    stageVariables: null,
    body: request.body ?? null,
    isBase64Encoded: request.isBase64Encoded ?? false,
  };
  return event as unknown as APIGatewayProxyEvent;
}

describe("the API handler, given HTTP API payload format 1.0 events", () => {
  let runtime: LocalRuntime;
  let handler: ApiHandler;

  const call = async (request: Request) => {
    const result = await handler(
      httpApiEvent(request),
      lambdaContext("api", Date.now() + 29_000, randomUUID()),
    );
    return { statusCode: result.statusCode, body: JSON.parse(result.body || "null") };
  };

  beforeAll(async () => {
    // The runtime sets the functions' environment and imports the real handlers with it.
    runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: "http-api-",
      logLevel: "SILENT",
    });
    ({ handler } = (await import("../../functions/api/handler.ts")) as { handler: ApiHandler });
  });

  afterAll(async () => {
    await runtime?.stop();
  });

  it("routes by the route's path, whatever stage the request path carries", async () => {
    // Act
    const reply = await call({ method: "GET", routePath: "/health", path: "/health" });

    // Assess
    expect(reply).toEqual({ statusCode: 200, body: { ok: true } });
  });

  it("reads a JSON body under a lowercased content-type and path parameters", async () => {
    // Prepare
    const created = await call({
      method: "POST",
      routePath: "/apps",
      path: "/apps",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "CRM" }),
    });
    const appId = String(created.body.appId);

    // Act
    const read = await call({
      method: "GET",
      routePath: "/apps/{appId}",
      path: `/apps/${appId}`,
      pathParameters: { appId },
    });

    // Assess
    expect(created.statusCode).toBe(201);
    expect(read).toEqual({ statusCode: 200, body: { appId, name: "CRM" } });
  });

  it("decodes a base64 body, as HTTP APIs send non-text types, and judges it by its type", async () => {
    // Act
    const reply = await call({
      method: "POST",
      routePath: "/apps",
      path: "/apps",
      headers: { "content-type": "application/octet-stream" },
      body: Buffer.from(JSON.stringify({ name: "CRM" })).toString("base64"),
      isBase64Encoded: true,
    });

    // Assess
    expect(reply.statusCode).toBe(415);
    expect(reply.body.error.code).toBe("unsupported_media_type");
  });

  it("answers a request the catch-all route caught with a 404 in the API's error shape", async () => {
    // Act
    const unknownPath = await call({ method: "GET", path: "/nowhere" });
    const unknownMethod = await call({ method: "PATCH", path: "/health" });

    // Assess
    for (const reply of [unknownPath, unknownMethod]) {
      expect(reply.statusCode).toBe(404);
      expect(reply.body).toEqual({ error: { code: "not_found", message: expect.any(String) } });
    }
  });
});
