/**
 * Every kind of signed request the running system sends (POST and GET, query strings with
 * encoded characters, scheduled attempts and test requests, during and after a secret rotation),
 * as a receiver gets it, checked by verifiers written by others: HubSpot's official Node client
 * and the Standard Webhooks library. Also the OpenAPI document the API serves.
 */
import SwaggerParser from "@apidevtools/swagger-parser";
import { Signature } from "@hubspot/api-client";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import type { ReceivedRequest } from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 0.001, visibilityTimeoutSeconds: 2 });
  ({ call, receiver } = system);
});

afterAll(async () => {
  await system?.stop();
});

/** The first enrollment of a fresh system loads the handlers; a busy machine makes that slow. */
const ENROLLMENT_TIMEOUT_MS = 60_000;

const whsec = (fill: number) => `whsec_${Buffer.alloc(32, fill).toString("base64")}`;

/** Receiver paths with query strings that carry percent-encoded and reserved characters. */
const targets = [
  { method: "POST", path: "/hs/post?source=workflow&q=a%26b%3Dc&t=10%3A30&path=%2Fx" },
  { method: "GET", path: "/hs/get?name=Zo%C3%AB+L&e=%3F&list=1,2" },
] as const;

async function contact() {
  const id = String(Math.floor(Math.random() * 1e9));
  await call("PUT", `/objects/contacts/${id}`, { properties: { email: "ada@example.com" } });
  await call("PUT", `/objects/contacts/${id}`, { properties: { firstname: "Zoë ✓" } });
  return id;
}

async function workflowTo(actions: object[]) {
  const response = await call("POST", "/workflows", {
    name: "verified elsewhere",
    objectType: "contacts",
    actions,
  });
  expect(response.status).toBe(201);
  return response.body as { id: string; actions: { id: string }[] };
}

async function enrollAndFinish(workflowId: string, objectId: string) {
  const enrolled = await call("POST", `/workflows/${workflowId}/enrollments`, { objectId });
  expect(enrolled.status).toBe(202);
  return eventually(
    `enrollment ${enrolled.body.enrollmentId} to complete`,
    async () => {
      const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
      expect(body.status).toBe("completed");
      return body;
    },
    { timeoutMs: ENROLLMENT_TIMEOUT_MS },
  );
}

const headerOf = (request: ReceivedRequest, name: string) => {
  const value = request.headers[name];
  if (typeof value !== "string") throw new Error(`no ${name} header`);
  return value;
};

/** HubSpot's client's verdict on one request, for v2 or v3, with `secret`, from `suffix` headers. */
function hubspotVerifies(
  request: ReceivedRequest,
  secret: string,
  version: "v2" | "v3",
  suffix = "",
): boolean {
  const common = {
    method: request.method,
    clientSecret: secret,
    requestBody: request.body,
    // The URL as the receiver was called on it: scheme, host and the raw path and query.
    url: receiver.url(request.url),
  };
  return version === "v2"
    ? Signature.isValid({
        ...common,
        signatureVersion: "v2",
        signature: headerOf(request, `x-hubspot-signature${suffix}`),
      })
    : Signature.isValid({
        ...common,
        signatureVersion: "v3",
        signature: headerOf(request, `x-hubspot-signature-v3${suffix}`),
        timestamp: Number(headerOf(request, "x-hubspot-request-timestamp")),
      });
}

function standardWebhooksVerifies(request: ReceivedRequest, secret: string): boolean {
  try {
    new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
}

describe("requests the system sends verify with independent verifiers", {
  timeout: ENROLLMENT_TIMEOUT_MS * 2,
}, () => {
  it("HubSpot's client verifies v2 and v3 of signed POST and GET deliveries, retried attempts included", async () => {
    // Prepare
    system.answers.set("/hs/post", (previous) => ({ status: previous === 0 ? 503 : 200 }));
    const app = await call("POST", "/apps", { name: "verified by HubSpot's client" });
    const secret = app.body.clientSecret as string;
    const workflow = await workflowTo(
      targets.map((target) => ({
        type: "webhook",
        method: target.method,
        url: receiver.url(target.path),
        authentication: { type: "signature", appId: app.body.appId },
      })),
    );

    // Act
    await enrollAndFinish(workflow.id, await contact());

    // Assess
    const requests = receiver.requestsTo("/hs/");
    expect(requests.map((r) => `${r.method} ${r.headers["x-delivery-attempt"]}`)).toEqual([
      "POST 1",
      "POST 2",
      "GET 1",
    ]);
    expect(requests.map((r) => r.url)).toEqual([targets[0].path, targets[0].path, targets[1].path]);
    for (const request of requests) {
      expect(hubspotVerifies(request, secret, "v2")).toBe(true);
      expect(hubspotVerifies(request, secret, "v3")).toBe(true);
      expect(hubspotVerifies(request, `${secret}x`, "v3")).toBe(false);
      expect(request.headers["x-hubspot-signature-previous"]).toBeUndefined();
    }
    expect(requests[2]?.body).toBe("");
  });

  it("after an app's secret is rotated, HubSpot's client verifies the new secret, and the old one in the -Previous headers", async () => {
    // Prepare
    const app = await call("POST", "/apps", { name: "rotating" });
    const oldSecret = app.body.clientSecret as string;
    const workflow = await workflowTo([
      {
        type: "webhook",
        url: receiver.url("/hs/rotated?x=%2F"),
        authentication: { type: "signature", appId: app.body.appId },
      },
    ]);
    const objectId = await contact();

    // Act
    const rotated = await call("POST", `/apps/${app.body.appId}/rotate-secret`, {});
    await enrollAndFinish(workflow.id, objectId);
    const tested = await call(
      "POST",
      `/workflows/${workflow.id}/actions/${workflow.actions[0]?.id}/test`,
      { objectId },
    );

    // Assess
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.clientSecret as string;
    expect(newSecret).not.toBe(oldSecret);
    const expiresIn = Date.parse(rotated.body.previousSecretExpiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(23.9 * 3600_000);
    expect(expiresIn).toBeLessThanOrEqual(24 * 3600_000);
    expect(tested.body.response.statusCode).toBe(200);
    const requests = receiver.requestsTo("/hs/rotated");
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      for (const version of ["v2", "v3"] as const) {
        expect(hubspotVerifies(request, newSecret, version)).toBe(true);
        expect(hubspotVerifies(request, oldSecret, version, "-previous")).toBe(true);
        expect(hubspotVerifies(request, oldSecret, version)).toBe(false);
      }
    }
    const read = await call("GET", `/apps/${app.body.appId}`);
    expect(JSON.stringify(read.body)).not.toContain(oldSecret);
    expect(JSON.stringify(read.body)).not.toContain(newSecret);
  });

  it("refuses to rotate an app's secret to the same secret, or an app that does not exist", async () => {
    // Prepare
    const app = await call("POST", "/apps", { name: "same", clientSecret: "s".repeat(20) });

    // Act
    const same = await call("POST", `/apps/${app.body.appId}/rotate-secret`, {
      clientSecret: "s".repeat(20),
    });
    const missing = await call("POST", "/apps/no-such-app/rotate-secret", {});

    // Assess
    expect(same.status).toBe(409);
    expect(missing.status).toBe(404);
  });

  it("the Standard Webhooks library verifies POST and GET deliveries; webhook-id is the delivery id", async () => {
    // Prepare
    const secret = whsec(0x11);
    const workflow = await workflowTo(
      [
        { method: "POST", path: "/sw/post?q=a%26b" },
        { method: "GET", path: "/sw/get?n=Zo%C3%AB" },
      ].map((target) => ({
        type: "webhook",
        method: target.method,
        url: receiver.url(target.path),
        authentication: { type: "standardWebhooks", secret },
      })),
    );

    // Act
    const enrollment = await enrollAndFinish(workflow.id, await contact());

    // Assess
    const requests = receiver.requestsTo("/sw/");
    expect(requests).toHaveLength(2);
    for (const [index, request] of requests.entries()) {
      expect(standardWebhooksVerifies(request, secret)).toBe(true);
      expect(standardWebhooksVerifies(request, whsec(0x12))).toBe(false);
      expect(headerOf(request, "webhook-id")).toBe(enrollment.deliveries[index].deliveryId);
      expect(headerOf(request, "webhook-id")).toBe(headerOf(request, "x-delivery-id"));
      expect(Number(headerOf(request, "webhook-timestamp"))).toBeCloseTo(Date.now() / 1000, -2);
    }
    const shown = await call("GET", `/workflows/${workflow.id}`);
    expect(shown.body.actions[0].authentication).toEqual({
      type: "standardWebhooks",
      secret: "***",
    });
    expect(JSON.stringify(shown.body)).not.toContain(secret.slice(6));
  });

  it("a new Standard Webhooks secret rotates: both verify for a day; *** keeps the secrets as they are", async () => {
    // Prepare
    const [oldSecret, newSecret] = [whsec(0x21), whsec(0x22)];
    const action = (secret: string) => ({
      type: "webhook",
      url: receiver.url("/sw/rotated"),
      authentication: { type: "standardWebhooks", secret },
    });
    const workflow = await workflowTo([action(oldSecret)]);
    const objectId = await contact();
    const test = () =>
      call("POST", `/workflows/${workflow.id}/actions/${workflow.actions[0]?.id}/test`, {
        objectId,
      });

    // Act
    const replaced = await call("PUT", `/workflows/${workflow.id}`, {
      name: "rotated",
      objectType: "contacts",
      actions: [action(newSecret)],
    });
    await test();
    const kept = await call("PUT", `/workflows/${workflow.id}`, {
      name: "kept",
      objectType: "contacts",
      actions: [action("***")],
    });
    await test();

    // Assess
    expect(replaced.status).toBe(200);
    expect(kept.status).toBe(200);
    const requests = receiver.requestsTo("/sw/rotated");
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(headerOf(request, "webhook-signature").split(" ")).toHaveLength(2);
      expect(standardWebhooksVerifies(request, newSecret)).toBe(true);
      expect(standardWebhooksVerifies(request, oldSecret)).toBe(true);
    }
  });

  it("refuses a hidden Standard Webhooks secret where there is none to keep", async () => {
    // Act
    const created = await call("POST", "/workflows", {
      name: "hidden",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          url: receiver.url("/sw/hidden"),
          authentication: { type: "standardWebhooks", secret: "***" },
        },
      ],
    });

    // Assess
    expect(created.status).toBe(400);
    expect(created.body.error.message).toMatch(/^actions\[0\]\.authentication\.secret: is hidden/);
  });
});

describe("the OpenAPI document the API serves", () => {
  it("is valid OpenAPI 3.1, names the URL it was fetched from, and lists every route", async () => {
    // Act
    const response = await call("GET", "/openapi.json");

    // Assess
    expect(response.status).toBe(200);
    expect(response.body.servers).toEqual([{ url: system.runtime.apiUrl }]);
    expect(response.body.paths["/apps/{appId}/rotate-secret"].post.operationId).toBe(
      "rotateAppSecret",
    );
    await expect(SwaggerParser.validate(response.body)).resolves.toBeDefined();
  });
});
