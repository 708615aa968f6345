import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];

beforeAll(async () => {
  system = await startLocalSystem({
    timeScale: 0.001,
    fallback: { status: 200, body: '{"ok":true}', headers: { "content-type": "application/json" } },
  });
  ({ call, receiver, answers } = system);
});

afterAll(async () => {
  await system?.stop();
});

async function completed(enrollmentId: string) {
  return eventually(`enrollment ${enrollmentId} to complete`, async () => {
    const { body } = await call("GET", `/enrollments/${enrollmentId}`);
    expect(body.status).toBe("completed");
    return body;
  });
}

describe("the HTTP API", () => {
  it("answers health checks", async () => {
    expect(await call("GET", "/health")).toEqual({ status: 200, body: { ok: true } });
  });

  it("shows an app's secret once, at registration, and never again", async () => {
    // Act
    const created = await call("POST", "/apps", { name: "Receiver", clientSecret: "s".repeat(32) });
    const read = await call("GET", `/apps/${created.body.appId}`);

    // Assess
    expect(created.status).toBe(201);
    expect(created.body.clientSecret).toBe("s".repeat(32));
    expect(read).toEqual({ status: 200, body: { appId: created.body.appId, name: "Receiver" } });
  });

  it("replaces, lists and deletes workflows, keeping action ids and hidden API keys across an edit", async () => {
    // Prepare
    const definition = {
      name: "Keyed",
      objectType: "companies",
      actions: [
        {
          type: "webhook",
          url: receiver.url("/keyed?team=a%20b"),
          authentication: { type: "apiKey", name: "api_key", location: "query", value: "k-123" },
        },
      ],
    };
    const created = await call("POST", "/workflows", definition);
    await call("PUT", "/objects/companies/c1", { properties: { name: "Acme" } });

    // Act
    const shown = await call("GET", `/workflows/${created.body.id}`);
    const { id: _id, createdAt: _c, updatedAt: _u, ...editable } = shown.body;
    const edited = await call("PUT", `/workflows/${created.body.id}`, {
      ...editable,
      name: "Keyed, renamed",
      actions: editable.actions.map(({ id: _actionId, ...action }: { id: string }) => action),
    });
    const tested = await call(
      "POST",
      `/workflows/${created.body.id}/actions/${created.body.actions[0].id}/test`,
      {
        objectId: "c1",
      },
    );
    const listed = await call("GET", "/workflows");
    const deleted = await call("DELETE", `/workflows/${created.body.id}`);
    const gone = await call("GET", `/workflows/${created.body.id}`);

    // Assess
    expect(shown.body.actions[0].authentication.value).toBe("***");
    expect(edited.status).toBe(200);
    expect(edited.body.actions[0].id).toBe(created.body.actions[0].id);
    expect(receiver.requestsTo("/keyed")[0]?.url).toBe("/keyed?team=a%20b&api_key=k-123");
    expect(tested.body.request.url).toBe(receiver.url("/keyed?team=a%20b&api_key=***"));
    expect(tested.body.response.statusCode).toBe(200);
    expect(tested.body.error).toBeNull();
    expect(listed.body.workflows.map((w: { name: string }) => w.name)).toContain("Keyed, renamed");
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
  });

  it("retries a failed delivery by hand: one attempt, and the delivery succeeds", async () => {
    // Prepare
    let up = false;
    answers.set("/later", () => (up ? { status: 200 } : { status: 410 }));
    const workflow = await call("POST", "/workflows", {
      name: "Later",
      objectType: "tickets",
      actions: [{ type: "webhook", url: receiver.url("/later") }],
    });
    await call("PUT", "/objects/tickets/t1", { properties: { subject: "Help" } });
    const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
      objectId: "t1",
    });
    const failed = (await completed(enrolled.body.enrollmentId)).deliveries[0];
    up = true;

    // Act
    const retried = await call("POST", `/deliveries/${failed.deliveryId}/retry`);
    const delivery = await eventually("the manual attempt", async () => {
      const { body } = await call("GET", `/deliveries/${failed.deliveryId}`);
      expect(body.status).toBe("succeeded");
      return body;
    });
    const again = await call("POST", `/deliveries/${failed.deliveryId}/retry`);

    // Assess
    expect(failed.status).toBe("failed");
    expect(retried.status).toBe(202);
    expect(delivery.attempts.map((a: { statusCode: number }) => a.statusCode)).toEqual([410, 200]);
    expect(receiver.requestsTo("/later").map((r) => r.headers["x-delivery-attempt"])).toEqual([
      "1",
      "2",
    ]);
    expect(again.status).toBe(409);
  });
});

describe("bad input", () => {
  it("gets the right 4xx with the error shape on every route, and leaves state unchanged", async () => {
    // Prepare
    const app = await call("POST", "/apps", { name: "Signer" });
    await call("PUT", "/objects/contacts/7", { properties: { email: "a@example.com" } });
    const workflow = await call("POST", "/workflows", {
      name: "Valid",
      objectType: "contacts",
      actions: [
        { type: "setProperty", property: "x", value: "1" },
        { type: "delay", seconds: 3600 },
      ],
    });
    const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
      objectId: "7",
    });
    // A custom body naming one 64 KiB property twenty times would be over 1 MiB.
    await call("PUT", "/objects/contacts/8", { properties: { note: "n".repeat(65_536) } });
    const bigBody = await call("POST", "/workflows", {
      name: "Big body",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          url: "https://127.0.0.1:1/never",
          body: {
            type: "custom",
            fields: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, property: "note" })),
          },
        },
      ],
    });
    await eventually("the enrollment to wait at its delay", async () => {
      const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
      expect(body.status).toBe("waiting");
    });
    const before = {
      workflows: (await call("GET", "/workflows")).body,
      record: (await call("GET", "/objects/contacts/7")).body,
      app: (await call("GET", `/apps/${app.body.appId}`)).body,
    };
    const w = workflow.body.id;
    const huge = JSON.stringify({ properties: { big: "x".repeat(1024 * 1024) } });
    const cases: Array<[string, string, unknown, number, string?, Record<string, string>?]> = [
      ["POST", "/apps", {}, 400, "name"],
      ["POST", "/apps", { name: "x", clientSecret: "short" }, 400, "clientSecret"],
      ["POST", "/apps", "{not json", 400, "body"],
      ["POST", "/apps", '{"name":"x"}', 415, undefined, { "content-type": "text/plain" }],
      ["GET", "/apps/does-not-exist", undefined, 404],
      ["GET", "/apps/bad%20id", undefined, 400, "appId"],
      ["PUT", "/objects/widgets/1", { properties: {} }, 400, "objectType"],
      [
        "PUT",
        "/objects/contacts/7",
        { properties: { email: { nested: true } } },
        400,
        "properties.email",
      ],
      ["PUT", "/objects/contacts/7", { properties: {}, extra: 1 }, 400, "extra"],
      ["PUT", "/objects/contacts/7", '{"properties":{"x":"\\ud800"}}', 400, "body"],
      ["PUT", "/objects/contacts/7", huge, 413],
      ["GET", "/objects/contacts/missing", undefined, 404],
      [
        "POST",
        "/workflows",
        {
          name: "x",
          objectType: "contacts",
          actions: [{ type: "webhook", url: "http://example.com" }],
        },
        400,
        "actions[0].url",
      ],
      [
        "POST",
        "/workflows",
        {
          name: "x",
          objectType: "contacts",
          actions: [{ type: "webhook", url: "https://example.com", method: "PATCH" }],
        },
        400,
        "actions[0].method",
      ],
      [
        "POST",
        "/workflows",
        {
          name: "x",
          objectType: "contacts",
          actions: [
            {
              type: "webhook",
              url: "https://example.com",
              authentication: { type: "signature", appId: "nope" },
            },
          ],
        },
        400,
        "actions[0].authentication.appId",
      ],
      ["POST", "/workflows", { name: "x", objectType: "contacts", actions: [] }, 400, "actions"],
      [
        "POST",
        "/workflows",
        { name: "x", objectType: "contacts", actions: [{ type: "delay", seconds: -1 }] },
        400,
        "actions[0].seconds",
      ],
      ["GET", "/workflows/unknown", undefined, 404],
      [
        "PUT",
        "/workflows/unknown",
        { name: "x", objectType: "contacts", actions: [{ type: "delay", seconds: 1 }] },
        404,
      ],
      [
        "PUT",
        `/workflows/${w}`,
        { name: "", objectType: "contacts", actions: [{ type: "delay", seconds: 1 }] },
        400,
        "name",
      ],
      ["DELETE", "/workflows/unknown", undefined, 404],
      ["POST", "/workflows/unknown/enrollments", { objectId: "7" }, 404],
      ["POST", `/workflows/${w}/enrollments`, { objectId: "missing" }, 404],
      ["POST", `/workflows/${w}/enrollments`, { objectId: "7" }, 409],
      ["POST", `/workflows/${w}/enrollments`, {}, 400, "objectId"],
      [
        "POST",
        `/workflows/${w}/actions/${workflow.body.actions[0].id}/test`,
        { objectId: "7" },
        400,
        "actionId",
      ],
      ["POST", `/workflows/${w}/actions/unknown/test`, { objectId: "7" }, 404],
      [
        "POST",
        `/workflows/${bigBody.body.id}/actions/${bigBody.body.actions[0].id}/test`,
        { objectId: "8" },
        413,
      ],
      ["GET", "/enrollments/unknown", undefined, 404],
      ["GET", "/deliveries/unknown", undefined, 404],
      ["POST", "/deliveries/unknown/retry", undefined, 404],
      ["GET", "/nowhere", undefined, 404],
      ["PATCH", "/workflows", {}, 405],
    ];

    // Act
    const results: Array<{ status: number; body: any }> = [];
    for (const [method, path, body, , , headers] of cases)
      results.push(await call(method, path, body, headers));

    // Assess
    cases.forEach(([method, path, , status, field], index) => {
      const { status: got, body } = results[index] as { status: number; body: any };
      expect({ route: `${method} ${path}`, status: got }).toEqual({
        route: `${method} ${path}`,
        status,
      });
      expect(typeof body.error.code).toBe("string");
      expect(typeof body.error.message).toBe("string");
      expect(body.error.message).not.toMatch(/\n\s+at /);
      if (field) expect(body.error.message).toContain(field);
    });
    expect((await call("GET", "/workflows")).body).toEqual(before.workflows);
    expect((await call("GET", "/objects/contacts/7")).body).toEqual(before.record);
    expect((await call("GET", `/apps/${app.body.appId}`)).body).toEqual(before.app);
    expect((await call("GET", `/enrollments/${enrolled.body.enrollmentId}`)).status).toBe(200);
  });
});
