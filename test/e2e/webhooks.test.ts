import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyV2, verifyV3 } from "#domain/signatures";
import { eventually } from "#test/eventually";
import type { ReceivedRequest } from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

/** 1 minute of the retry policy takes 60 ms here. */
const TIME_SCALE = 0.001;
const MINUTE = 60_000;

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: TIME_SCALE, visibilityTimeoutSeconds: 2 });
  ({ call, receiver, answers } = system);
});

afterAll(async () => {
  await system?.stop();
});

/** A contact with some history: email set twice, and a first name. */
async function contactWithHistory() {
  const id = String(Math.floor(Math.random() * 1e9));
  await call("PUT", `/objects/contacts/${id}`, {
    properties: { email: "old@example.com", firstname: "Ada" },
  });
  await call("PUT", `/objects/contacts/${id}`, { properties: { email: "ada@example.com" } });
  return id;
}

/** A workflow: a webhook to `path` on the receiver, then a setProperty that proves it went on. */
async function webhookWorkflow(path: string, authentication?: unknown) {
  const response = await call("POST", "/workflows", {
    name: `to ${path}`,
    objectType: "contacts",
    actions: [
      { type: "webhook", url: receiver.url(path), ...(authentication ? { authentication } : {}) },
      { type: "setProperty", property: "after_webhook", value: "yes" },
    ],
  });
  expect(response.status).toBe(201);
  return response.body as { id: string; actions: { id: string }[] };
}

async function enrollAndFinish(workflowId: string, objectId: string) {
  const enrolled = await call("POST", `/workflows/${workflowId}/enrollments`, { objectId });
  expect(enrolled.status).toBe(202);
  return eventually(`enrollment ${enrolled.body.enrollmentId} to complete`, async () => {
    const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
    expect(body.status).toBe("completed");
    return body;
  });
}

const gaps = (attempts: { scheduledAt: string }[]) =>
  attempts
    .slice(1)
    .map(
      (attempt, index) =>
        Date.parse(attempt.scheduledAt) - Date.parse(attempts[index]?.scheduledAt ?? ""),
    );

describe("webhook deliveries end to end", () => {
  it("sends a signed contact webhook whose v2 and v3 signatures verify and whose body has the history", async () => {
    // Prepare
    const app = await call("POST", "/apps", { name: "CRM sync" });
    const workflow = await webhookWorkflow("/signed", { type: "signature", appId: app.body.appId });
    const contactId = await contactWithHistory();

    // Act
    const enrollment = await enrollAndFinish(workflow.id, contactId);

    // Assess
    const [request] = receiver.requestsTo("/signed") as [ReceivedRequest];
    const uri = receiver.url(request.url);
    const headers = request.headers as Record<string, string>;
    const secret = app.body.clientSecret as string;
    expect(headers["x-hubspot-signature-version"]).toBe("v2");
    expect(
      verifyV2({
        clientSecret: secret,
        method: "POST",
        uri,
        body: request.body,
        signature: headers["x-hubspot-signature"] ?? "",
      }),
    ).toBe(true);
    expect(
      verifyV3({
        clientSecret: secret,
        method: "POST",
        uri,
        body: request.body,
        timestamp: headers["x-hubspot-request-timestamp"] ?? "",
        signature: headers["x-hubspot-signature-v3"] ?? "",
      }),
    ).toBe(true);
    expect(
      verifyV2({
        clientSecret: "wrong",
        method: "POST",
        uri,
        body: request.body,
        signature: headers["x-hubspot-signature"] ?? "",
      }),
    ).toBe(false);
    const payload = JSON.parse(request.body);
    expect(payload.vid).toBe(Number(contactId));
    expect(payload["is-contact"]).toBe(true);
    expect(payload.properties.email.value).toBe("ada@example.com");
    expect(payload.properties.email.versions.map((v: { value: string }) => v.value)).toEqual([
      "ada@example.com",
      "old@example.com",
    ]);
    expect(headers["content-type"]).toBe("application/json");
    expect(headers["user-agent"]).toMatch(/^workflow-webhooks\/\d+\.\d+\.\d+/);
    expect(headers["x-delivery-id"]).toBe(enrollment.deliveries[0].deliveryId);
    expect(headers["x-delivery-attempt"]).toBe("1");
    const record = await call("GET", `/objects/contacts/${contactId}`);
    expect(record.body.properties.after_webhook.value).toBe("yes");
    expect(JSON.parse(request.body).properties.after_webhook).toBeUndefined();
  });

  it("retries a receiver that fails twice with 503: three attempts one then two minutes apart, then goes on", async () => {
    // Prepare
    answers.set("/flaky", (previous) => (previous < 2 ? { status: 503 } : { status: 200 }));
    const workflow = await webhookWorkflow("/flaky");
    const contactId = await contactWithHistory();

    // Act
    const enrollment = await enrollAndFinish(workflow.id, contactId);

    // Assess
    const [delivery] = enrollment.deliveries;
    expect(delivery.status).toBe("succeeded");
    expect(delivery.attempts.map((a: { statusCode: number }) => a.statusCode)).toEqual([
      503, 503, 200,
    ]);
    const [first, second] = gaps(delivery.attempts) as [number, number];
    expect(first).toBeGreaterThanOrEqual(1 * MINUTE);
    expect(first).toBeLessThanOrEqual(1.1 * MINUTE);
    expect(second).toBeGreaterThanOrEqual(2 * MINUTE);
    expect(second).toBeLessThanOrEqual(2.2 * MINUTE);
    const requests = receiver.requestsTo("/flaky");
    expect(requests.map((r) => r.headers["x-delivery-attempt"])).toEqual(["1", "2", "3"]);
    expect(new Set(requests.map((r) => r.headers["x-delivery-id"])).size).toBe(1);
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    expect(enrollment.actions.map((a: { status: string }) => a.status)).toEqual([
      "succeeded",
      "succeeded",
    ]);
  });

  it("fails a delivery for good on 400 after one attempt, with the reason, and the enrollment goes on", async () => {
    // Prepare
    answers.set("/rejects", () => ({ status: 400, body: "bad payload" }));
    const workflow = await webhookWorkflow("/rejects");
    const contactId = await contactWithHistory();

    // Act
    const enrollment = await enrollAndFinish(workflow.id, contactId);

    // Assess
    const [delivery] = enrollment.deliveries;
    expect(delivery.status).toBe("failed");
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.failureReason).toMatch(/400/);
    expect(delivery.attempts[0].responseBody).toBe("bad payload");
    expect(enrollment.actions.map((a: { status: string }) => a.status)).toEqual([
      "failed",
      "succeeded",
    ]);
    const record = await call("GET", `/objects/contacts/${contactId}`);
    expect(record.body.properties.after_webhook.value).toBe("yes");
  });

  it("waits as long as a 429's Retry-After asks before the next attempt", async () => {
    // Prepare
    answers.set("/busy", (previous) =>
      previous === 0 ? { status: 429, headers: { "Retry-After": "300" } } : { status: 204 },
    );
    const workflow = await webhookWorkflow("/busy");
    const contactId = await contactWithHistory();

    // Act
    const enrollment = await enrollAndFinish(workflow.id, contactId);

    // Assess
    const [delivery] = enrollment.deliveries;
    expect(delivery.attempts.map((a: { statusCode: number }) => a.statusCode)).toEqual([429, 204]);
    expect(gaps(delivery.attempts)).toEqual([300_000]);
  });

  it("keeps the lanes apart: while one workflow's receiver hangs, another workflow's steps complete", async () => {
    // Prepare
    answers.set("/hangs", () => ({ hang: true }));
    const hanging = await webhookWorkflow("/hangs");
    const busy = await call("POST", "/workflows", {
      name: "tag the lead",
      objectType: "contacts",
      actions: [
        { type: "setProperty", property: "stage", value: "lead" },
        { type: "setProperty", property: "owner", value: "ada" },
        { type: "setProperty", property: "score", value: "10" },
      ],
    });
    const [first, second] = [await contactWithHistory(), await contactWithHistory()];
    await call("POST", `/workflows/${hanging.id}/enrollments`, { objectId: first });
    await eventually("the hanging request", () =>
      expect(receiver.requestsTo("/hangs")).not.toHaveLength(0),
    );

    // Act
    const done = await enrollAndFinish(busy.body.id, second);

    // Assess: the other workflow finished while the webhook is still waiting for its answer
    expect(done.actions.map((a: { status: string }) => a.status)).toEqual([
      "succeeded",
      "succeeded",
      "succeeded",
    ]);
    expect(receiver.requestsTo("/hangs")).toHaveLength(1);
    const record = await call("GET", `/objects/contacts/${second}`);
    expect(record.body.properties.score.value).toBe("10");
  });
});
