import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { ReplaysTable } from "#adapters/replays-table";
import {
  type ReplayPace,
  type ReplayStepDeps,
  readReplay,
  runReplayStep,
  startReplay,
} from "#app/replays";
import { type Delivery, ENROLLMENT_CANCELLED, newDelivery } from "#domain/delivery";
import { newEnrollment } from "#domain/enrollment";
import type { ReplayStepMessage } from "#domain/messages";
import type { WebhookAction } from "#domain/workflow";
import { eventually } from "#test/eventually";
import { type LocalAws, startLocalAws } from "#test/local-aws";

let aws: LocalAws;
let deliveries: DeliveriesTable;
let replays: ReplaysTable;
let workflowSteps: WorkflowStepsQueue;
let stepDeps: ReplayStepDeps;

/** Fast enough that no send waits: every test but the pacing one leaves delays out. */
const UNPACED: ReplayPace = { perSecond: 1_000, perStep: 4 };
const HOST = "hooks.example.com";

beforeAll(async () => {
  aws = await startLocalAws();
  deliveries = new DeliveriesTable(aws.documents, aws.resources.tables.deliveries);
  replays = new ReplaysTable(aws.documents, aws.resources.tables.deliveries);
  workflowSteps = new WorkflowStepsQueue(aws.sqs, aws.resources.queues.workflowSteps.url);
  stepDeps = {
    replays,
    deliveries,
    workflowSteps,
    webhookLane: new WebhookLaneQueue(aws.sqs, aws.resources.queues.webhookLane.url),
    now: Date.now,
    pace: UNPACED,
    stalledAfterMs: 60_000,
  };
});

afterAll(async () => {
  await aws?.stop();
});

beforeEach(async () => {
  await aws.drain("workflowSteps");
  await aws.drain("webhookLane");
});

const action: WebhookAction & { id: string } = {
  id: "a1",
  type: "webhook",
  url: `https://${HOST}/in`,
  method: "POST",
  body: { type: "all" },
};

/** A delivery of `workflowId` created at `createdAt`, stored as it stands after `change`. */
async function stored(
  workflowId: string,
  createdAt: number,
  change: Partial<Delivery> = {},
): Promise<Delivery> {
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId,
    objectType: "contacts",
    objectId: "1",
    definition: [action],
    now: createdAt,
  });
  const delivery: Delivery = {
    ...newDelivery({ enrollment, actionIndex: 0, action, body: "{}", now: createdAt }),
    status: "failed",
    attemptCount: 2,
    nextAttempt: null,
    nextAttemptAt: null,
    firstFailedAt: createdAt,
    failureReason: "410 Gone is not retried",
    ...change,
  };
  await deliveries.create(delivery);
  return delivery;
}

/** Starts a replay of the window and returns its id, with the first step's message taken off the lane. */
async function started(workflowId: string, since: number, until: number): Promise<string> {
  const { replayId } = await startReplay(
    { replays, workflowSteps, now: Date.now, newId: randomUUID },
    {
      workflowId,
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
    },
  );
  expect(await stepsOf(replayId)).toEqual([{ type: "replay", replayId, step: 0 }]);
  return replayId;
}

/**
 * The replay's messages on the workflow-steps lane, which this takes off it: a replay of a test
 * before may still be sending its paced steps, and those are not this test's.
 */
async function stepsOf(replayId: string): Promise<unknown[]> {
  const messages = await aws.drain("workflowSteps");
  return messages.filter((message) => (message as { replayId?: string }).replayId === replayId);
}

/** Runs the replay's steps one after another, as the lane would, until it completes. */
async function runToEnd(replayId: string, deps: ReplayStepDeps = stepDeps): Promise<number> {
  let steps = 0;
  for (;;) {
    const replay = await replays.get(replayId);
    if (replay?.status !== "running") return steps;
    const message: ReplayStepMessage = { type: "replay", replayId, step: replay.steps };
    await runReplayStep(deps, message);
    steps += 1;
  }
}

describe("a replay", () => {
  it("re-fires every delivery of the workflow that failed for good in the window, once each, step by step", async () => {
    // Prepare
    const workflowId = randomUUID();
    const failed = [];
    for (let i = 0; i < 9; i++) failed.push(await stored(workflowId, 10_000 + i));
    const neverBuilt = await stored(workflowId, 10_100, { attemptCount: 0 });
    const cancelled = await stored(workflowId, 10_101, { failureReason: ENROLLMENT_CANCELLED });
    const succeeded = await stored(workflowId, 10_102, { status: "succeeded" });
    const before = await stored(workflowId, 9_000);
    const elsewhere = await stored(randomUUID(), 10_005);
    const replayId = await started(workflowId, 10_000, 11_000);

    // Act
    const steps = await runToEnd(replayId);

    // Assess
    expect(steps).toBe(3);
    expect(await readReplay({ replays }, replayId)).toMatchObject({
      status: "completed",
      matched: 11,
      replayed: 9,
    });
    const sent = (await aws.drain("webhookLane")) as Array<{ deliveryId: string }>;
    expect(sent.map((message) => message.deliveryId).sort()).toEqual(
      failed.map((d) => d.deliveryId).sort(),
    );
    expect(sent).toContainEqual({ deliveryId: failed[0]?.deliveryId, attempt: 3, host: HOST });
    for (const delivery of failed) {
      expect(await deliveries.get(delivery.deliveryId)).toMatchObject({
        status: "pending",
        retryMode: "auto",
        attemptCount: 2,
        nextAttempt: 3,
        policyFromAttempt: 3,
        firstFailedAt: null,
        failureReason: null,
        replayedBy: replayId,
      });
    }
    for (const untouched of [neverBuilt, cancelled, succeeded, before, elsewhere]) {
      expect((await deliveries.get(untouched.deliveryId))?.status).toBe(untouched.status);
      expect((await deliveries.get(untouched.deliveryId))?.replayedBy).toBeUndefined();
    }
  });

  it("counts a step run again after a crash once, sends again what was not attempted, and re-fires nothing twice", async () => {
    // Prepare: the first run of step 0 re-fires its deliveries, then cannot reach the lane
    const workflowId = randomUUID();
    const failed = [];
    for (let i = 0; i < 3; i++) failed.push(await stored(workflowId, 20_000 + i));
    const replayId = await started(workflowId, 20_000, 21_000);
    const message: ReplayStepMessage = { type: "replay", replayId, step: 0 };
    const unreachable = new WebhookLaneQueue(
      aws.sqs,
      `${aws.resources.queues.webhookLane.url}-missing`,
    );
    await expect(
      runReplayStep({ ...stepDeps, webhookLane: unreachable }, message),
    ).rejects.toThrow();
    // Meanwhile, one re-fired delivery was attempted and failed again.
    const [attempted] = failed as [Delivery];
    await deliveries.claimAttempt(attempted.deliveryId, 3, Date.now(), 60_000);
    const again = await deliveries.get(attempted.deliveryId);
    await deliveries.recordAttempt(
      again as Delivery,
      {
        number: 3,
        scheduledAt: Date.now(),
        sentAt: Date.now(),
        statusCode: 410,
        error: null,
        durationMs: 5,
        responseBody: null,
      },
      { status: "failed", reason: "410 Gone is not retried" },
      Date.now(),
    );

    // Act: the message comes back; later a duplicate of it too
    const rerun = await runReplayStep(stepDeps, message);
    const duplicate = await runReplayStep(stepDeps, message);

    // Assess
    expect(rerun).toMatchObject({ kind: "stepped", matched: 3, replayed: 3, refired: 0 });
    expect(duplicate.kind).toBe("skipped");
    expect(await readReplay({ replays }, replayId)).toMatchObject({
      status: "completed",
      matched: 3,
      replayed: 3,
    });
    const sent = (await aws.drain("webhookLane")) as Array<{ deliveryId: string; attempt: number }>;
    expect(sent.map((m) => m.deliveryId).sort()).toEqual(
      failed
        .slice(1)
        .map((d) => d.deliveryId)
        .sort(),
    );
    expect(sent.every((m) => m.attempt === 3)).toBe(true);
    expect(await deliveries.get(attempted.deliveryId)).toMatchObject({
      status: "failed",
      attemptCount: 3,
      replayedBy: replayId,
    });
  });

  it("sends the next step again when a message of a counted step finds the replay stalled, and only then", async () => {
    // Prepare: step 0 is counted and its consumer (we pretend) never sent step 1
    const workflowId = randomUUID();
    for (let i = 0; i < 6; i++) await stored(workflowId, 30_000 + i);
    const replayId = await started(workflowId, 30_000, 31_000);
    const message: ReplayStepMessage = { type: "replay", replayId, step: 0 };
    await runReplayStep(stepDeps, message);
    const sentByStep = await eventually("step 1's message to be due", async () => {
      const messages = await stepsOf(replayId);
      expect(messages).toHaveLength(1);
      return messages;
    });

    // Act
    const fresh = await runReplayStep(stepDeps, message);
    const resentFresh = await stepsOf(replayId);
    const stalled = await runReplayStep({ ...stepDeps, stalledAfterMs: 0 }, message);
    const resentStalled = await stepsOf(replayId);

    // Assess
    expect(sentByStep).toEqual([{ type: "replay", replayId, step: 1 }]);
    expect(fresh.kind).toBe("skipped");
    expect(resentFresh).toEqual([]);
    expect(stalled.kind).toBe("skipped");
    expect(resentStalled).toEqual([{ type: "replay", replayId, step: 1 }]);
    expect((await replays.get(replayId))?.steps).toBe(1);
  });

  it("paces its sends to the webhook lane: at most perSecond a second, and the next step after them", async () => {
    // Prepare
    const pace: ReplayPace = { perSecond: 4, perStep: 10 };
    const workflowId = randomUUID();
    // One more than a step takes, so that a next step follows.
    for (let i = 0; i < 11; i++) await stored(workflowId, 40_000 + i);
    const replayId = await started(workflowId, 40_000, 41_000);

    // Act
    const began = Date.now();
    await runReplayStep({ ...stepDeps, pace }, { type: "replay", replayId, step: 0 });
    const arrivals: number[] = [];
    while (arrivals.length < 10 && Date.now() - began < 10_000) {
      const { Messages = [] } = await aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: aws.resources.queues.webhookLane.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
        }),
      );
      for (const _ of Messages) arrivals.push(Date.now() - began);
      await sleep(100);
    }
    const nextStep = await eventually(
      "the next step's message",
      async () => {
        const messages = await aws.drain("workflowSteps");
        expect(messages).toHaveLength(1);
        return Date.now() - began;
      },
      { timeoutMs: 10_000 },
    );

    // Assess: 4 now, 4 a second later, 2 a second after that, the next step after the last
    expect(arrivals).toHaveLength(10);
    expect(arrivals.filter((at) => at < 900)).toHaveLength(4);
    expect(arrivals.filter((at) => at < 1_900)).toHaveLength(8);
    expect(Math.max(...arrivals)).toBeGreaterThanOrEqual(1_900);
    expect(nextStep).toBeGreaterThanOrEqual(2_900);
  });
});
