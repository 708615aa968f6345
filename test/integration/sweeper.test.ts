import { randomUUID } from "node:crypto";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { makeDeliveryAttempt } from "#app/delivery-attempts";
import { failAction } from "#app/enrollment-progress";
import type { SweepFinding } from "#app/sweeper";
import { runWorkflowStep } from "#app/workflow-steps";
import { deliveryIdFor } from "#domain/delivery";
import { type Enrollment, newEnrollment, withActionStarted } from "#domain/enrollment";
import {
  ATTEMPT_STALL_MS,
  MAX_SWEEP_RESUMES,
  RETRY_FIRE_SLACK_MS,
  STEP_STALL_MS,
} from "#domain/open-work";
import type { WorkflowAction } from "#domain/workflow";
import { type ClockedSystem, startClockedSystem } from "#test/clocked-system";
import { injectErrors } from "#test/injected-errors";
import { storedContact } from "#test/stored-work";

/**
 * The sweeper's app function against DynamoDB Local and the SQS emulator, on a controlled clock:
 * work that stopped moving (a lost message or schedule, a follow-up that never happened) is
 * resumed once it is overdue and not before, work that can never move fails with the reason, and
 * work that is waiting for good reason is left alone.
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

/** The findings of a run about the enrollment or delivery `id`. */
function about(findings: readonly SweepFinding[], id: string): SweepFinding[] {
  return findings.filter((finding) =>
    finding.work === "enrollment" ? finding.enrollmentId === id : finding.deliveryId === id,
  );
}

/** Runs the enrollment's first step by hand, and loses whatever it sent to the lanes. */
async function firstStepThenLoseMessages(enrollment: Enrollment): Promise<void> {
  await system.aws.drain("workflowSteps");
  await runWorkflowStep(system.steps, {
    type: "advance",
    enrollmentId: enrollment.enrollmentId,
    actionIndex: 0,
  });
  await system.aws.drain("workflowSteps");
  await system.aws.drain("webhookLane");
}

/**
 * An enrollment stored at its first webhook action, running, as the API stores it, whose
 * delivery was never created and whose start no message carries on.
 */
async function startedWithoutDelivery(path: string): Promise<Enrollment> {
  const objectId = await storedContact(system.tables.records, { email: "ada@example.com" });
  const created = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId: randomUUID(),
    objectType: "contacts",
    objectId,
    definition: [{ ...webhook(path), id: randomUUID() }],
    now: system.clock.now,
  });
  const enrollment = withActionStarted(created, 0, {
    now: system.clock.now,
    deliveryId: deliveryIdFor(created.enrollmentId, created.actions[0]?.actionId ?? ""),
  });
  await system.tables.enrollments.create(enrollment);
  return enrollment;
}

const deliveryOf = (enrollment: Enrollment, index = 0) =>
  deliveryIdFor(enrollment.enrollmentId, enrollment.actions[index]?.actionId ?? "");

describe("the sweeper", () => {
  it("finds nothing to do where work moved by itself", async () => {
    // Prepare
    const enrollment = await system.enroll([
      { type: "setProperty", property: "stage", value: "lead" },
      webhook("/by-itself"),
    ]);
    await system.settle();

    // Act
    system.clock.now += 24 * 3600_000;
    const run = await system.sweep();

    // Assess
    expect((await system.tables.enrollments.get(enrollment.enrollmentId))?.status).toBe(
      "completed",
    );
    expect(run).toEqual({ findings: [], complete: true });
  });

  it("re-sends the step of an enrollment whose step message was lost, once it is overdue", async () => {
    // Prepare
    const enrollment = await system.enroll([{ type: "setProperty", property: "a", value: "1" }]);
    await system.aws.drain("workflowSteps");
    const started = system.clock.now;

    // Act
    system.clock.now = started + STEP_STALL_MS - 1;
    const early = await system.sweep();
    system.clock.now = started + STEP_STALL_MS;
    const due = await system.sweep();
    await system.settle();

    // Assess
    expect(about(early.findings, enrollment.enrollmentId)).toEqual([]);
    expect(about(due.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({
        work: "enrollment",
        kind: "resumed",
        sent: "advance",
        reason: "setProperty action 0 was pending with no step to move it",
        workflowId: enrollment.workflowId,
      }),
    ]);
    expect((await system.tables.enrollments.get(enrollment.enrollmentId))?.status).toBe(
      "completed",
    );
  });

  it("resumes a delay whose hop was lost, once the delay is over and overdue", async () => {
    // Prepare
    const enrollment = await system.enroll([{ type: "delay", seconds: 3600 }]);
    await firstStepThenLoseMessages(enrollment);
    const resumeAt = system.clock.now + 3600_000;

    // Act
    system.clock.now = resumeAt + STEP_STALL_MS - 1;
    const early = await system.sweep();
    system.clock.now = resumeAt + STEP_STALL_MS;
    const due = await system.sweep();
    await system.settle();

    // Assess
    expect(about(early.findings, enrollment.enrollmentId)).toEqual([]);
    expect(about(due.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({ kind: "resumed", sent: "resume" }),
    ]);
    const stored = await system.tables.enrollments.get(enrollment.enrollmentId);
    expect(stored?.status).toBe("completed");
    expect(stored?.actions[0]?.finishedAt).toBeGreaterThanOrEqual(resumeAt);
  });

  it("re-sends a first attempt whose lane message was lost, through the enrollment waiting on it", async () => {
    // Prepare
    const enrollment = await system.enroll([webhook("/lost-attempt")]);
    await firstStepThenLoseMessages(enrollment);
    const deliveryId = deliveryOf(enrollment);
    const created = system.clock.now;

    // Act: the enrollment is overdue before the attempt is, then both are
    system.clock.now = created + STEP_STALL_MS;
    const early = await system.sweep();
    const sentEarly = await system.aws.drain("webhookLane");
    system.clock.now = created + ATTEMPT_STALL_MS;
    const run = await system.sweep();
    await system.settle();

    // Assess
    expect(about(early.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({
        kind: "postponed",
        reason: "delivery is pending",
        until: created + ATTEMPT_STALL_MS,
      }),
    ]);
    expect(sentEarly).toEqual([]);
    expect(about(run.findings, deliveryId)).toEqual([
      expect.objectContaining({
        work: "delivery",
        deliveryId,
        kind: "resumed",
        sent: "attempt 1",
        reason: "attempt 1 was due and not made",
      }),
    ]);
    expect(about(run.findings, enrollment.enrollmentId)).toContainEqual(
      expect.objectContaining({
        work: "enrollment",
        kind: "postponed",
        reason: "delivery is pending",
      }),
    );
    expect(system.receiver.requestsTo("/lost-attempt")).toHaveLength(1);
    expect((await system.tables.deliveries.get(deliveryId))?.status).toBe("succeeded");
    expect((await system.tables.enrollments.get(enrollment.enrollmentId))?.status).toBe(
      "completed",
    );
  });

  it("re-sends a retry whose schedule was lost, once the schedule's slack is over", async () => {
    // Prepare
    system.answer = (request) =>
      request.headers["x-delivery-attempt"] === "1" ? { status: 503 } : { status: 200 };
    const enrollment = await system.enroll([webhook("/lost-retry")]);
    await firstStepThenLoseMessages(enrollment);
    const deliveryId = deliveryOf(enrollment);
    await makeDeliveryAttempt(system.deliver, { deliveryId, attempt: 1 });
    const lost = system.loseSchedules();
    const retrying = await system.tables.deliveries.get(deliveryId);
    const firesAt = retrying?.retryFiresAt ?? 0;

    // Act
    system.clock.now = firesAt + RETRY_FIRE_SLACK_MS + ATTEMPT_STALL_MS - 1;
    const early = await system.sweep();
    system.clock.now += 1;
    const due = await system.sweep();
    await system.settle();

    // Assess
    expect(lost).toBe(1);
    expect(retrying).toMatchObject({ status: "retrying", nextAttempt: 2 });
    expect(about(early.findings, deliveryId)).toEqual([]);
    expect(about(due.findings, deliveryId)).toEqual([
      expect.objectContaining({
        kind: "resumed",
        sent: "attempt 2",
        reason: `retry 2 was due at ${new Date(retrying?.nextAttemptAt ?? 0).toISOString()} and did not fire`,
      }),
    ]);
    expect(
      system.receiver.requestsTo("/lost-retry").map((r) => r.headers["x-delivery-attempt"]),
    ).toEqual(["1", "2"]);
    expect((await system.tables.enrollments.get(enrollment.enrollmentId))?.status).toBe(
      "completed",
    );
  });

  it("finishes the webhook action of a delivery that ended while its enrollment stayed behind", async () => {
    // Prepare: the lane records the delivery's success, then cannot move the enrollment
    const enrollment = await system.enroll([
      webhook("/ended"),
      { type: "setProperty", property: "synced", value: "yes" },
    ]);
    await firstStepThenLoseMessages(enrollment);
    const deliveryId = deliveryOf(enrollment);
    const outage = injectErrors(
      system.aws.documents,
      "UpdateItemCommand",
      () => new Error("injected: service unavailable"),
      1,
      (input) => String(input.UpdateExpression).includes("currentIndex = :next"),
    );
    const failed = await makeDeliveryAttempt(system.deliver, { deliveryId, attempt: 1 }).catch(
      (error: unknown) => error,
    );
    outage.remove();

    // Act
    system.clock.now = enrollment.createdAt + STEP_STALL_MS;
    const run = await system.sweep();
    await system.settle();

    // Assess
    expect(failed).toBeInstanceOf(Error);
    expect((await system.tables.deliveries.get(deliveryId))?.status).toBe("succeeded");
    expect(about(run.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({
        work: "enrollment",
        deliveryId,
        kind: "resumed",
        reason: "delivery succeeded but its webhook action was not finished",
      }),
    ]);
    const stored = await system.tables.enrollments.get(enrollment.enrollmentId);
    expect(stored?.status).toBe("completed");
    expect(stored?.actions.map((action) => action.status)).toEqual(["succeeded", "succeeded"]);
  });

  it("fails a retrying delivery whose enrollment ended, with the reason", async () => {
    // Prepare: attempt 1 failed and its retry is lost; then the enrollment ended
    system.answer = () => ({ status: 503 });
    const enrollment = await system.enroll([webhook("/orphan")]);
    await firstStepThenLoseMessages(enrollment);
    const deliveryId = deliveryOf(enrollment);
    await makeDeliveryAttempt(system.deliver, { deliveryId, attempt: 1 });
    system.loseSchedules();
    const waiting = await system.tables.enrollments.get(enrollment.enrollmentId);
    await failAction(system.steps, waiting as Enrollment, 0, "ended by an operator");

    // Act
    system.clock.now += 24 * 3600_000;
    const run = await system.sweep();
    await system.settle();

    // Assess
    expect(about(run.findings, deliveryId)).toEqual([
      expect.objectContaining({ kind: "failed", reason: "enrollment failed" }),
    ]);
    expect(await system.tables.deliveries.get(deliveryId)).toMatchObject({
      status: "failed",
      nextAttempt: null,
      failureReason: "enrollment failed",
    });
    expect(system.receiver.requestsTo("/orphan")).toHaveLength(1);
  });

  it("fails the pending delivery of an enrollment that a writer ended without keeping the index", async () => {
    // Prepare: the enrollment waits on its first attempt, and is ended by a write that leaves it
    // in the index
    const enrollment = await system.enroll([webhook("/left")]);
    await firstStepThenLoseMessages(enrollment);
    const deliveryId = deliveryOf(enrollment);
    await system.aws.documents.send(
      new UpdateCommand({
        TableName: system.aws.resources.tables.enrollments,
        Key: { pk: enrollment.enrollmentId, sk: "ENROLLMENT" },
        UpdateExpression: "SET #status = :failed",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":failed": "failed" },
      }),
    );

    // Act
    system.clock.now = enrollment.createdAt + STEP_STALL_MS;
    const run = await system.sweep();
    const again = await system.sweep();

    // Assess
    expect(about(run.findings, deliveryId)).toEqual([
      expect.objectContaining({ work: "delivery", kind: "failed", reason: "enrollment failed" }),
    ]);
    expect(about(run.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({ kind: "cleared", reason: "enrollment failed" }),
    ]);
    expect((await system.tables.deliveries.get(deliveryId))?.status).toBe("failed");
    expect(again.findings).toEqual([]);
    expect(system.receiver.requestsTo("/left")).toHaveLength(0);
  });

  it(`fails a step that no resume moves, after ${MAX_SWEEP_RESUMES} resumes spaced twice as far each time`, async () => {
    // Prepare: every step sent for this enrollment is lost
    const enrollment = await system.enroll([{ type: "setProperty", property: "a", value: "1" }]);
    await system.aws.drain("workflowSteps");
    const started = system.clock.now;
    const resumedAt: number[] = [];
    let due = started + STEP_STALL_MS;

    // Act
    let last: SweepFinding[] = [];
    for (let run = 0; run <= MAX_SWEEP_RESUMES; run++) {
      system.clock.now = due - 1;
      const early = about((await system.sweep()).findings, enrollment.enrollmentId);
      expect(early, `run ${run} a moment early`).toEqual([]);
      system.clock.now = due;
      last = about((await system.sweep()).findings, enrollment.enrollmentId);
      await system.aws.drain("workflowSteps");
      if (last[0]?.kind === "resumed") resumedAt.push(due - started);
      due = system.clock.now + (STEP_STALL_MS * 2 ** resumedAt.length) / 2;
    }

    // Assess
    expect(resumedAt).toHaveLength(MAX_SWEEP_RESUMES);
    expect(last).toEqual([
      expect.objectContaining({
        kind: "failed",
        reason: `setProperty action 0 made no progress after ${MAX_SWEEP_RESUMES} resumes by the sweeper`,
      }),
    ]);
    const stored = await system.tables.enrollments.get(enrollment.enrollmentId);
    expect(stored?.status).toBe("failed");
    expect(stored?.failureReason).toBe(last[0]?.kind === "failed" ? last[0].reason : "");
  });

  it("creates the delivery of a first webhook that was stored running without one, once it is overdue", async () => {
    // Prepare: the enrollment was stored, and what was to create its delivery stopped there
    const enrollment = await startedWithoutDelivery("/never-created");
    const deliveryId = deliveryOf(enrollment);
    const created = system.clock.now;

    // Act
    system.clock.now = created + STEP_STALL_MS - 1;
    const early = await system.sweep();
    system.clock.now = created + STEP_STALL_MS;
    const due = await system.sweep();
    await system.settle();

    // Assess
    expect(about(early.findings, enrollment.enrollmentId)).toEqual([]);
    expect(about(due.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({
        kind: "resumed",
        sent: "advance",
        reason: `webhook action 0 has no delivery ${deliveryId}`,
        deliveryId,
      }),
    ]);
    expect(system.receiver.requestsTo("/never-created")).toHaveLength(1);
    expect((await system.tables.deliveries.get(deliveryId))?.status).toBe("succeeded");
    expect((await system.tables.enrollments.get(enrollment.enrollmentId))?.status).toBe(
      "completed",
    );
  });

  it(`fails a webhook action whose delivery no resume creates, after ${MAX_SWEEP_RESUMES} resumes`, async () => {
    // Prepare: the delivery is never created, and every step sent to create it is lost
    const enrollment = await startedWithoutDelivery("/never-ever");
    const deliveryId = deliveryOf(enrollment);

    // Act
    let last: SweepFinding[] = [];
    for (let run = 0; run <= MAX_SWEEP_RESUMES; run++) {
      system.clock.now += STEP_STALL_MS * 2 ** run;
      last = about((await system.sweep()).findings, enrollment.enrollmentId);
      await system.aws.drain("workflowSteps");
    }

    // Assess
    const reason = `webhook action 0 has no delivery ${deliveryId} after ${MAX_SWEEP_RESUMES} resumes by the sweeper`;
    expect(last).toEqual([expect.objectContaining({ kind: "failed", reason })]);
    const stored = await system.tables.enrollments.get(enrollment.enrollmentId);
    expect(stored).toMatchObject({ status: "failed", failureReason: reason });
    expect(system.receiver.requestsTo("/never-ever")).toEqual([]);
  });

  it("leaves a delivery with an attempt in flight to its consumer", async () => {
    // Prepare
    const enrollment = await system.enroll([webhook("/in-flight")]);
    await firstStepThenLoseMessages(enrollment);
    const deliveryId = deliveryOf(enrollment);
    system.clock.now = enrollment.createdAt + ATTEMPT_STALL_MS;
    await system.tables.deliveries.claimAttempt(deliveryId, 1, system.clock.now, 90_000);

    // Act
    const run = await system.sweep();
    const sent = await system.aws.drain("webhookLane");

    // Assess
    expect(about(run.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({
        kind: "postponed",
        reason: "delivery is pending",
        until: system.clock.now + 90_000 + ATTEMPT_STALL_MS,
      }),
    ]);
    expect(about(run.findings, deliveryId)).toEqual([]);
    expect(sent).toEqual([]);
  });

  it("takes ended work that a writer left in the index out of it", async () => {
    // Prepare: an enrollment ended by a write that does not keep the index
    const enrollment = await system.enroll([{ type: "setProperty", property: "a", value: "1" }]);
    await system.aws.drain("workflowSteps");
    await system.aws.documents.send(
      new UpdateCommand({
        TableName: system.aws.resources.tables.enrollments,
        Key: { pk: enrollment.enrollmentId, sk: "ENROLLMENT" },
        UpdateExpression: "SET #status = :completed, currentIndex = :one",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":completed": "completed", ":one": 1 },
      }),
    );

    // Act
    system.clock.now = enrollment.createdAt + STEP_STALL_MS;
    const first = await system.sweep();
    const second = await system.sweep();

    // Assess
    expect(about(first.findings, enrollment.enrollmentId)).toEqual([
      expect.objectContaining({ kind: "cleared", reason: "enrollment completed" }),
    ]);
    expect(about(second.findings, enrollment.enrollmentId)).toEqual([]);
    expect(await system.aws.drain("workflowSteps")).toEqual([]);
  });
});
