import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import { startReceiver, type TestReceiver } from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

/** Deliveries queued ahead to a receiver that never answers. */
const HANGING_DELIVERIES = 30;
const HEALTHY_DELIVERIES = 10;

let system: LocalSystem;
let call: LocalSystem["call"];
/** Accepts every request and never answers it. */
let hanging: TestReceiver;

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 0.001 });
  ({ call } = system);
  hanging = await startReceiver(system.certificate, () => ({ hang: true }));
});

afterAll(async () => {
  await hanging?.close();
  await system?.stop();
});

async function workflowTo(url: string) {
  const response = await call("POST", "/workflows", {
    name: `to ${url}`,
    objectType: "contacts",
    actions: [{ type: "webhook", url }],
  });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

async function enrollContacts(workflowId: string, count: number, prefix: string) {
  await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const objectId = `${prefix}-${index}`;
      await call("PUT", `/objects/contacts/${objectId}`, { properties: { email: "a@b.c" } });
      const enrolled = await call("POST", `/workflows/${workflowId}/enrollments`, { objectId });
      expect(enrolled.status).toBe(202);
    }),
  );
}

describe("a fair lane", () => {
  it("delivers to a healthy receiver while another receiver hangs on every request queued ahead of it", async () => {
    // Prepare
    const toHanging = await workflowTo(hanging.url("/never"));
    const toHealthy = await workflowTo(system.receiver.url("/healthy"));
    await enrollContacts(toHanging, HANGING_DELIVERIES, "held");
    await eventually(
      "the hanging receiver to hold requests",
      () => expect(hanging.requests.length).toBeGreaterThan(0),
      { timeoutMs: 60_000 },
    );

    // Act
    await enrollContacts(toHealthy, HEALTHY_DELIVERIES, "healthy");

    // Assess: every healthy delivery arrives long before the hanging requests time out (30 s)
    await eventually(
      "every healthy delivery to arrive",
      () => expect(system.receiver.requestsTo("/healthy")).toHaveLength(HEALTHY_DELIVERIES),
      { timeoutMs: 30_000 },
    );
    expect(hanging.requests.length).toBeLessThanOrEqual(4);
  }, 120_000);
});
