import { randomUUID } from "node:crypto";
import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  SchedulerClient,
} from "@aws-sdk/client-scheduler";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AppsTable } from "#adapters/apps-table";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { RetrySchedules } from "#adapters/retry-schedules";
import { createWebhookClient, type WebhookClient } from "#adapters/webhook-client";
import { type DeliveryAttemptsDeps, makeDeliveryAttempt } from "#app/delivery-attempts";
import { type CancellationDeps, cancelEnrollment } from "#app/enrollment-cancellation";
import { runWorkflowStep, startWebhook, type WorkflowStepsDeps } from "#app/workflow-steps";
import { deliveryIdFor, ENROLLMENT_CANCELLED, failedDelivery, newDelivery } from "#domain/delivery";
import { type Enrollment, newEnrollment } from "#domain/enrollment";
import { ConflictError, NotFoundError, StaleStateError } from "#domain/errors";
import { HostAdmission } from "#domain/host-admission";
import { applyPropertyChanges } from "#domain/record";
import type { WebhookAction, WorkflowAction } from "#domain/workflow";
import { eventually } from "#test/eventually";
import {
  makeTestCertificate,
  type ReceiverAnswer,
  startReceiver,
  type TestCertificate,
  type TestReceiver,
} from "#test/https-receiver";
import { type LocalAws, startLocalAws } from "#test/local-aws";

/** A response timeout short enough that an attempt to a hanging receiver ends within a test. */
const SHORT_RESPONSE_TIMEOUT_MS = 500;

let aws: LocalAws;
let certificate: TestCertificate;
let receiver: TestReceiver;
let webhookClient: WebhookClient;
let answers: Record<string, () => ReceiverAnswer> = {};
const schedulerMock = mockClient(SchedulerClient);
const SCHEDULER = {
  groupName: "webhook-retries",
  roleArn: "arn:aws:iam::123456789012:role/fire",
  laneQueueArn: "arn:aws:sqs:us-east-1:123456789012:webhook-lane",
  deadLetterArn: undefined,
};

let enrollments: EnrollmentsTable;
let deliveries: DeliveriesTable;
let records: RecordsTable;
let steps: WorkflowStepsDeps;
let deliver: DeliveryAttemptsDeps;
let cancel: CancellationDeps;
let receiverHost: string;

beforeAll(async () => {
  aws = await startLocalAws();
  certificate = makeTestCertificate();
  receiver = await startReceiver(certificate, (request) => {
    const path = request.url.split("?")[0] ?? "";
    return answers[path]?.() ?? { status: 200, body: "ok" };
  });
  receiverHost = new URL(receiver.url("/")).host;
  webhookClient = createWebhookClient({
    allowPrivateTargets: true,
    ca: certificate.cert,
    responseTimeoutMs: SHORT_RESPONSE_TIMEOUT_MS,
  });
  const names = aws.resources.tables;
  enrollments = new EnrollmentsTable(aws.documents, names.enrollments);
  deliveries = new DeliveriesTable(aws.documents, names.deliveries);
  records = new RecordsTable(aws.documents, names.records);
  const workflowSteps = new WorkflowStepsQueue(aws.sqs, aws.resources.queues.workflowSteps.url);
  const webhookLane = new WebhookLaneQueue(aws.sqs, aws.resources.queues.webhookLane.url);
  const scheduler = new SchedulerClient({ region: "us-east-1" });
  steps = {
    enrollments,
    records,
    deliveries,
    workflowSteps,
    webhookLane,
    now: Date.now,
    timeScale: 1,
    stalledAfterMs: 30_000,
    portalId: 1,
  };
  deliver = {
    enrollments,
    records,
    deliveries,
    apps: new AppsTable(aws.documents, names.apps),
    workflowSteps,
    webhookLane,
    retrySchedules: new RetrySchedules(scheduler, SCHEDULER),
    webhookClient,
    admission: new HostAdmission(),
    now: Date.now,
    random: () => 0,
    leaseMs: 90_000,
  };
  cancel = {
    enrollments,
    deliveries,
    // As the API has it: the group alone.
    retrySchedules: new RetrySchedules(scheduler, { groupName: SCHEDULER.groupName }),
    now: Date.now,
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
  schedulerMock.on(CreateScheduleCommand).resolves({ ScheduleArn: "arn:aws:scheduler:::s/x" });
  schedulerMock.on(DeleteScheduleCommand).resolves({});
  answers = {};
  await aws.drain("workflowSteps");
  await aws.drain("webhookLane");
});

/** A contact and an enrollment of it into a workflow of the given actions, not yet started. */
async function enrolled(actions: WorkflowAction[]): Promise<Enrollment> {
  const key = { objectType: "contacts" as const, objectId: randomUUID() };
  await records.update(
    key,
    (current) =>
      applyPropertyChanges(
        current,
        key,
        { email: "ada@example.com" },
        { sourceType: "API", sourceId: null, sourceLabel: null, timestamp: Date.now() },
      ).record,
  );
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId: randomUUID(),
    ...key,
    definition: actions.map((action) => ({ ...action, id: randomUUID() })),
    now: Date.now(),
  });
  await enrollments.create(enrollment);
  return enrollment;
}

const webhook = (path: string): WebhookAction => ({
  type: "webhook",
  url: receiver.url(path),
  method: "POST",
  body: { type: "all" },
});

/** The error `work` was refused with; a test fails when it succeeds. */
async function refusal(work: Promise<unknown>): Promise<Error> {
  try {
    await work;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a refusal, got none");
}

const advance = (enrollment: Enrollment, actionIndex: number) =>
  ({ type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex }) as const;

const deliveryOf = (enrollment: Enrollment, index = 0) =>
  deliveryIdFor(enrollment.enrollmentId, enrollment.actions[index]?.actionId ?? "");

describe("cancelling an enrollment", () => {
  it("fails its retrying delivery, deletes the retry's schedule, frees the record, and a retry that fires after sends nothing", async () => {
    // Prepare: the webhook failed once with a 503 and waits for its retry
    answers["/down"] = () => ({ status: 503 });
    const enrollment = await enrolled([
      webhook("/down"),
      { type: "setProperty", property: "after", value: "yes" },
    ]);
    await runWorkflowStep(steps, advance(enrollment, 0));
    const deliveryId = deliveryOf(enrollment);
    await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1, host: receiverHost });
    expect((await deliveries.get(deliveryId))?.status).toBe("retrying");

    // Act
    const cancelled = await cancelEnrollment(cancel, enrollment.enrollmentId);
    const retry = await makeDeliveryAttempt(deliver, {
      deliveryId,
      attempt: 2,
      host: receiverHost,
    });
    const lateStep = await runWorkflowStep(steps, advance(enrollment, 1));
    const again = enrollments.create({ ...enrollment, enrollmentId: randomUUID() });

    // Assess
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.currentActionId).toBeNull();
    expect(cancelled.deliveries).toEqual([
      expect.objectContaining({
        deliveryId,
        status: "failed",
        failureReason: ENROLLMENT_CANCELLED,
        nextAttemptAt: null,
      }),
    ]);
    expect(schedulerMock.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input)).toEqual([
      { Name: `${deliveryId}-2`, GroupName: SCHEDULER.groupName },
    ]);
    expect(retry.kind).toBe("skipped");
    expect(lateStep.kind).toBe("skipped");
    expect(receiver.requestsTo("/down")).toHaveLength(1);
    const record = await records.get({ objectType: "contacts", objectId: enrollment.objectId });
    expect(record?.properties.after).toBeUndefined();
    expect(await aws.drain("workflowSteps")).toEqual([]);
    await expect(again).resolves.toBeUndefined();
  });

  it("refuses an enrollment that has ended with a 409, and an unknown one with a 404", async () => {
    // Prepare
    const done = await enrolled([{ type: "setProperty", property: "a", value: "1" }]);
    await runWorkflowStep(steps, advance(done, 0));
    const cancelledOnce = await enrolled([{ type: "delay", seconds: 3600 }]);
    await cancelEnrollment(cancel, cancelledOnce.enrollmentId);

    // Act
    const completed = await refusal(cancelEnrollment(cancel, done.enrollmentId));
    const twice = await refusal(cancelEnrollment(cancel, cancelledOnce.enrollmentId));
    const unknown = await refusal(cancelEnrollment(cancel, randomUUID()));

    // Assess
    expect(completed).toBeInstanceOf(ConflictError);
    expect(completed.message).toMatch(/is completed; only active or waiting/);
    expect(twice).toBeInstanceOf(ConflictError);
    expect(twice.message).toMatch(/is cancelled/);
    expect(unknown).toBeInstanceOf(NotFoundError);
  });

  it("wins or waits out every race with the lane, and a cancelled enrollment never moves again", async () => {
    // Prepare
    const raced = await Promise.all(
      Array.from({ length: 8 }, () =>
        enrolled([
          { type: "setProperty", property: "first", value: "1" },
          { type: "setProperty", property: "second", value: "2" },
        ]),
      ),
    );

    // Act: each cancel races the step that runs the first action and moves the enrollment on
    await Promise.all(
      raced.flatMap((enrollment) => [
        cancelEnrollment(cancel, enrollment.enrollmentId),
        runWorkflowStep(steps, advance(enrollment, 0)),
      ]),
    );
    const queued = (await aws.drain("workflowSteps")) as Array<ReturnType<typeof advance>>;
    await Promise.all(queued.map((message) => runWorkflowStep(steps, message)));

    // Assess
    for (const enrollment of raced) {
      const stored = await enrollments.get(enrollment.enrollmentId);
      expect(stored?.status).toBe("cancelled");
      expect(stored?.actions[1]?.status).toBe("pending");
      const record = await records.get({ objectType: "contacts", objectId: enrollment.objectId });
      expect(record?.properties.second).toBeUndefined();
    }
  });

  it("lets no step finish an action of a cancelled enrollment it read before the cancel", async () => {
    // Prepare: a step read the enrollment, then the cancel happened
    const enrollment = await enrolled([{ type: "delay", seconds: 1 }]);
    await cancelEnrollment(cancel, enrollment.enrollmentId);

    // Act
    const finish = await refusal(
      enrollments.finishAction(enrollment, 0, { now: Date.now(), status: "succeeded" }),
    );
    const fail = await refusal(
      enrollments.failAction(enrollment, 0, { now: Date.now(), reason: "x" }),
    );
    const start = await refusal(enrollments.startAction(enrollment, 0, { now: Date.now() }));

    // Assess
    expect(finish).toBeInstanceOf(StaleStateError);
    expect(fail).toBeInstanceOf(StaleStateError);
    expect(start).toBeInstanceOf(StaleStateError);
    expect((await enrollments.get(enrollment.enrollmentId))?.status).toBe("cancelled");
  });

  it("records nothing over the cancel of an attempt in flight: the delivery stays failed and the enrollment cancelled", async () => {
    // Prepare: the receiver hangs, so attempt 1 is in flight while the cancel happens
    answers["/hang"] = () => ({ hang: true });
    const enrollment = await enrolled([
      webhook("/hang"),
      { type: "setProperty", property: "after", value: "yes" },
    ]);
    await runWorkflowStep(steps, advance(enrollment, 0));
    const deliveryId = deliveryOf(enrollment);
    const inFlight = makeDeliveryAttempt(deliver, { deliveryId, attempt: 1, host: receiverHost });
    await eventually("the attempt to reach the receiver", () =>
      expect(receiver.requestsTo("/hang")).toHaveLength(1),
    );

    // Act
    const cancelled = await cancelEnrollment(cancel, enrollment.enrollmentId);
    const report = await inFlight;

    // Assess
    expect(cancelled.status).toBe("cancelled");
    expect(report.kind).toBe("skipped");
    expect(await deliveries.get(deliveryId)).toMatchObject({
      status: "failed",
      failureReason: ENROLLMENT_CANCELLED,
      nextAttempt: null,
    });
    expect(schedulerMock.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(schedulerMock.commandCalls(DeleteScheduleCommand)).toHaveLength(0);
    expect((await enrollments.get(enrollment.enrollmentId))?.status).toBe("cancelled");
  });

  it("leaves a webhook step that read the enrollment before the cancel nothing to send", async () => {
    // Prepare: a step read the enrollment at its webhook action, then the cancel happened before
    // the step created the delivery
    const enrollment = await enrolled([
      webhook("/after-cancel"),
      { type: "setProperty", property: "after", value: "yes" },
    ]);
    const action = enrollment.definition[0] as WebhookAction & { id: string };
    const deliveryId = deliveryOf(enrollment);
    await cancelEnrollment(cancel, enrollment.enrollmentId);

    // Act: the step goes on with what it read, then the lane gets to the attempt
    await startWebhook(steps, enrollment, 0, action);
    const report = await makeDeliveryAttempt(deliver, { deliveryId, attempt: 1 });

    // Assess
    expect(report.kind).toBe("skipped");
    expect(receiver.requestsTo("/after-cancel")).toHaveLength(0);
    expect(await deliveries.get(deliveryId)).toMatchObject({
      status: "failed",
      failureReason: ENROLLMENT_CANCELLED,
      attemptCount: 0,
      url: receiver.url("/after-cancel"),
    });
    // The step's body for it was taken back: the delivery was never built.
    expect((await deliveries.get(deliveryId))?.body).toBeUndefined();
    expect((await enrollments.get(enrollment.enrollmentId))?.status).toBe("cancelled");
  });

  it("reads again when the webhook's delivery appears between its read and its write", async () => {
    // Prepare: the cancel read the enrollment at a webhook action that had no delivery yet; the
    // engine then built the delivery
    const enrollment = await enrolled([webhook("/appearing")]);
    const deliveryId = deliveryOf(enrollment);
    const action = { ...webhook("/appearing"), id: enrollment.actions[0]?.actionId ?? "" };
    await deliveries.create(
      newDelivery({ enrollment, actionIndex: 0, action, body: "{}", now: Date.now() }),
    );

    // Act
    const unstarted = newDelivery({ enrollment, actionIndex: 0, action, body: undefined, now: 0 });
    const stale = enrollments.cancel(enrollment, Date.now(), [
      deliveries.preemption(failedDelivery(unstarted, ENROLLMENT_CANCELLED)),
    ]);
    await expect(stale).rejects.toThrow(StaleStateError);
    const cancelled = await cancelEnrollment(cancel, enrollment.enrollmentId);

    // Assess
    expect(cancelled.status).toBe("cancelled");
    expect(await deliveries.get(deliveryId)).toMatchObject({
      status: "failed",
      failureReason: ENROLLMENT_CANCELLED,
    });
  });
});
