import { describe, expect, it } from "vitest";
import { ENROLLMENT_CANCELLED } from "#domain/delivery";
import { hasEnded } from "#domain/enrollment";
import { MalformedMessageError, parseStepsLaneMessage } from "#domain/messages";
import {
  canReplay,
  newReplay,
  paceDelaySeconds,
  replayView,
  stepDurationSeconds,
} from "#domain/replay";

describe("pacing a replay", () => {
  it("holds back each second's share of a step by one more second", () => {
    // Act
    const delays = Array.from({ length: 45 }, (_, index) => paceDelaySeconds(index, 20));

    // Assess
    expect(delays.filter((delay) => delay === 0)).toHaveLength(20);
    expect(delays.filter((delay) => delay === 1)).toHaveLength(20);
    expect(delays.filter((delay) => delay === 2)).toHaveLength(5);
    expect(stepDurationSeconds(45, 20)).toBe(3);
    expect(stepDurationSeconds(40, 20)).toBe(2);
    expect(stepDurationSeconds(0, 20)).toBe(0);
  });
});

describe("what a replay re-fires", () => {
  const failed = { status: "failed", attemptCount: 3, failureReason: "410 Gone is not retried" };

  it("re-fires a delivery that failed for good after an attempt", () => {
    expect(canReplay(failed as never)).toBe(true);
  });

  it("leaves alone one never built, one whose enrollment was cancelled, and one not failed", () => {
    expect(canReplay({ ...failed, attemptCount: 0 } as never)).toBe(false);
    expect(canReplay({ ...failed, failureReason: ENROLLMENT_CANCELLED } as never)).toBe(false);
    expect(canReplay({ ...failed, status: "succeeded" } as never)).toBe(false);
  });
});

describe("a replay", () => {
  it("starts running with nothing found, and shows its window in ISO-8601", () => {
    // Act
    const replay = newReplay({
      replayId: "r-1",
      selection: { workflowId: "w", since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 2) },
      now: Date.UTC(2024, 0, 3),
    });

    // Assess
    expect(replayView(replay)).toEqual({
      replayId: "r-1",
      workflowId: "w",
      since: "2024-01-01T00:00:00.000Z",
      until: "2024-01-02T00:00:00.000Z",
      status: "running",
      matched: 0,
      replayed: 0,
      startedAt: "2024-01-03T00:00:00.000Z",
      completedAt: null,
    });
  });

  it("travels on the workflow-steps lane as a message of its own, read strictly", () => {
    expect(parseStepsLaneMessage('{"type":"replay","replayId":"r-1","step":3}')).toEqual({
      type: "replay",
      replayId: "r-1",
      step: 3,
    });
    expect(parseStepsLaneMessage('{"type":"advance","enrollmentId":"e","actionIndex":0}')).toEqual({
      type: "advance",
      enrollmentId: "e",
      actionIndex: 0,
    });
    expect(() => parseStepsLaneMessage('{"type":"replay","replayId":"r-1","step":-1}')).toThrow(
      MalformedMessageError,
    );
    expect(() => parseStepsLaneMessage('{"type":"replay","step":0}')).toThrow(
      MalformedMessageError,
    );
  });
});

describe("an ended enrollment", () => {
  it("is completed, failed or cancelled, and no other", () => {
    expect(
      (["active", "waiting", "completed", "failed", "cancelled"] as const).filter((status) =>
        hasEnded({ status }),
      ),
    ).toEqual(["completed", "failed", "cancelled"]);
  });
});
