import { describe, expect, it } from "vitest";
import {
  ATTEMPT_LEASE_MS,
  type Attempt,
  answeredAttempt,
  type Delivery,
  deliveryIdFor,
  deliveryListView,
  deliveryView,
  FIRST_ATTEMPT_RESEND_DELAY_SECONDS,
  failedDelivery,
  judgeAttempt,
  newDelivery,
  retryScheduleName,
  UNLEASED_FIRST_ATTEMPT_MS,
  unansweredAttempt,
} from "#domain/delivery";
import { newEnrollment } from "#domain/enrollment";
import { ATTEMPT_STALL_MS } from "#domain/open-work";
import type { WebhookAction } from "#domain/workflow";
import { queues } from "#shared/contract";

const delivery: Delivery = {
  deliveryId: "d",
  enrollmentId: "e",
  workflowId: "w",
  actionId: "a",
  actionIndex: 0,
  objectType: "contacts",
  objectId: "1",
  method: "POST",
  url: "https://example.com/",
  status: "pending",
  retryMode: "auto",
  attemptCount: 0,
  nextAttempt: 1,
  nextAttemptAt: 1_000_000,
  firstFailedAt: null,
  failureReason: null,
  createdAt: 1_000_000,
  updatedAt: 1_000_000,
};

const attempt = (statusCode: number | null, overrides: Partial<Attempt> = {}): Attempt => ({
  number: 1,
  scheduledAt: 1_000_000,
  sentAt: 1_000_500,
  statusCode,
  error: statusCode === null ? "connect timeout after 3000 ms" : null,
  durationMs: 100,
  responseBody: null,
  ...overrides,
});

describe("judging an attempt", () => {
  it("ends the delivery on a 2xx", () => {
    expect(judgeAttempt(delivery, attempt(204), undefined)).toEqual({ status: "succeeded" });
  });

  it("fails for good on a 404, with the reason", () => {
    const verdict = judgeAttempt(delivery, attempt(404), undefined);
    expect(verdict.status).toBe("failed");
    expect(verdict.status === "failed" && verdict.reason).toMatch(/404/);
  });

  it("schedules the next attempt a minute after the first failure, on the scheduled time", () => {
    // Act
    const verdict = judgeAttempt(delivery, attempt(null), undefined, () => 0);

    // Assess
    expect(verdict).toEqual({
      status: "retrying",
      nextAttempt: 2,
      nextAttemptAt: 1_060_000,
      delayMs: 60_000,
      firstFailedAt: 1_000_000,
      firesAt: 1_000_600 + 60_000,
    });
  });

  it("counts the window from the first failure and fails for good when it is spent", () => {
    // Prepare: attempt 17 of a receiver that always failed, 64.5 hours after the first failure
    const late = { ...delivery, status: "retrying" as const, firstFailedAt: 0, nextAttempt: 17 };
    const scheduledAt = 64.5 * 3600_000;

    // Act
    const verdict = judgeAttempt(
      late,
      attempt(503, { number: 17, scheduledAt }),
      undefined,
      () => 0,
    );

    // Assess
    expect(verdict.status).toBe("failed");
    expect(verdict.status === "failed" && verdict.reason).toMatch(/^retry window exhausted/);
  });

  it("starts the delays over at a minute for a replayed delivery, whatever its attempt number", () => {
    // Prepare
    const replayed: Delivery = { ...delivery, attemptCount: 17, policyFromAttempt: 18 };

    // Act
    const first = judgeAttempt(replayed, attempt(503, { number: 18 }), undefined);
    const second = judgeAttempt(
      { ...replayed, firstFailedAt: 1_000_000 },
      attempt(503, { number: 19, scheduledAt: 1_060_000 }),
      undefined,
    );
    const unreplayed = judgeAttempt(delivery, attempt(503, { number: 18 }), undefined);

    // Assess
    expect(first).toMatchObject({ status: "retrying", nextAttempt: 19, delayMs: 60_000 });
    expect(second).toMatchObject({ status: "retrying", nextAttempt: 20, delayMs: 120_000 });
    expect(unreplayed).toMatchObject({ status: "retrying", delayMs: 8 * 3600_000 });
  });

  it("gives a manual retry of a failed delivery one attempt only", () => {
    const once = { ...delivery, retryMode: "once" as const };
    const verdict = judgeAttempt(once, attempt(503), undefined);
    expect(verdict.status).toBe("failed");
  });
});

describe("a first attempt without a lease", () => {
  it("ends, lease and all, before anything but a duplicate message can send attempt 1", () => {
    // SQS delays a message by at most 15 minutes.
    const SQS_MAX_DELAY_SECONDS = 900;

    expect(ATTEMPT_LEASE_MS).toBeGreaterThan(queues.webhookLane.consumerTimeoutSeconds * 1000);
    expect(UNLEASED_FIRST_ATTEMPT_MS).toBeGreaterThan(ATTEMPT_LEASE_MS);
    expect(UNLEASED_FIRST_ATTEMPT_MS).toBeLessThan(ATTEMPT_STALL_MS);
    expect(FIRST_ATTEMPT_RESEND_DELAY_SECONDS * 1000).toBeGreaterThanOrEqual(
      UNLEASED_FIRST_ATTEMPT_MS,
    );
    expect(FIRST_ATTEMPT_RESEND_DELAY_SECONDS).toBeLessThanOrEqual(SQS_MAX_DELAY_SECONDS);
  });
});

describe("names", () => {
  it("derives one delivery id per enrollment and action, shaped like a UUID", () => {
    expect(deliveryIdFor("e1", "a1")).toBe(deliveryIdFor("e1", "a1"));
    expect(deliveryIdFor("e1", "a1")).not.toBe(deliveryIdFor("e1", "a2"));
    expect(deliveryIdFor("e1", "a1")).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
  });

  it("names retry schedules within Scheduler's 64-character limit", () => {
    const name = retryScheduleName(deliveryIdFor("e", "a"), 17);
    expect(name.length).toBeLessThanOrEqual(64);
    expect(name).toMatch(/^[0-9a-zA-Z-_.]+$/);
  });
});

describe("building deliveries and attempts", () => {
  const action: WebhookAction & { id: string } = {
    id: "a1",
    type: "webhook",
    url: "https://crm.example.com/hook?x=1",
    method: "POST",
    authentication: { type: "signature", appId: "app-1" },
    body: { type: "all" },
  };
  const enrollment = newEnrollment({
    enrollmentId: "e1",
    workflowId: "w1",
    objectType: "deals",
    objectId: "42",
    definition: [action],
    now: 1_000,
  });

  it("starts a delivery pending, its first attempt due now, with the action's request", () => {
    // Act
    const delivery = newDelivery({ enrollment, actionIndex: 0, action, body: "{}", now: 5_000 });

    // Assess
    expect(delivery).toEqual({
      deliveryId: deliveryIdFor("e1", "a1"),
      enrollmentId: "e1",
      workflowId: "w1",
      actionId: "a1",
      actionIndex: 0,
      objectType: "deals",
      objectId: "42",
      method: "POST",
      url: "https://crm.example.com/hook?x=1",
      authentication: { type: "signature", appId: "app-1" },
      body: "{}",
      status: "pending",
      retryMode: "auto",
      attemptCount: 0,
      nextAttempt: 1,
      nextAttemptAt: 5_000,
      firstFailedAt: null,
      failureReason: null,
      createdAt: 5_000,
      updatedAt: 5_000,
    });
  });

  it("leaves authentication out of a delivery whose action has none", () => {
    // Act
    const delivery = newDelivery({
      enrollment,
      actionIndex: 0,
      action: { ...action, authentication: undefined },
      body: undefined,
      now: 5_000,
    });

    // Assess
    expect(Object.keys(delivery)).not.toContain("authentication");
  });

  it("fails a delivery that can never be made for good, without its body", () => {
    // Prepare
    const delivery = newDelivery({ enrollment, actionIndex: 0, action, body: "{}", now: 5_000 });

    // Act
    const failed = failedDelivery(delivery, "deals/42 no longer exists");

    // Assess
    expect(Object.keys(failed)).not.toContain("body");
    expect(failed).toEqual({
      ...delivery,
      body: undefined,
      status: "failed",
      nextAttempt: null,
      nextAttemptAt: null,
      failureReason: "deals/42 no longer exists",
    });
  });

  it("records an answered attempt with its status and response body", () => {
    // Act
    const made = answeredAttempt(
      { number: 2, scheduledAt: 60_000, sentAt: 60_250 },
      { statusCode: 503, body: "busy" },
      40,
    );

    // Assess
    expect(made).toEqual({
      number: 2,
      scheduledAt: 60_000,
      sentAt: 60_250,
      statusCode: 503,
      error: null,
      durationMs: 40,
      responseBody: "busy",
    });
  });

  it("records an unanswered attempt with its error and no status", () => {
    // Act
    const made = unansweredAttempt(
      { number: 1, scheduledAt: 0, sentAt: 10 },
      "connect timeout after 3000 ms",
      3_000,
    );

    // Assess
    expect(made).toEqual({
      number: 1,
      scheduledAt: 0,
      sentAt: 10,
      statusCode: null,
      error: "connect timeout after 3000 ms",
      durationMs: 3_000,
      responseBody: null,
    });
  });
});

describe("what the API shows of a delivery", () => {
  it("lists a delivery as it shows it alone, without its attempts", () => {
    // Prepare
    const shown = deliveryView(delivery, [attempt(503)]);

    // Act
    const listed = deliveryListView(delivery);

    // Assess
    const { attempts, ...rest } = shown;
    expect(attempts).toHaveLength(1);
    expect(listed).toEqual(rest);
    expect(listed).not.toHaveProperty("attempts");
  });
});
