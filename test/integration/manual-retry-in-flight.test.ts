import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWebhookClient, type WebhookClient } from "#adapters/webhook-client";
import { retryDelivery } from "#app/deliveries";
import { makeDeliveryAttempt } from "#app/delivery-attempts";
import { runWorkflowStep } from "#app/workflow-steps";
import { deliveryIdFor } from "#domain/delivery";
import { ConflictError } from "#domain/errors";
import { type ClockedSystem, startClockedSystem } from "#test/clocked-system";
import { eventually } from "#test/eventually";
import { replyForError } from "../../functions/api/http.ts";

/**
 * `POST /deliveries/{id}/retry` while an attempt of the delivery is in flight would wake a second
 * consumer for that same attempt, and the receiver would get it twice: it is refused with a 409
 * that says so. Against DynamoDB Local, with a real attempt held open by the receiver.
 */
let system: ClockedSystem;
/** Gives up on a held attempt after a moment, so the test need not wait 30 seconds. */
let impatientClient: WebhookClient;

beforeAll(async () => {
  system = await startClockedSystem();
  impatientClient = createWebhookClient({
    allowPrivateTargets: true,
    ca: system.certificate.cert,
    responseTimeoutMs: 1_500,
  });
});

afterAll(async () => {
  await impatientClient?.close();
  await system?.stop();
});

describe("a manual retry while an attempt is in flight", () => {
  it("is refused with a 409 naming the attempt, which the receiver then gets once", async () => {
    // Prepare: attempt 1 failed with a 503, and the receiver holds attempt 2 open
    system.answer = (request) =>
      request.headers["x-delivery-attempt"] === "1" ? { status: 503 } : { hang: true };
    const enrollment = await system.enroll([
      { type: "webhook", url: system.receiver.url("/held"), method: "POST", body: { type: "all" } },
    ]);
    await system.aws.drain("workflowSteps");
    await runWorkflowStep(system.steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });
    await system.aws.drain("webhookLane");
    const deliveryId = deliveryIdFor(
      enrollment.enrollmentId,
      enrollment.actions[0]?.actionId ?? "",
    );
    await makeDeliveryAttempt(system.deliver, { deliveryId, attempt: 1 });
    const api = {
      deliveries: system.tables.deliveries,
      webhookLane: system.deliver.webhookLane,
      now: system.deliver.now,
    };
    const held = makeDeliveryAttempt(
      { ...system.deliver, webhookClient: impatientClient },
      { deliveryId, attempt: 2 },
    );
    await eventually("attempt 2 at the receiver", () =>
      expect(system.receiver.requestsTo("/held")).toHaveLength(2),
    );

    // Act
    const refused = await retryDelivery(api, deliveryId).catch((error: unknown) => error);
    const sentByRetry = await system.aws.drain("webhookLane");
    const report = await held;
    const afterwards = await retryDelivery(api, deliveryId);

    // Assess
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toBe(
      `attempt 2 of delivery ${deliveryId} is in flight; retry once it has been recorded`,
    );
    expect(replyForError(refused).reply.statusCode).toBe(409);
    expect(sentByRetry).toEqual([]);
    expect(report.kind === "sent" && report.attempt.error).toMatch(/timeout/);
    expect(
      system.receiver.requestsTo("/held").map((request) => request.headers["x-delivery-attempt"]),
    ).toEqual(["1", "2"]);
    // Once attempt 2 is recorded, the same retry is accepted: the next attempt is 3.
    expect(afterwards).toMatchObject({ status: "pending", nextAttemptAt: expect.any(String) });
    expect(afterwards.attempts.map((attempt) => attempt.number)).toEqual([1, 2]);
    expect(await system.aws.drain("webhookLane")).toEqual([
      expect.objectContaining({ deliveryId, attempt: 3 }),
    ]);
  });
});
