import { randomUUID } from "node:crypto";
import { CreateScheduleCommand, SchedulerClient } from "@aws-sdk/client-scheduler";
import { DeleteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { AppsTable } from "#adapters/apps-table";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { RetrySchedules } from "#adapters/retry-schedules";
import { createWebhookClient, type WebhookClient } from "#adapters/webhook-client";
import { retryDelivery } from "#app/deliveries";
import {
  AttemptInFlightError,
  type DeliveryAttemptsDeps,
  makeDeliveryAttempt,
} from "#app/delivery-attempts";
import { runWorkflowStep, type WorkflowStepsDeps } from "#app/workflow-steps";
import {
  type Delivery,
  deliveryIdFor,
  FIRST_ATTEMPT_RESEND_DELAY_SECONDS,
  UNLEASED_FIRST_ATTEMPT_MS,
} from "#domain/delivery";
import type { Enrollment } from "#domain/enrollment";
import { ConflictError } from "#domain/errors";
import { DEFAULT_HOST_ADMISSION, HostAdmission } from "#domain/host-admission";
import type { DeliveryAttemptMessage } from "#domain/messages";
import type { WorkflowAction } from "#domain/workflow";
import { RECORD_SORT_KEY } from "#shared/contract";
import { eventually } from "#test/eventually";
import {
  makeTestCertificate,
  type ReceiverAnswer,
  startReceiver,
  type TestCertificate,
  type TestReceiver,
} from "#test/https-receiver";
import { type LocalAws, startLocalAws } from "#test/local-aws";
import { storedContact, storedEnrollment } from "#test/stored-work";

let aws: LocalAws;
let certificate: TestCertificate;
let receiver: TestReceiver;
let webhookClient: WebhookClient;
let answers: Record<string, (previous: number) => ReceiverAnswer> = {};
const schedulerMock = mockClient(SchedulerClient);
const SCHEDULER = {
  groupName: "webhook-retries",
  roleArn: "arn:aws:iam::123456789012:role/fire",
  laneQueueArn: "arn:aws:sqs:us-east-1:123456789012:webhook-lane",
  deadLetterArn: undefined,
};

let tables: {
  apps: AppsTable;
  records: RecordsTable;
  enrollments: EnrollmentsTable;
  deliveries: DeliveriesTable;
};
let steps: WorkflowStepsDeps;
/** The receiver as lane messages name it: `127.0.0.1:<port>`. */
let receiverHost: string;
let deliver: DeliveryAttemptsDeps;

beforeAll(async () => {
  aws = await startLocalAws();
  certificate = makeTestCertificate();
  receiver = await startReceiver(certificate, (request, previous) => {
    const path = request.url.split("?")[0] ?? "";
    return answers[path]?.(previous) ?? { status: 200, body: "ok" };
  });
  webhookClient = createWebhookClient({ allowPrivateTargets: true, ca: certificate.cert });
  receiverHost = new URL(receiver.url("/")).host;
  const names = aws.resources.tables;
  tables = {
    apps: new AppsTable(aws.documents, names.apps),
    records: new RecordsTable(aws.documents, names.records),
    enrollments: new EnrollmentsTable(aws.documents, names.enrollments),
    deliveries: new DeliveriesTable(aws.documents, names.deliveries),
  };
  const workflowSteps = new WorkflowStepsQueue(aws.sqs, aws.resources.queues.workflowSteps.url);
  const webhookLane = new WebhookLaneQueue(aws.sqs, aws.resources.queues.webhookLane.url);
  steps = {
    ...tables,
    workflowSteps,
    webhookLane,
    now: Date.now,
    timeScale: 1,
    stalledAfterMs: 30_000,
    portalId: 1,
  };
  deliver = {
    ...tables,
    workflowSteps,
    webhookLane,
    retrySchedules: new RetrySchedules(new SchedulerClient({ region: "us-east-1" }), SCHEDULER),
    webhookClient,
    admission: new HostAdmission(),
    now: Date.now,
    random: () => 0,
    leaseMs: 90_000,
  };
});

afterAll(async () => {
  await webhookClient?.close();
  await receiver?.close();
  certificate?.remove();
  await aws?.stop();
  schedulerMock.restore();
});

beforeEach(async () => {
  schedulerMock.reset();
  schedulerMock
    .on(CreateScheduleCommand)
    .resolves({ ScheduleArn: "arn:aws:scheduler:::schedule/x" });
  answers = {};
  await aws.drain("workflowSteps");
  await aws.drain("webhookLane");
});

/** A contact and an enrollment of it into a workflow with the given actions. */
async function enrolled(actions: WorkflowAction[]) {
  const objectId = await storedContact(tables.records, { email: "ada@example.com" });
  return storedEnrollment(tables.enrollments, objectId, actions);
}

const webhook = (path: string): WorkflowAction => ({
  type: "webhook",
  url: receiver.url(path),
  method: "POST",
  body: { type: "all" },
});

describe("enrollment state under duplicate and concurrent messages", () => {
  it("lets only one of several concurrent enrollments of a record into a workflow", async () => {
    // Prepare
    const first = await enrolled([{ type: "setProperty", property: "a", value: "1" }]);
    const rivals = Array.from({ length: 5 }, () => ({ ...first, enrollmentId: randomUUID() }));

    // Act
    const outcomes = await Promise.allSettled(
      rivals.map((rival) => tables.enrollments.create(rival)),
    );

    // Assess
    expect(
      outcomes.every((o) => o.status === "rejected" && o.reason instanceof ConflictError),
    ).toBe(true);
  });

  it("applies a setProperty step processed twice at once exactly once, and moves the enrollment once", async () => {
    // Prepare
    const enrollment = await enrolled([
      { type: "setProperty", property: "stage", value: "lead" },
      { type: "delay", seconds: 60 },
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
    expect(reports.filter((r) => r.kind === "finished")).toHaveLength(1);
    const record = await tables.records.get({
      objectType: "contacts",
      objectId: enrollment.objectId,
    });
    expect(record?.properties.stage).toHaveLength(1);
    const stored = await tables.enrollments.get(enrollment.enrollmentId);
    expect(stored?.currentIndex).toBe(1);
    expect(stored?.actions[0]?.status).toBe("succeeded");
    expect(await aws.drain("workflowSteps")).toEqual([
      { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 1 },
    ]);
  });

  it("re-sends the step that should follow when a stale message finds the enrollment further along", async () => {
    // Prepare: the consumer of action 0 moved the enrollment a minute ago, then stopped before
    // sending action 1
    const enrollment = await enrolled([
      { type: "setProperty", property: "stage", value: "lead" },
      { type: "setProperty", property: "owner", value: "ada" },
    ]);
    await tables.enrollments.finishAction(enrollment, 0, {
      now: Date.now() - 60_000,
      status: "succeeded",
    });
    const message = {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    } as const;

    // Act: the message for action 0 comes back, once while a consumer could still be at work
    const early = await runWorkflowStep({ ...steps, stalledAfterMs: 120_000 }, message);
    const sentEarly = await aws.drain("workflowSteps");
    const report = await runWorkflowStep(steps, message);

    // Assess
    expect(early.kind).toBe("skipped");
    expect(sentEarly).toEqual([]);
    expect(report.kind).toBe("skipped");
    expect(await aws.drain("workflowSteps")).toEqual([
      { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 1 },
    ]);
  });

  it("creates one delivery when a webhook step is processed twice, and finishes the action once", async () => {
    // Prepare
    const enrollment = await enrolled([
      webhook("/once"),
      { type: "setProperty", property: "done", value: "yes" },
    ]);
    const advance = {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    } as const;

    const delays: number[] = [];
    const lane = steps.webhookLane;
    const watchedSteps: WorkflowStepsDeps = {
      ...steps,
      webhookLane: Object.assign(Object.create(lane), {
        send: (message: DeliveryAttemptMessage, delaySeconds = 0) => {
          delays.push(delaySeconds);
          return lane.send(message, 0);
        },
      }),
    };

    // Act
    await Promise.all([
      runWorkflowStep(watchedSteps, advance),
      runWorkflowStep(watchedSteps, advance),
    ]);
    const deliveryId = deliveryIdFor(
      enrollment.enrollmentId,
      enrollment.actions[0]?.actionId ?? "",
    );
    const laneMessages = await aws.drain("webhookLane");
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });
    // A duplicate of the lane's message makes sure of what followed, and changes nothing.
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess
    expect(new Set(laneMessages.map((m) => JSON.stringify(m)))).toEqual(
      new Set([JSON.stringify({ deliveryId, attempt: 1, host: receiverHost })]),
    );
    // The step that found the delivery made sends attempt 1 only once it cannot be in flight
    // without a lease (sent here at once, to see what follows).
    expect(delays.sort((a, b) => a - b)).toEqual([0, FIRST_ATTEMPT_RESEND_DELAY_SECONDS]);
    expect(receiver.requestsTo("/once")).toHaveLength(1);
    const stored = await tables.enrollments.get(enrollment.enrollmentId);
    expect(stored?.actions[0]?.status).toBe("succeeded");
    expect(stored?.currentIndex).toBe(1);
    expect(await aws.drain("workflowSteps")).toEqual([
      { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 1 },
    ]);
  });

  it("completes a workflow whose last action is a webhook in the lane, and frees the record for another enrollment", async () => {
    // Prepare
    const deliveryId = await startedDelivery("/last");
    const delivery = await tables.deliveries.get(deliveryId);
    const enrollment = await tables.enrollments.get(delivery?.enrollmentId ?? "");

    // Act
    const report = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });
    const again = { ...(enrollment as Enrollment), enrollmentId: randomUUID() };
    const reenrolled = tables.enrollments.create(again);

    // Assess
    expect((await tables.enrollments.get(enrollment?.enrollmentId ?? ""))?.status).toBe(
      "completed",
    );
    // The deliver function counts the enrollment as completed from this report.
    expect(report).toMatchObject({ kind: "sent", enrollmentCompleted: true });
    await expect(reenrolled).resolves.toBeUndefined();
    expect(await aws.drain("workflowSteps")).toEqual([]);
  });

  it("takes over the place of an enrollment that completed without releasing it", async () => {
    // Prepare: the consumer that completed the enrollment stopped before releasing its lock
    const enrollment = await enrolled([{ type: "setProperty", property: "a", value: "1" }]);
    await aws.documents.send(
      new UpdateCommand({
        TableName: aws.resources.tables.enrollments,
        Key: { pk: enrollment.enrollmentId, sk: "ENROLLMENT" },
        UpdateExpression: "SET #status = :completed, currentIndex = :one",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":completed": "completed", ":one": 1 },
      }),
    );
    const rival = { ...enrollment, enrollmentId: randomUUID() };

    // Act
    await tables.enrollments.create(rival);
    const third = tables.enrollments.create({ ...enrollment, enrollmentId: randomUUID() });

    // Assess
    await expect(third).rejects.toThrow(ConflictError);
    expect(await tables.enrollments.get(rival.enrollmentId)).toMatchObject({ status: "active" });
  });
});

describe("a webhook's outputs", () => {
  it("are written into the record before the enrollment moves on, and once when the lane finishes the action again", async () => {
    // Prepare
    const apiKey = `key-${randomUUID()}`;
    answers["/enrich"] = () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      // A receiver that echoes the request's API key back.
      body: JSON.stringify({ data: { tier: "gold", seats: 12, echo: apiKey } }),
    });
    const { enrollment, deliveryId } = await startedWebhook([
      {
        type: "webhook",
        url: receiver.url("/enrich"),
        method: "GET",
        authentication: { type: "apiKey", name: "X-Api-Key", location: "header", value: apiKey },
        body: { type: "all" },
        outputs: [
          { path: "data.tier", property: "tier" },
          { path: "data.missing", property: "nothing" },
          { path: "data.echo", property: "echo" },
        ],
      },
      { type: "setProperty", property: "synced", value: "yes" },
    ]);

    // Act: the attempt, then its message again after the consumer that moved the enrollment on
    // is taken to have stopped before it (the action is put back as it was)
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });
    await aws.documents.send(
      new UpdateCommand({
        TableName: aws.resources.tables.enrollments,
        Key: { pk: enrollment.enrollmentId, sk: "ENROLLMENT" },
        UpdateExpression: "SET currentIndex = :zero, actions[0].#status = :running",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":zero": 0, ":running": "running" },
      }),
    );
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess
    const record = await tables.records.get({
      objectType: "contacts",
      objectId: enrollment.objectId,
    });
    expect(record?.properties.tier).toEqual([
      expect.objectContaining({
        value: "gold",
        sourceType: "WORKFLOW",
        sourceId: enrollment.workflowId,
      }),
    ]);
    expect(record?.properties.nothing).toBeUndefined();
    // Outputs read the response as the attempt log shows it: never a secret of the request.
    expect(record?.properties.echo?.[0]?.value).toBe("***");
    expect((await tables.deliveries.get(deliveryId))?.outputResults).toEqual([
      { path: "data.tier", property: "tier", written: true, value: "gold" },
      { path: "data.missing", property: "nothing", written: false, reason: "path not found" },
      { path: "data.echo", property: "echo", written: true, value: "***" },
    ]);
    expect((await tables.enrollments.get(enrollment.enrollmentId))?.currentIndex).toBe(1);
    // One from each run; the engine starts the next action once, whatever the count.
    const next = { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 1 };
    expect(await aws.drain("workflowSteps")).toEqual([next, next]);
  });
});

describe("a webhook's outputs the record does not take", () => {
  it("say why in the action's outcome, and the enrollment moves on", async () => {
    // Prepare
    answers["/enrich-deleted"] = () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tier: "gold" }),
    });
    const { enrollment, deliveryId } = await startedWebhook([
      {
        type: "webhook",
        url: receiver.url("/enrich-deleted"),
        method: "GET",
        body: { type: "all" },
        outputs: [{ path: "tier", property: "tier" }],
      },
      { type: "setProperty", property: "synced", value: "yes" },
    ]);
    await aws.documents.send(
      new DeleteCommand({
        TableName: aws.resources.tables.records,
        Key: { pk: `contacts#${enrollment.objectId}`, sk: RECORD_SORT_KEY },
      }),
    );

    // Act
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess
    expect(
      await tables.records.get({ objectType: "contacts", objectId: enrollment.objectId }),
    ).toBeUndefined();
    expect((await tables.deliveries.get(deliveryId))?.outputResults).toEqual([
      { path: "tier", property: "tier", written: false, reason: "the record was deleted" },
    ]);
    expect((await tables.enrollments.get(enrollment.enrollmentId))?.currentIndex).toBe(1);
    expect(await aws.drain("workflowSteps")).toEqual([
      { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 1 },
    ]);
  });
});

describe("a webhook's outputs that read one long value many times", () => {
  it("keep at most 256 KiB of values between them, so the delivery stays storable", async () => {
    // Prepare: 20 outputs of the same 120 kB value
    const long = "é".repeat(60_000);
    answers["/enrich-long"] = () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ v: long }),
    });
    const { enrollment, deliveryId } = await startedWebhook([
      {
        type: "webhook",
        url: receiver.url("/enrich-long"),
        method: "GET",
        body: { type: "all" },
        outputs: Array.from({ length: 20 }, (_, i) => ({ path: "v", property: `copy${i}` })),
      },
      { type: "setProperty", property: "synced", value: "yes" },
    ]);

    // Act
    const report = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess
    expect(report.kind).toBe("sent");
    const delivery = await tables.deliveries.get(deliveryId);
    expect(delivery?.status).toBe("succeeded");
    const results = delivery?.outputResults ?? [];
    expect(results.filter((result) => result.written).map((result) => result.property)).toEqual([
      "copy0",
      "copy1",
    ]);
    expect(results[2]).toEqual({
      path: "v",
      property: "copy2",
      written: false,
      reason: "the written values together would pass 256 KiB",
    });
    const record = await tables.records.get({
      objectType: "contacts",
      objectId: enrollment.objectId,
    });
    expect(record?.properties.copy1?.[0]?.value).toBe(long);
    expect(record?.properties.copy2).toBeUndefined();
    expect((await tables.enrollments.get(enrollment.enrollmentId))?.currentIndex).toBe(1);
  });
});

/** One of two consumers of the same message sent the attempt; the other found it in flight. */
function expectOneSentOneBusy(outcomes: PromiseSettledResult<{ kind: string }>[]) {
  const sent = outcomes.filter((o) => o.status === "fulfilled" && o.value.kind === "sent");
  const busy = outcomes.filter(
    (o) => o.status === "rejected" && o.reason instanceof AttemptInFlightError,
  );
  expect(sent).toHaveLength(1);
  expect(busy).toHaveLength(1);
}

/** The writes to the deliveries table from now on, named by command and what they do. */
function deliveryWrites(): string[] {
  const name = `writes-${randomUUID()}`;
  const writes: string[] = [];
  aws.documents.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TableName?: string; UpdateExpression?: string };
      const command = context.commandName ?? "";
      if (input.TableName === aws.resources.tables.deliveries && !/Get|Query/.test(command)) {
        const expression = input.UpdateExpression ?? "";
        const what = expression.includes("leaseUntil = :until")
          ? "leased"
          : expression.includes("attemptCount = :attempt")
            ? "recorded"
            : "other";
        writes.push(`${command}: ${what}`);
      }
      return next(args);
    },
    { step: "initialize", name },
  );
  onTestFinished(() => {
    aws.documents.middlewareStack.remove(name);
  });
  return writes;
}

/** The delivery of a one-webhook workflow's enrollment, handed to the lane and not yet attempted. */
async function startedDelivery(path: string): Promise<string> {
  return (await startedWebhook([webhook(path)])).deliveryId;
}

/**
 * An enrollment into a workflow of `actions`, the first a webhook, whose step has built the
 * delivery and handed it to the lane (the lane's message taken away, not yet attempted).
 */
async function startedWebhook(actions: WorkflowAction[]) {
  const enrollment = await enrolled(actions);
  await runWorkflowStep(steps, {
    type: "advance",
    enrollmentId: enrollment.enrollmentId,
    actionIndex: 0,
  });
  await aws.drain("webhookLane");
  const deliveryId = deliveryIdFor(enrollment.enrollmentId, enrollment.actions[0]?.actionId ?? "");
  return { enrollment, deliveryId };
}

describe("delivery attempts under duplicate and concurrent messages", () => {
  it("sends a retry once when two consumers take the same message at once", async () => {
    // Prepare: attempt 1 fails, so attempt 2 is due
    answers["/race"] = (previous) => (previous === 0 ? { status: 503 } : { status: 200 });
    const deliveryId = await startedDelivery("/race");
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Act
    const outcomes = await Promise.allSettled([
      makeDeliveryAttempt(deliver, { deliveryId, attempt: 2 }),
      makeDeliveryAttempt(deliver, { deliveryId, attempt: 2 }),
    ]);
    const again = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 2 });

    // Assess
    expect(receiver.requestsTo("/race")).toHaveLength(2);
    expectOneSentOneBusy(outcomes);
    expect(again.kind).toBe("skipped");
    const stored = await tables.deliveries.getWithAttempts(deliveryId);
    expect(stored?.delivery.status).toBe("succeeded");
    expect(stored?.attempts.map((a) => a.number)).toEqual([1, 2]);
  });

  it("makes a first attempt without a lease write, and a duplicate of its message at the same moment sends it at most twice and records it once", async () => {
    // Prepare
    const deliveryId = await startedDelivery("/first");
    const single = await startedDelivery("/single");
    const writes = deliveryWrites();

    // Act
    await makeDeliveryAttempt(deliver, { deliveryId: single, attempt: 1 });
    const alone = writes.splice(0);
    const outcomes = await Promise.allSettled([
      makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 }),
      makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 }),
    ]);
    const again = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess: alone, the attempt is one write, its recording; SQS's rare duplicate of the
    // message, taken at the same moment, may send it again (at least once), never record it twice
    expect(alone).toEqual(["UpdateItemCommand: recorded"]);
    expect(receiver.requestsTo("/single")).toHaveLength(1);
    const requests = receiver.requestsTo("/first");
    expect(requests.length).toBeGreaterThanOrEqual(1);
    expect(requests.length).toBeLessThanOrEqual(2);
    expect(new Set(requests.map((r) => r.headers["x-delivery-attempt"]))).toEqual(new Set(["1"]));
    expect(outcomes.every((o) => o.status === "fulfilled")).toBe(true);
    const kinds = outcomes.map((o) => (o.status === "fulfilled" ? o.value.kind : "rejected"));
    expect(kinds.filter((kind) => kind === "sent")).toHaveLength(1);
    expect(again.kind).toBe("skipped");
    const stored = await tables.deliveries.getWithAttempts(deliveryId);
    expect(stored?.delivery.status).toBe("succeeded");
    expect(stored?.attempts.map((a) => a.number)).toEqual([1]);
  });

  it("takes the lease for a first attempt made late, or re-sent by the sweeper, so two consumers send it once", async () => {
    // Prepare: one first attempt taken up after its unleased time, one the sweeper re-sent
    const late = await startedDelivery("/late");
    const swept = await startedDelivery("/swept");
    const read = await tables.deliveries.get(swept);
    await tables.deliveries.postponeSweep(read as Delivery, {
      until: Date.now() + 60_000,
      resumed: true,
    });
    const later = { ...deliver, now: () => Date.now() + UNLEASED_FIRST_ATTEMPT_MS };

    // Act
    const lateOutcomes = await Promise.allSettled([
      makeDeliveryAttempt(later, { deliveryId: late, attempt: 1 }),
      makeDeliveryAttempt(later, { deliveryId: late, attempt: 1 }),
    ]);
    const sweptOutcomes = await Promise.allSettled([
      makeDeliveryAttempt(deliver, { deliveryId: swept, attempt: 1 }),
      makeDeliveryAttempt(deliver, { deliveryId: swept, attempt: 1 }),
    ]);

    // Assess
    expect(receiver.requestsTo("/late")).toHaveLength(1);
    expect(receiver.requestsTo("/swept")).toHaveLength(1);
    expectOneSentOneBusy(lateOutcomes);
    expectOneSentOneBusy(sweptOutcomes);
  });

  it("schedules exactly the next attempt after a 503, and a duplicate message schedules the same one", async () => {
    // Prepare
    answers["/flaky"] = () => ({ status: 503 });
    const deliveryId = await startedDelivery("/flaky");
    const before = Date.now();

    // Act
    const report = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });
    const duplicate = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess
    expect(report.kind).toBe("sent");
    expect(duplicate.kind).toBe("skipped");
    expect(receiver.requestsTo("/flaky")).toHaveLength(1);
    const calls = schedulerMock.commandCalls(CreateScheduleCommand);
    expect(calls).toHaveLength(2);
    const input = calls[0]?.args[0].input;
    expect(calls[1]?.args[0].input).toEqual(input);
    expect(input).toEqual({
      Name: `${deliveryId}-2`,
      GroupName: "webhook-retries",
      ScheduleExpression: expect.stringMatching(/^at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)$/),
      ScheduleExpressionTimezone: "UTC",
      FlexibleTimeWindow: { Mode: "OFF" },
      ActionAfterCompletion: "DELETE",
      Target: {
        Arn: SCHEDULER.laneQueueArn,
        RoleArn: SCHEDULER.roleArn,
        Input: JSON.stringify({ deliveryId, attempt: 2, host: receiverHost }),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
      },
    });
    const firesAt = Date.parse(`${/^at\((.*)\)$/.exec(input?.ScheduleExpression ?? "")?.[1]}Z`);
    expect(firesAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(firesAt).toBeLessThanOrEqual(Date.now() + 62_000);
    const stored = await tables.deliveries.getWithAttempts(deliveryId);
    expect(stored?.delivery).toMatchObject({ status: "retrying", nextAttempt: 2, attemptCount: 1 });
    expect((stored?.delivery.nextAttemptAt ?? 0) - (stored?.attempts[0]?.scheduledAt ?? 0)).toBe(
      60_000,
    );
  });

  it("skips a message for an attempt that is not the next one", async () => {
    // Prepare
    const deliveryId = await startedDelivery("/future");

    // Act
    const report = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 3 });

    // Assess
    expect(report).toEqual({ kind: "skipped", reason: "attempt 3 is not due (next is 1)" });
    expect(receiver.requestsTo("/future")).toHaveLength(0);
  });
});

describe("manual retries", () => {
  it("refuses to re-send a delivery that failed before it could be built, and changes nothing", async () => {
    // Prepare: a webhook action whose record is gone by the time the action runs
    const enrollment = await enrolled([webhook("/never")]);
    await aws.documents.send(
      new DeleteCommand({
        TableName: aws.resources.tables.records,
        Key: { pk: `contacts#${enrollment.objectId}`, sk: "RECORD" },
      }),
    );
    await runWorkflowStep(steps, {
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: 0,
    });
    const deliveryId = deliveryIdFor(
      enrollment.enrollmentId,
      enrollment.actions[0]?.actionId ?? "",
    );
    const before = await tables.deliveries.getWithAttempts(deliveryId);

    // Act
    const retry = retryDelivery(
      { deliveries: tables.deliveries, webhookLane: deliver.webhookLane, now: Date.now },
      deliveryId,
    );

    // Assess
    await expect(retry).rejects.toThrow(ConflictError);
    expect(before?.delivery).toMatchObject({ status: "failed", attemptCount: 0 });
    expect(before?.delivery.failureReason).toMatch(/no longer exists/);
    expect(await tables.deliveries.getWithAttempts(deliveryId)).toEqual(before);
    expect(await aws.drain("webhookLane")).toEqual([]);
    expect(receiver.requestsTo("/never")).toHaveLength(0);
  });
});

describe("targets the address policy refuses", () => {
  it("fail for good at the first attempt, with the reason, and are never retried", async () => {
    // Prepare: a client that allows no private targets, and a webhook to loopback
    const strictClient = createWebhookClient({ allowPrivateTargets: false, ca: certificate.cert });
    const deliveryId = await startedDelivery("/private");

    // Act
    const report = await makeDeliveryAttempt(
      { ...deliver, webhookClient: strictClient },
      { deliveryId, attempt: 1 },
    );
    await strictClient.close();

    // Assess
    expect(report.kind === "sent" && report.verdict.status).toBe("failed");
    const stored = await tables.deliveries.getWithAttempts(deliveryId);
    expect(stored?.delivery.status).toBe("failed");
    expect(stored?.delivery.failureReason).toMatch(/127\.0\.0\.1/);
    expect(stored?.attempts).toHaveLength(1);
    expect(schedulerMock.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(receiver.requestsTo("/private")).toHaveLength(0);
  });
});

describe("each receiver's share of the lane", () => {
  const quickLimits = {
    ...DEFAULT_HOST_ADMISSION,
    initialLimit: 1,
    maxLimit: 1,
    admitWaitMs: 0,
    breakerThreshold: 1,
  };

  it("puts an attempt back on the lane, unread and unsent, while its receiver has its share in flight", async () => {
    // Prepare: the receiver holds its only slot with an attempt that is not answered yet
    answers["/held"] = () => ({ hang: true });
    const admission = new HostAdmission(quickLimits);
    const slowClient = createWebhookClient({
      allowPrivateTargets: true,
      ca: certificate.cert,
      responseTimeoutMs: 1_000,
    });
    const held = await startedDelivery("/held");
    const waiting = await startedDelivery("/waiting");
    const holding = makeDeliveryAttempt(
      { ...deliver, admission, webhookClient: slowClient },
      { deliveryId: held, attempt: 1, host: receiverHost },
    );
    await eventually("the held request", () =>
      expect(receiver.requestsTo("/held")).toHaveLength(1),
    );

    // Act
    const report = await makeDeliveryAttempt(
      { ...deliver, admission },
      { deliveryId: waiting, attempt: 1, host: receiverHost, deferrals: 1 },
    );
    await holding;
    await slowClient.close();

    // Assess
    expect(report).toEqual({
      kind: "deferred",
      reason: `${receiverHost} has 1 attempts in flight, its limit`,
      delayMs: 2_000,
    });
    expect(receiver.requestsTo("/waiting")).toHaveLength(0);
    expect((await tables.deliveries.getWithAttempts(waiting))?.delivery).toMatchObject({
      status: "pending",
      attemptCount: 0,
    });
    expect(await aws.drain("webhookLane")).toEqual([]);
    const back = await eventually(
      "the deferred message back on the lane",
      async () => {
        const messages = await aws.drain("webhookLane");
        expect(messages).toHaveLength(1);
        return messages;
      },
      { timeoutMs: 8_000, intervalMs: 250 },
    );
    expect(back).toEqual([{ deliveryId: waiting, attempt: 1, host: receiverHost, deferrals: 2 }]);
  }, 20_000);

  it("fails an attempt unsent while its receiver's breaker is open, and retries it by the policy", async () => {
    // Prepare: one attempt that the receiver never answers in time opens its breaker
    const admission = new HostAdmission(quickLimits);
    const slowClient = createWebhookClient({
      allowPrivateTargets: true,
      ca: certificate.cert,
      responseTimeoutMs: 200,
    });
    answers["/hangs"] = () => ({ hang: true });
    const first = await startedDelivery("/hangs");
    const second = await startedDelivery("/hangs-too");
    const lane = { ...deliver, admission, webhookClient: slowClient };
    const timedOut = await makeDeliveryAttempt(lane, { deliveryId: first, attempt: 1 });

    // Act
    const report = await makeDeliveryAttempt(lane, {
      deliveryId: second,
      attempt: 1,
      host: receiverHost,
    });
    await slowClient.close();

    // Assess
    expect(timedOut.kind === "sent" && timedOut.attempt.error).toMatch(/timeout/);
    expect(report.kind === "sent" && report.paused).toBe(true);
    expect(receiver.requestsTo("/hangs-too")).toHaveLength(0);
    const stored = await tables.deliveries.getWithAttempts(second);
    expect(stored?.delivery).toMatchObject({ status: "retrying", nextAttempt: 2, attemptCount: 1 });
    expect(stored?.attempts).toEqual([
      expect.objectContaining({
        number: 1,
        statusCode: null,
        durationMs: 0,
        error: `paused: ${receiverHost} failed 1 attempts in a row (timeouts or refused connections); not sent while it recovers`,
      }),
    ]);
    const scheduled = schedulerMock
      .commandCalls(CreateScheduleCommand)
      .map((call) => call.args[0].input.Name);
    expect(scheduled).toContain(`${second}-2`);
  }, 20_000);
});
