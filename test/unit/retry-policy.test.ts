import { describe, expect, it } from "vitest";
import {
  type AttemptOutcome,
  classifyAttempt,
  decideRetry,
  FIRST_RETRY_DELAY_MS,
  MAX_RETRY_DELAY_MS,
  parseRetryAfter,
  RETRY_WINDOW_MS,
  type RetryInput,
  retryDelayMs,
} from "#domain/retry-policy";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const firstFailedAt = Date.UTC(2025, 0, 6, 9, 0, 0);

/** A seeded pseudo-random source (mulberry32), so jitter runs are varied yet repeatable. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Walks a receiver that always fails; returns every attempt's scheduled time and the end. */
function simulateAlwaysFailing(random?: () => number): {
  scheduled: number[];
  end: string;
} {
  const scheduled = [firstFailedAt];
  for (;;) {
    const attempt = scheduled.length;
    const scheduledAt = scheduled[attempt - 1] as number;
    const decision = decideRetry({
      attempt,
      scheduledAt,
      firstFailedAt,
      statusCode: 503,
      receivedAt: scheduledAt,
      random,
    });
    if (decision.kind === "exhausted") {
      return { scheduled, end: decision.reason };
    }
    scheduled.push(decision.scheduledAt);
  }
}

function gapsOf(scheduled: number[]): number[] {
  return scheduled.slice(1).map((at, i) => at - (scheduled[i] as number));
}

function failure(overrides: Partial<RetryInput> = {}): RetryInput {
  return {
    attempt: 1,
    scheduledAt: firstFailedAt,
    firstFailedAt,
    receivedAt: firstFailedAt,
    ...overrides,
  };
}

describe("classifyAttempt", () => {
  it.each<[number, AttemptOutcome]>([
    [200, { kind: "succeeded" }],
    [204, { kind: "succeeded" }],
    [299, { kind: "succeeded" }],
    [
      301,
      {
        kind: "failed",
        reason: "HTTP 301 Moved Permanently is not retried (redirects are not followed)",
      },
    ],
    [302, { kind: "failed", reason: "HTTP 302 Found is not retried (redirects are not followed)" }],
    [400, { kind: "failed", reason: "HTTP 400 Bad Request is not retried" }],
    [401, { kind: "failed", reason: "HTTP 401 Unauthorized is not retried" }],
    [404, { kind: "failed", reason: "HTTP 404 Not Found is not retried" }],
    [408, { kind: "retryable", reason: "HTTP 408 Request Timeout" }],
    [410, { kind: "failed", reason: "HTTP 410 Gone is not retried" }],
    [429, { kind: "retryable", reason: "HTTP 429 Too Many Requests" }],
    [500, { kind: "retryable", reason: "HTTP 500 Internal Server Error" }],
    [503, { kind: "retryable", reason: "HTTP 503 Service Unavailable" }],
    [599, { kind: "retryable", reason: "HTTP 599" }],
    [101, { kind: "failed", reason: "HTTP 101 Switching Protocols is not retried" }],
    [600, { kind: "failed", reason: "HTTP 600 is not retried" }],
  ])("classifies HTTP %i", (statusCode, expected) => {
    // Prepare
    const result = { statusCode };

    // Act
    const outcome = classifyAttempt(result);

    // Assess
    expect(outcome).toEqual(expected);
  });

  it.each([
    ["connect ECONNREFUSED 203.0.113.7:443", "connect ECONNREFUSED 203.0.113.7:443"],
    ["response timed out after 30000 ms", "response timed out after 30000 ms"],
    ["  ", "request failed"],
  ])("retries the transport error %j with its text as the reason", (error, reason) => {
    // Prepare
    const result = { error };

    // Act
    const outcome = classifyAttempt(result);

    // Assess
    expect(outcome).toEqual({ kind: "retryable", reason });
  });
});

describe("retryDelayMs", () => {
  it("starts at one minute and doubles", () => {
    // Prepare
    const failureCounts = [1, 2, 3, 4, 9];

    // Act
    const delays = failureCounts.map(retryDelayMs);

    // Assess
    expect(delays).toEqual([1, 2, 4, 8, 256].map((minutes) => minutes * MINUTE));
  });

  it("is capped at 8 hours, even for huge failure counts", () => {
    // Prepare
    const failureCounts = [10, 11, 1_100, Number.MAX_SAFE_INTEGER];

    // Act
    const delays = failureCounts.map(retryDelayMs);

    // Assess
    expect(delays).toEqual([8 * HOUR, 8 * HOUR, 8 * HOUR, 8 * HOUR]);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    "refuses the failure count %s",
    (failureCount) => {
      // Prepare
      const compute = () => retryDelayMs(failureCount);

      // Act
      // Assess
      expect(compute).toThrow(RangeError);
    },
  );
});

describe("decideRetry without jitter", () => {
  it("makes 17 attempts in all against a receiver that always fails", () => {
    // Prepare
    const expectedGaps = [1, 2, 4, 8, 16, 32, 64, 128, 256, ...Array(7).fill(480)].map(
      (minutes) => minutes * MINUTE,
    );

    // Act
    const { scheduled, end } = simulateAlwaysFailing();

    // Assess
    expect(scheduled).toHaveLength(17);
    expect(gapsOf(scheduled)).toEqual(expectedGaps);
    expect((scheduled.at(-1) as number) - firstFailedAt).toBeLessThanOrEqual(RETRY_WINDOW_MS);
    expect(end).toBe("retry window exhausted");
  });

  it("schedules the next attempt from the failed attempt's scheduled time, not from now", () => {
    // Prepare
    const scheduledAt = firstFailedAt + 3 * MINUTE;
    const input = failure({ attempt: 3, scheduledAt, receivedAt: scheduledAt + 45_000 });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toEqual({
      kind: "retry",
      delayMs: 4 * MINUTE,
      scheduledAt: scheduledAt + 4 * MINUTE,
    });
  });

  it("allows an attempt exactly 3 days after the first failure, and none later", () => {
    // Prepare
    const lastAllowed = firstFailedAt + RETRY_WINDOW_MS - MAX_RETRY_DELAY_MS;

    // Act
    const atEdge = decideRetry(failure({ attempt: 12, scheduledAt: lastAllowed }));
    const pastEdge = decideRetry(failure({ attempt: 12, scheduledAt: lastAllowed + 1 }));

    // Assess
    expect(atEdge).toEqual({
      kind: "retry",
      delayMs: MAX_RETRY_DELAY_MS,
      scheduledAt: firstFailedAt + RETRY_WINDOW_MS,
    });
    expect(pastEdge).toEqual({ kind: "exhausted", reason: "retry window exhausted" });
  });
});

describe("decideRetry with jitter", () => {
  it("never shortens a gap below its nominal delay nor stretches one past 8 hours", () => {
    // Prepare
    const seeds = Array.from({ length: 200 }, (_, i) => i + 1);

    // Act
    const runs = seeds.map((seed) => simulateAlwaysFailing(seededRandom(seed)));

    // Assess
    let jittered = 0;
    for (const { scheduled, end } of runs) {
      expect(end).toBe("retry window exhausted");
      expect((scheduled.at(-1) as number) - firstFailedAt).toBeLessThanOrEqual(RETRY_WINDOW_MS);
      gapsOf(scheduled).forEach((gap, i) => {
        const nominal = retryDelayMs(i + 1);
        expect(gap).toBeGreaterThanOrEqual(nominal);
        expect(gap).toBeLessThanOrEqual(Math.min(nominal * 1.1, MAX_RETRY_DELAY_MS));
        if (gap > nominal) jittered += 1;
      });
    }
    expect(jittered).toBeGreaterThan(0);
  });

  it("adds at most a tenth of the delay for a source at its upper bound", () => {
    // Prepare
    const almostOne = () => 1 - Number.EPSILON;

    // Act
    const decision = decideRetry(failure({ attempt: 4, random: almostOne }));

    // Assess
    expect(decision.kind).toBe("retry");
    const delayMs = decision.kind === "retry" ? decision.delayMs : 0;
    expect(delayMs).toBeGreaterThan(8 * MINUTE);
    expect(delayMs).toBeLessThanOrEqual(8 * MINUTE * 1.1);
  });

  it("keeps a misbehaving source from subtracting or overshooting", () => {
    // Prepare
    const sources = [() => -5, () => 7, () => Number.NaN];

    // Act
    const delays = sources.map((random) => {
      const decision = decideRetry(failure({ attempt: 2, random }));
      return decision.kind === "retry" ? decision.delayMs : Number.NaN;
    });

    // Assess
    for (const delayMs of delays) {
      expect(delayMs).toBeGreaterThanOrEqual(2 * MINUTE);
      expect(delayMs).toBeLessThanOrEqual(2 * MINUTE * 1.1);
    }
  });
});

describe("decideRetry with Retry-After", () => {
  it("waits 300 s after a 429 with Retry-After: 300", () => {
    // Prepare
    const input = failure({ statusCode: 429, retryAfter: "300" });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toEqual({
      kind: "retry",
      delayMs: 300_000,
      scheduledAt: firstFailedAt + 300_000,
    });
  });

  it("raises a 10 s Retry-After to the 1-minute floor", () => {
    // Prepare
    const input = failure({ statusCode: 503, retryAfter: "10" });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toMatchObject({ kind: "retry", delayMs: FIRST_RETRY_DELAY_MS });
  });

  it.each(["86400", "9".repeat(400)])("caps the huge Retry-After %s at 8 hours", (retryAfter) => {
    // Prepare
    const input = failure({ statusCode: 429, retryAfter });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toMatchObject({ kind: "retry", delayMs: MAX_RETRY_DELAY_MS });
  });

  it("keeps the policy delay when it is longer than Retry-After", () => {
    // Prepare
    const input = failure({ attempt: 6, statusCode: 429, retryAfter: "120" });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toMatchObject({ kind: "retry", delayMs: 32 * MINUTE });
  });

  it("reads the HTTP-date form relative to when the response arrived", () => {
    // Prepare
    const receivedAt = Date.UTC(2015, 9, 21, 7, 18, 0);
    const input = failure({
      statusCode: 503,
      retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT",
      receivedAt,
      scheduledAt: receivedAt,
      firstFailedAt: receivedAt,
    });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toEqual({
      kind: "retry",
      delayMs: 10 * MINUTE,
      scheduledAt: receivedAt + 10 * MINUTE,
    });
  });

  it.each([500, 502, 408, undefined])("ignores Retry-After on status %s", (statusCode) => {
    // Prepare
    const input = failure({ statusCode, retryAfter: "3600" });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toMatchObject({ kind: "retry", delayMs: FIRST_RETRY_DELAY_MS });
  });

  it("ends the delivery when Retry-After pushes past the 3-day window", () => {
    // Prepare
    const scheduledAt = firstFailedAt + RETRY_WINDOW_MS - HOUR;
    const input = failure({ attempt: 2, scheduledAt, statusCode: 429, retryAfter: "7200" });

    // Act
    const decision = decideRetry(input);

    // Assess
    expect(decision).toEqual({ kind: "exhausted", reason: "retry window exhausted" });
  });
});

describe("parseRetryAfter", () => {
  const receivedAt = Date.UTC(1994, 10, 6, 8, 49, 7);

  it.each([
    ["0", 0],
    ["120", 120_000],
    [" 45 ", 45_000],
    ["Sun, 06 Nov 1994 08:49:37 GMT", 30_000],
    ["Sunday, 06-Nov-94 08:49:37 GMT", 30_000],
    ["Sun Nov  6 08:49:37 1994", 30_000],
    ["Sun, 06 Nov 1994 08:00:00 GMT", 0],
  ])("reads %j as %i ms", (header, expected) => {
    // Prepare
    const now = receivedAt;

    // Act
    const delayMs = parseRetryAfter(header, now);

    // Assess
    expect(delayMs).toBe(expected);
  });

  it.each([undefined, "", "soon", "-5", "1.5", "30s", "2025-01-06T09:00:00Z", "Sun, 32 Foo 1994"])(
    "returns undefined for %j",
    (header) => {
      // Prepare
      const now = receivedAt;

      // Act
      const delayMs = parseRetryAfter(header, now);

      // Assess
      expect(delayMs).toBeUndefined();
    },
  );
});
