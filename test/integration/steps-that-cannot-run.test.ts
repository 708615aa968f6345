import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { runWorkflowStep, type WorkflowStepsDeps } from "#app/workflow-steps";
import { enrollmentView } from "#domain/enrollment";
import type { WorkflowAction } from "#domain/workflow";
import { type LocalAws, startLocalAws } from "#test/local-aws";
import { storedContact, storedEnrollment } from "#test/stored-work";

/**
 * Steps that no retry can make run end their enrollment as failed, with the reason, instead of
 * failing on every try until the message reaches the dead-letter queue.
 */
let aws: LocalAws;
let records: RecordsTable;
let enrollments: EnrollmentsTable;
let steps: WorkflowStepsDeps;

beforeAll(async () => {
  aws = await startLocalAws();
  const names = aws.resources.tables;
  records = new RecordsTable(aws.documents, names.records);
  enrollments = new EnrollmentsTable(aws.documents, names.enrollments);
  steps = {
    records,
    enrollments,
    deliveries: new DeliveriesTable(aws.documents, names.deliveries),
    workflowSteps: new WorkflowStepsQueue(aws.sqs, aws.resources.queues.workflowSteps.url),
    webhookLane: new WebhookLaneQueue(aws.sqs, aws.resources.queues.webhookLane.url),
    now: Date.now,
    timeScale: 1,
    stalledAfterMs: 30_000,
    portalId: 1,
  };
});

afterAll(async () => {
  await aws?.stop();
});

beforeEach(async () => {
  await aws.drain("workflowSteps");
});

/** A contact with the given properties, enrolled into a workflow of the given actions. */
async function enrolled(properties: Record<string, string>, actions: WorkflowAction[]) {
  return storedEnrollment(enrollments, await storedContact(records, properties), actions);
}

describe("a setProperty step that can never run", () => {
  it("fails its action and the enrollment with the reason when the record would outgrow its size limit, and frees the record", async () => {
    // Prepare: a record near its limit, and a value that pushes it over
    const enrollment = await enrolled({ notes: "n".repeat(340_000) }, [
      { type: "setProperty", property: "summary", value: "s".repeat(60_000) },
      { type: "delay", seconds: 60 },
    ]);

    // Act
    const report = await runWorkflowStep(steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });

    // Assess
    expect(report).toMatchObject({ kind: "finished", enrollmentStatus: "failed" });
    const stored = await enrollments.get(enrollment.enrollmentId);
    const view = enrollmentView(stored ?? enrollment);
    expect(view.status).toBe("failed");
    expect(view.currentActionId).toBeNull();
    expect(view.failureReason).toMatch(
      /^setProperty summary: record would take \d+ bytes with its history; at most 350000 are kept$/,
    );
    expect(view.actions.map((action) => action.status)).toEqual(["failed", "pending"]);
    expect(await aws.drain("workflowSteps")).toEqual([]);
    const record = await records.get({ objectType: "contacts", objectId: enrollment.objectId });
    expect(record?.properties.summary).toBeUndefined();
    // The record's place in the workflow is free again.
    await expect(
      enrollments.create({ ...enrollment, enrollmentId: randomUUID() }),
    ).resolves.toBeUndefined();
  });

  it("fails the enrollment once when the same step is processed twice at once", async () => {
    // Prepare
    const enrollment = await enrolled({ notes: "n".repeat(340_000) }, [
      { type: "setProperty", property: "summary", value: "s".repeat(60_000) },
    ]);
    const message = {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    } as const;

    // Act
    const reports = await Promise.all([
      runWorkflowStep(steps, message),
      runWorkflowStep(steps, message),
    ]);

    // Assess
    expect(reports.filter((report) => report.kind === "finished")).toHaveLength(1);
    expect((await enrollments.get(enrollment.enrollmentId))?.status).toBe("failed");
  });
});

describe("a webhook step whose body would be too large to send", () => {
  it("fails its delivery with the reason before any attempt, and the enrollment moves on", async () => {
    // Prepare: a custom body that names one 64 KiB property twenty times
    const enrollment = await enrolled({ note: "n".repeat(65_536) }, [
      {
        type: "webhook",
        url: "https://127.0.0.1:1/never",
        method: "POST",
        body: {
          type: "custom",
          fields: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, property: "note" })),
        },
      },
      { type: "delay", seconds: 60 },
    ]);

    // Act
    const report = await runWorkflowStep(steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });

    // Assess
    expect(report).toMatchObject({ kind: "finished" });
    const deliveryId = (await enrollments.get(enrollment.enrollmentId))?.actions[0]?.deliveryId;
    const delivery = await steps.deliveries.get(deliveryId ?? "");
    expect(delivery).toMatchObject({ status: "failed", attemptCount: 0, nextAttempt: null });
    expect(delivery?.failureReason).toMatch(
      /^webhook body would be \d+ bytes; at most 1048576 are sent$/,
    );
    expect(await aws.drain("webhookLane")).toEqual([]);
    expect(await aws.drain("workflowSteps")).toEqual([
      { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 1 },
    ]);
  });
});
