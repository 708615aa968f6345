import { request as httpRequest } from "node:http";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, SQSBatchResponse } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { MAX_GATEWAY_BODY_BYTES, startApiGateway } from "#infra/local/api-gateway";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";

type Api = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

const noBatchFailures = async (): Promise<SQSBatchResponse> => ({ batchItemFailures: [] });

describe("local API gateway", () => {
  let runtime: LocalRuntime;
  let events: APIGatewayProxyEvent[];
  let answer: Api;

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: "local-api-",
      logLevel: "SILENT",
      handlers: {
        api: async (event) => {
          events.push(event);
          return answer(event);
        },
        engine: noBatchFailures,
        deliver: noBatchFailures,
      },
    });
  });

  afterAll(async () => {
    await runtime?.stop();
  });

  beforeEach(() => {
    events = [];
    answer = async () => ({ statusCode: 200, body: "{}" });
  });

  it("turns a request into a REST API proxy event", async () => {
    // Prepare
    const url = `${runtime.apiUrl}/objects/contacts/ada%20lovelace?tag=a&tag=b&page=2`;

    // Act
    await fetch(url, { headers: { "X-Trace-Id": "trace-1", Accept: "application/json" } });

    // Assess
    expect(events).toHaveLength(1);
    const [event] = events as [APIGatewayProxyEvent];
    expect(event.httpMethod).toBe("GET");
    expect(event.resource).toBe("/objects/{objectType}/{objectId}");
    expect(event.path).toBe("/objects/contacts/ada%20lovelace");
    expect(event.pathParameters).toEqual({ objectType: "contacts", objectId: "ada lovelace" });
    expect(event.queryStringParameters).toEqual({ tag: "b", page: "2" });
    expect(event.multiValueQueryStringParameters).toEqual({ tag: ["a", "b"], page: ["2"] });
    expect(event.headers["X-Trace-Id"] ?? event.headers["x-trace-id"]).toBe("trace-1");
    expect(event.multiValueHeaders.accept ?? event.multiValueHeaders.Accept).toEqual([
      "application/json",
    ]);
    expect(event.body).toBeNull();
    expect(event.isBase64Encoded).toBe(false);
    expect(event.requestContext).toMatchObject({
      stage: "local",
      path: "/objects/contacts/ada%20lovelace",
      httpMethod: "GET",
      resourcePath: "/objects/{objectType}/{objectId}",
      identity: { sourceIp: "127.0.0.1" },
    });
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("passes a parameter or header named after an object's built-in member like any other", async () => {
    // Prepare
    const url = `${runtime.apiUrl}/health?constructor=a&__proto__=b&toString=c&toString=d`;

    // Act
    const response = await fetch(url, {
      headers: [
        ["constructor", "e"],
        ["toString", "f"],
      ],
    });

    // Assess
    expect(response.status).toBe(200);
    const [event] = events as [APIGatewayProxyEvent];
    expect(Object.entries(event.queryStringParameters ?? {})).toEqual([
      ["constructor", "a"],
      ["__proto__", "b"],
      ["toString", "d"],
    ]);
    expect(Object.hasOwn(event.multiValueQueryStringParameters ?? {}, "__proto__")).toBe(true);
    expect(event.multiValueQueryStringParameters?.toString).toEqual(["c", "d"]);
    expect(event.headers.constructor).toBe("e");
    expect(event.multiValueHeaders.constructor).toEqual(["e"]);
    expect(event.multiValueHeaders.tostring ?? event.multiValueHeaders.toString).toEqual(["f"]);
  });

  it("passes the body as a UTF-8 string and writes the handler's result back", async () => {
    // Prepare
    const payload = JSON.stringify({ name: "Zoë's app ✓" });
    answer = async (event) => ({
      statusCode: 201,
      headers: { "content-type": "application/json", "x-echo": event.pathParameters?.appId ?? "" },
      body: event.body ?? "",
    });

    // Act
    const response = await fetch(`${runtime.apiUrl}/apps`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: payload,
    });

    // Assess
    expect(response.status).toBe(201);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.text()).toBe(payload);
    expect(events[0]?.body).toBe(payload);
    expect(events[0]?.resource).toBe("/apps");
    expect(events[0]?.pathParameters).toBeNull();
  });

  it("answers 404 in the API's error shape for a path no route matches", async () => {
    // Act
    const response = await fetch(`${runtime.apiUrl}/nowhere/at/all`);

    // Assess
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { code: "not_found", message: expect.stringContaining("/nowhere/at/all") },
    });
    expect(events).toHaveLength(0);
  });

  it("answers 405 with the allowed methods for a known path and a wrong method", async () => {
    // Act
    const response = await fetch(`${runtime.apiUrl}/apps/app-1`, { method: "DELETE" });

    // Assess
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET");
    expect(await response.json()).toEqual({
      error: { code: "method_not_allowed", message: expect.stringContaining("DELETE") },
    });
    expect(events).toHaveLength(0);
  });

  it("answers 413 at once when the declared body is over API Gateway's 10 MB", async () => {
    // Act
    const { status, body } = await sendWithoutFinishing(runtime.apiUrl, {
      "content-length": String(MAX_GATEWAY_BODY_BYTES + 1),
    });

    // Assess
    expect(status).toBe(413);
    expect(JSON.parse(body)).toEqual({
      error: { code: "payload_too_large", message: expect.any(String) },
    });
    expect(events).toHaveLength(0);
  });

  it("answers 413 once a streamed body passes 10 MB, without waiting for its end", async () => {
    // Act
    const { status, body, sentBytes } = await sendWithoutFinishing(runtime.apiUrl, {
      "transfer-encoding": "chunked",
    });

    // Assess
    expect(status).toBe(413);
    expect(JSON.parse(body).error.code).toBe("payload_too_large");
    expect(sentBytes).toBeGreaterThan(MAX_GATEWAY_BODY_BYTES);
    expect(events).toHaveLength(0);
  });

  it("answers 502 without details when the handler throws", async () => {
    // Prepare
    answer = async () => {
      throw new Error("secret internals");
    };

    // Act
    const response = await fetch(`${runtime.apiUrl}/health`);

    // Assess
    expect(response.status).toBe(502);
    const text = await response.text();
    expect(JSON.parse(text).error.code).toBe("bad_gateway");
    expect(text).not.toContain("secret internals");
  });
});

describe("local API gateway routing", () => {
  it("prefers a literal segment over a path parameter", async () => {
    // Prepare
    const resources: string[] = [];
    const gateway = await startApiGateway({
      routes: [
        { method: "GET", path: "/things/{thingId}" },
        { method: "GET", path: "/things/special" },
      ],
      handler: async (event) => {
        resources.push(event.resource);
        return { statusCode: 204, body: "" };
      },
    });

    // Act
    await fetch(`${gateway.url}/things/special`);
    await fetch(`${gateway.url}/things/other`);
    await gateway.stop();

    // Assess
    expect(resources).toEqual(["/things/special", "/things/{thingId}"]);
  });
});

/**
 * POSTs to /apps, streaming 64 KiB chunks until the server answers (or 12 MB are sent), and
 * returns the answer with the number of body bytes written.
 */
function sendWithoutFinishing(
  baseUrl: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; sentBytes: number }> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    let sentBytes = 0;
    let answered = false;
    const request = httpRequest(`${baseUrl}/apps`, { method: "POST", headers }, (response) => {
      answered = true;
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (text: string) => {
        body += text;
      });
      response.on("end", () => {
        request.destroy();
        resolve({ status: response.statusCode ?? 0, body, sentBytes });
      });
    });
    request.on("error", (error) => {
      if (!answered) reject(error);
    });
    const pump = () => {
      while (!answered && sentBytes < 12 * 1024 * 1024) {
        sentBytes += chunk.length;
        if (!request.write(chunk)) {
          request.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
}
