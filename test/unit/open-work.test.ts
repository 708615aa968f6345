import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ATTEMPT_STALL_MS,
  laneMessageLifetimeMs,
  OpenWorkDeadlines,
  RETRY_FIRE_SLACK_MS,
  STEP_STALL_MS,
  SWEEP_SHARDS,
  sweepShardOf,
} from "#domain/open-work";
import { queues } from "#shared/contract";

const MINUTE = 60_000;

describe("the stall thresholds", () => {
  it("outlast a lane message's receives before its dead-letter queue, and a lane 5 minutes behind", () => {
    // Act
    const steps = laneMessageLifetimeMs(queues.workflowSteps);
    const lane = laneMessageLifetimeMs(queues.webhookLane);

    // Assess
    expect(steps).toBe(5 * 3 * MINUTE);
    expect(lane).toBe(5 * 6 * MINUTE);
    expect(STEP_STALL_MS).toBe(20 * MINUTE);
    expect(ATTEMPT_STALL_MS).toBe(35 * MINUTE);
    // Longer than the longest delay hop SQS allows, and than a delivery's lease.
    expect(STEP_STALL_MS).toBeGreaterThan(15 * MINUTE);
    expect(ATTEMPT_STALL_MS).toBeGreaterThan(90_000);
    expect(RETRY_FIRE_SLACK_MS).toBe(61 * MINUTE);
  });
});

describe("the deadlines of open work", () => {
  it("add the stall thresholds in real time, whatever the time scale", () => {
    // Prepare
    const compressed = new OpenWorkDeadlines(0.001);

    // Act and assess
    expect(compressed.step(1_000)).toBe(1_000 + STEP_STALL_MS);
    expect(compressed.delay(5_000)).toBe(5_000 + STEP_STALL_MS);
    expect(compressed.attempt(1_000)).toBe(1_000 + ATTEMPT_STALL_MS);
  });

  it("compress the policy's own waits by the time scale, as the engine and the local scheduler do", () => {
    // Prepare
    const real = new OpenWorkDeadlines();
    const compressed = new OpenWorkDeadlines(0.001);
    const hour = 60 * MINUTE;

    // Act and assess
    expect(real.delayEnd(1_000, 3600)).toBe(1_000 + hour);
    expect(compressed.delayEnd(1_000, 3600)).toBe(1_000 + 3_600);
    expect(real.retry(0, hour)).toBe(hour + RETRY_FIRE_SLACK_MS + ATTEMPT_STALL_MS);
    expect(compressed.retry(0, hour)).toBe(3_600 + RETRY_FIRE_SLACK_MS + ATTEMPT_STALL_MS);
    // A retry already due waits only the slack.
    expect(real.retry(hour, 0)).toBe(hour + RETRY_FIRE_SLACK_MS + ATTEMPT_STALL_MS);
  });

  it("space the sweeper's resumes twice as far apart each time", () => {
    // Prepare
    const deadlines = new OpenWorkDeadlines();

    // Act
    const gaps = [1, 2, 3, 4, 5].map((resumes) => deadlines.afterResume(0, STEP_STALL_MS, resumes));

    // Assess
    expect(gaps).toEqual([1, 2, 4, 8, 16].map((factor) => factor * STEP_STALL_MS));
  });

  it("refuse a time scale that is not a positive number", () => {
    for (const scale of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new OpenWorkDeadlines(scale), String(scale)).toThrow(RangeError);
    }
  });
});

describe("the open-work index's shards", () => {
  it("are the same for the same id, and spread ids evenly", () => {
    // Prepare
    const ids = Array.from({ length: 32_000 }, () => randomUUID());

    // Act
    const counts = new Array<number>(SWEEP_SHARDS).fill(0);
    for (const id of ids) counts[sweepShardOf(id)] = (counts[sweepShardOf(id)] ?? 0) + 1;

    // Assess
    expect(sweepShardOf(ids[0] ?? "")).toBe(sweepShardOf(ids[0] ?? ""));
    expect(counts.every((count) => count > 800 && count < 1_200)).toBe(true);
  });
});
