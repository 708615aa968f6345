import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

/** 8 hours of the retry policy take under 0.3 s here, so three days take about 3 s. */
const TIME_SCALE = 0.00001;
const HOUR = 3600_000;

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];

beforeAll(async () => {
  system = await startLocalSystem({
    timeScale: TIME_SCALE,
    fallback: { status: 500, body: "down" },
  });
  ({ call, receiver } = system);
});

afterAll(async () => {
  await system?.stop();
});

it("fails a delivery for good once the 3-day window is spent, after 17 attempts at most 8 hours apart", async () => {
  // Prepare
  await call("PUT", "/objects/deals/42", { properties: { dealname: "Big one", amount: 1000 } });
  const workflow = await call("POST", "/workflows", {
    name: "to a receiver that is down",
    objectType: "deals",
    actions: [{ type: "webhook", url: receiver.url("/down") }],
  });

  // Act
  const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
    objectId: "42",
  });
  const enrollment = await eventually(
    "the enrollment to complete",
    async () => {
      const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
      expect(body.status).toBe("completed");
      return body;
    },
    { timeoutMs: 60_000 },
  );

  // Assess
  const [delivery] = enrollment.deliveries;
  expect(delivery.status).toBe("failed");
  expect(delivery.failureReason).toMatch(/^retry window exhausted/);
  expect(delivery.attempts).toHaveLength(17);
  const times = delivery.attempts.map((a: { scheduledAt: string }) => Date.parse(a.scheduledAt));
  const gaps = times.slice(1).map((time: number, index: number) => time - times[index]);
  expect(Math.max(...gaps)).toBeLessThanOrEqual(8 * HOUR);
  expect(gaps[0]).toBeGreaterThanOrEqual(60_000);
  expect(times.at(-1) - times[0]).toBeLessThanOrEqual(72 * HOUR);
  expect(receiver.requestsTo("/down")).toHaveLength(17);
  expect(enrollment.actions[0].status).toBe("failed");
});
