import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runWorkflowStep } from "#app/workflow-steps";
import { deliveryIdFor, FIRST_ATTEMPT_RESEND_DELAY_SECONDS } from "#domain/delivery";
import { STEP_STALL_MS } from "#domain/open-work";
import type { WorkflowAction } from "#domain/workflow";
import { type ClockedSystem, startClockedSystem } from "#test/clocked-system";
import { injectErrors, serviceUnavailable } from "#test/injected-errors";

/**
 * An enrollment whose first action is a webhook, as the API starts it: stored with that action
 * running, its delivery created and its first attempt handed to the webhook lane in the same call,
 * with no write to mark the action started. When the API cannot finish the start, the step it
 * sends instead finishes it. DynamoDB Local, the SQS emulator and a real receiver, on a
 * controlled clock.
 */
let system: ClockedSystem;

beforeAll(async () => {
  system = await startClockedSystem();
});

afterAll(async () => {
  await system?.stop();
});

beforeEach(async () => {
  await system.settle();
  system.answer = () => ({ status: 200, body: "ok" });
});

const webhook = (path: string): WorkflowAction => system.webhook(path);

const unavailable = serviceUnavailable();

/** Counts the DynamoDB commands sent to the enrollments table, by command name. */
function countEnrollmentWrites(): { counts: Map<string, number>; remove: () => void } {
  const counts = new Map<string, number>();
  const table = system.aws.resources.tables.enrollments;
  const name = `count-enrollment-writes-${Math.random().toString(36).slice(2)}`;
  system.aws.documents.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TableName?: string };
      const command = context.commandName ?? "";
      if (input.TableName === table && command !== "GetItemCommand") {
        counts.set(command, (counts.get(command) ?? 0) + 1);
      }
      return next(args);
    },
    { step: "initialize", name },
  );
  return { counts, remove: () => system.aws.documents.middlewareStack.remove(name) };
}

describe("an enrollment whose first action is a webhook", () => {
  it("is stored with that action running and its delivery named, and is never updated to start it", async () => {
    // Prepare
    const writes = countEnrollmentWrites();
    const createdAt = system.clock.now;

    // Act
    const enrollmentId = await system.enrollThroughApi([webhook("/first")]);
    const stored = await system.tables.enrollments.get(enrollmentId);
    writes.remove();
    await system.settle();

    // Assess
    const actionId = stored?.actions[0]?.actionId ?? "";
    const deliveryId = deliveryIdFor(enrollmentId, actionId);
    expect(stored).toMatchObject({ status: "waiting", currentIndex: 0, updatedAt: createdAt });
    expect(stored?.actions[0]).toEqual({
      actionId,
      type: "webhook",
      status: "running",
      startedAt: createdAt,
      deliveryId,
    });
    // The record's lock and the enrollment; nothing else.
    expect(Object.fromEntries(writes.counts)).toEqual({ PutItemCommand: 2 });
    expect(system.receiver.requestsTo("/first")).toHaveLength(1);
    expect((await system.tables.deliveries.get(deliveryId))?.status).toBe("succeeded");
    expect((await system.tables.enrollments.get(enrollmentId))?.status).toBe("completed");
  });

  it("is due in the open-work index when its first step would be, as one the engine starts", async () => {
    // Prepare
    const createdAt = system.clock.now;

    // Act
    const enrollmentId = await system.enrollThroughApi([webhook("/due")]);
    const found = await system.tables.enrollments.getForSweep(enrollmentId);
    await system.settle();

    // Assess
    expect(found?.marks).toEqual({
      sweepAt: createdAt + STEP_STALL_MS,
      resumes: 0,
    });
  });

  it("has its delivery created by the step the API sends when it could not store it", async () => {
    // Prepare: the API's write of the delivery's state fails once
    const faults = injectErrors(
      system.aws.documents,
      "PutItemCommand",
      unavailable,
      1,
      (input) => (input.Item as { sk?: string } | undefined)?.sk === "DELIVERY",
    );

    // Act
    const enrollmentId = await system.enrollThroughApi([webhook("/stored-late")]);
    const waiting = await system.tables.enrollments.get(enrollmentId);
    const sentByApi = faults.count();
    faults.remove();
    await system.settle();

    // Assess
    const deliveryId = deliveryIdFor(enrollmentId, waiting?.actions[0]?.actionId ?? "");
    expect(sentByApi).toBe(1);
    expect(waiting?.actions[0]?.status).toBe("running");
    expect(system.receiver.requestsTo("/stored-late")).toHaveLength(1);
    expect((await system.tables.deliveries.get(deliveryId))?.status).toBe("succeeded");
    expect((await system.tables.enrollments.get(enrollmentId))?.status).toBe("completed");
  });

  it("has its first attempt handed to the lane by the step the API sends when it could not", async () => {
    // Prepare: the API's message to the webhook lane fails once
    const faults = injectErrors(system.aws.sqs, "SendMessageCommand", unavailable, 1, (input) =>
      String(input.QueueUrl).endsWith("webhook-lane"),
    );

    // Act
    const enrolledAt = system.clock.now;
    const enrollmentId = await system.enrollThroughApi([webhook("/sent-late")]);
    const injected = faults.count();
    faults.remove();
    await system.settle();

    // Assess
    expect(injected).toBe(1);
    expect(system.receiver.requestsTo("/sent-late")).toHaveLength(1);
    // The failed send may have reached the lane after all, and attempt 1 takes no lease: the
    // step's message comes late enough not to overlap it.
    expect(system.clock.now - enrolledAt).toBeGreaterThanOrEqual(
      FIRST_ATTEMPT_RESEND_DELAY_SECONDS * 1000,
    );
    expect((await system.tables.enrollments.get(enrollmentId))?.status).toBe("completed");
  });

  it("leaves neither the enrollment nor its delivery behind when neither lane takes its first message", async () => {
    // Prepare: every message to either lane fails
    const before = await system.openWork();
    const faults = injectErrors(system.aws.sqs, "SendMessageCommand", unavailable, 100);

    // Act
    const enrolling = system.enrollThroughApi([webhook("/never-sent")]);
    await expect(enrolling).rejects.toThrow("injected: unavailable");
    const injected = faults.count();
    faults.remove();
    await system.settle();

    // Assess
    expect(injected).toBe(2);
    const after = await system.openWork();
    expect(after.deliveries).toHaveLength(before.deliveries.length);
    expect(after.enrollments).toHaveLength(before.enrollments.length);
    expect(system.receiver.requestsTo("/never-sent")).toHaveLength(0);
  });

  it("sends nothing more for a step that arrives once its first attempt was made", async () => {
    // Prepare: the first attempt fails and the delivery waits for its retry
    system.answer = () => ({ status: 503 });
    const enrollmentId = await system.enrollThroughApi([webhook("/made")]);
    await system.settleOne();
    await system.aws.drain("webhookLane");

    // Act
    const report = await runWorkflowStep(system.steps, {
      type: "advance",
      enrollmentId,
      actionIndex: 0,
    });
    const sent = await system.aws.drain("webhookLane");
    system.answer = () => ({ status: 200, body: "ok" });
    await system.settle();

    // Assess
    expect(report).toEqual({
      kind: "skipped",
      reason: "action 0 is running, its delivery under way",
    });
    expect(sent).toEqual([]);
    expect(system.receiver.requestsTo("/made")).toHaveLength(2);
    expect((await system.tables.enrollments.get(enrollmentId))?.status).toBe("completed");
  });
});
