import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ACTION_RESPONSE_TIMEOUT_MS } from "#app/test-action";
import { API_TIME_LIMIT_SECONDS } from "#shared/contract";
import { eventually } from "#test/eventually";
import { type LocalSystem, startLocalSystem } from "#test/local-system";
import { reportFigures } from "#test/reliability-figures";

/**
 * Receivers that take longer than the system's own time limits, through the local system, whose
 * API gateway gives up after 29 seconds as API Gateway does. Each case waits out a real timeout.
 */
let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 0.001 });
  ({ call, receiver, answers } = system);
});

afterAll(async () => {
  await system?.stop();
});

describe("a receiver that never answers", () => {
  it("gets a test action that answers before the API's time limit, with the timeout in error", async () => {
    // Prepare
    answers.set("/hang", () => ({ hang: true }));
    await call("PUT", "/objects/contacts/slow", { properties: { email: "s@example.com" } });
    const workflow = await call("POST", "/workflows", {
      name: "Slow",
      objectType: "contacts",
      actions: [{ type: "webhook", url: receiver.url("/hang") }],
    });
    const started = Date.now();

    // Act
    const tested = await call(
      "POST",
      `/workflows/${workflow.body.id}/actions/${workflow.body.actions[0].id}/test`,
      { objectId: "slow" },
    );
    const tookMs = Date.now() - started;

    // Assess
    reportFigures({
      suite: "Test action against a receiver that hangs",
      inputs: 1,
      serverErrors: tested.status >= 500 ? 1 : 0,
      notes: `answered ${tested.status} after ${(tookMs / 1000).toFixed(1)} s; the API's limit is ${API_TIME_LIMIT_SECONDS} s`,
    });
    expect(tested.status).toBe(200);
    expect(tested.body.response).toBeNull();
    expect(tested.body.error).toBe(`response timeout after ${TEST_ACTION_RESPONSE_TIMEOUT_MS} ms`);
    expect(tookMs).toBeLessThan(API_TIME_LIMIT_SECONDS * 1000);
    expect(receiver.requestsTo("/hang")).toHaveLength(1);
  });

  it("gets a delivery whose attempt times out after 30 s, retried a minute later, that ends", async () => {
    // Prepare: the first attempt hangs, the next one is answered
    answers.set("/hang-once", (previous) => (previous === 0 ? { hang: true } : { status: 200 }));
    await call("PUT", "/objects/contacts/slow", { properties: { email: "s@example.com" } });
    const workflow = await call("POST", "/workflows", {
      name: "Hangs once",
      objectType: "contacts",
      actions: [{ type: "webhook", url: receiver.url("/hang-once") }],
    });

    // Act
    const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
      objectId: "slow",
    });
    const enrollment = await eventually(
      "the enrollment to end",
      async () => {
        const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
        expect(body.status).toBe("completed");
        return body;
      },
      { timeoutMs: 90_000 },
    );

    // Assess
    const [delivery] = enrollment.deliveries;
    reportFigures({
      suite: "Delivery to a receiver that hangs once",
      inputs: 1,
      faultsInjected: 1,
      faultsSurvived: delivery.status === "succeeded" ? 1 : 0,
      stuck: 0,
      notes: `attempt 1: ${delivery.attempts[0]?.error}; attempt 2: ${delivery.attempts[1]?.statusCode}`,
    });
    expect(delivery.status).toBe("succeeded");
    expect(delivery.attempts.map((a: { error: string | null }) => a.error)).toEqual([
      "response timeout after 30000 ms",
      null,
    ]);
    expect(
      Date.parse(delivery.attempts[1].scheduledAt) - Date.parse(delivery.attempts[0].scheduledAt),
    ).toBeGreaterThanOrEqual(60_000);
  });
});
