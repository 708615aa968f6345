import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { putRecord, readRecord } from "#app/records";
import { runWorkflowStep, type WorkflowStepsDeps } from "#app/workflow-steps";
import { deliveryIdFor } from "#domain/delivery";
import { parseRequestBody } from "#domain/request-schemas";
import type { ObjectType, WorkflowAction } from "#domain/workflow";
import { type LocalAws, startLocalAws } from "#test/local-aws";
import { storedEnrollment } from "#test/stored-work";

/**
 * Property names that JavaScript objects treat specially are stored and sent like any other name;
 * the one a store cannot hold, `__proto__`, is refused, never silently dropped.
 */
const SPECIAL_NAMES = [
  "constructor",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "__defineGetter__",
  "prototype",
];

let aws: LocalAws;
let records: RecordsTable;
let enrollments: EnrollmentsTable;
let deliveries: DeliveriesTable;
let steps: WorkflowStepsDeps;

beforeAll(async () => {
  aws = await startLocalAws();
  const names = aws.resources.tables;
  records = new RecordsTable(aws.documents, names.records);
  enrollments = new EnrollmentsTable(aws.documents, names.enrollments);
  deliveries = new DeliveriesTable(aws.documents, names.deliveries);
  steps = {
    records,
    enrollments,
    deliveries,
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

/** An own property by a name the type checker would otherwise read as Object's own member. */
function own<T>(object: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

const deps = () => ({ records, now: Date.now, portalId: 1 });

function enrolled(objectId: string, actions: WorkflowAction[]) {
  return storedEnrollment(enrollments, objectId, actions);
}

describe("property names that JavaScript objects treat specially", () => {
  it.each<ObjectType>(["contacts", "companies"])(
    "are stored, updated and sent like any other name on %s",
    async (objectType) => {
      // Prepare
      const objectId = randomUUID();
      const first = parseRequestBody("putObject", {
        properties: Object.fromEntries(SPECIAL_NAMES.map((name) => [name, `${name}-1`])),
      });
      const second = parseRequestBody("putObject", { properties: { constructor: "again" } });

      // Act
      const created = await putRecord(deps(), objectType, objectId, first);
      const updated = await putRecord(deps(), objectType, objectId, second);
      const read = (await readRecord(deps(), objectType, objectId)) as {
        properties: Record<string, { value: string }>;
      };

      // Assess
      expect(created.created).toBe(true);
      expect(updated.created).toBe(false);
      expect(Object.keys(read.properties).sort()).toEqual([...SPECIAL_NAMES].sort());
      expect(Object.hasOwn(read.properties, "constructor")).toBe(true);
      expect(own(read.properties, "constructor")?.value).toBe("again");
      expect(own(read.properties, "toString")?.value).toBe("toString-1");
      const stored = await records.get({ objectType, objectId });
      expect(own(stored?.properties ?? {}, "constructor")?.map((version) => version.value)).toEqual(
        ["again", "constructor-1"],
      );
    },
  );

  it("are written by a setProperty step and sent in a custom webhook body", async () => {
    // Prepare
    const objectId = randomUUID();
    await putRecord(deps(), "contacts", objectId, { properties: { email: "ada@example.com" } });
    const enrollment = await enrolled(objectId, [
      { type: "setProperty", property: "constructor", value: "set by a workflow" },
      {
        type: "webhook",
        url: "https://127.0.0.1:9/hook",
        method: "POST",
        body: { type: "custom", fields: [{ key: "made", property: "constructor" }] },
      },
    ]);

    // Act
    const set = await runWorkflowStep(steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });
    const started = await runWorkflowStep(steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 1,
    });

    // Assess
    expect(set).toMatchObject({ kind: "finished", enrollmentStatus: "active" });
    expect(started).toEqual({ kind: "waiting", actionType: "webhook" });
    const delivery = await deliveries.get(
      deliveryIdFor(enrollment.enrollmentId, enrollment.actions[1]?.actionId ?? ""),
    );
    expect(delivery?.body).toBe('{"made":"set by a workflow"}');
  });

  it("refuses __proto__: at the API, and in a step that carries it, failing the enrollment with the reason", async () => {
    // Prepare: a step from before the name was refused
    const objectId = randomUUID();
    await putRecord(deps(), "contacts", objectId, { properties: { email: "ada@example.com" } });
    const enrollment = await enrolled(objectId, [
      { type: "setProperty", property: "__proto__", value: "x" },
    ]);

    // Act
    const refused = () =>
      parseRequestBody("putObject", JSON.parse('{"properties": {"__proto__": "x"}}'));
    const report = await runWorkflowStep(steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });

    // Assess
    expect(refused).toThrow("properties.__proto__: is a reserved name");
    expect(report).toMatchObject({ kind: "finished", enrollmentStatus: "failed" });
    const stored = await enrollments.get(enrollment.enrollmentId);
    expect(stored?.failureReason).toBe("setProperty __proto__: __proto__: is a reserved name");
  });
});
