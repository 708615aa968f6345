import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type Admission,
  DEFAULT_HOST_ADMISSION,
  HostAdmission,
  type HostAdmissionSettings,
} from "#domain/host-admission";

const settings: HostAdmissionSettings = {
  ...DEFAULT_HOST_ADMISSION,
  initialLimit: 2,
  maxLimit: 4,
  breakerThreshold: 2,
  breakerCooldownMs: 30_000,
  maxBreakerCooldownMs: 120_000,
  admitWaitMs: 250,
  maxHosts: 3,
};

const ANSWERED = { reached: true, durationMs: 20 };
const SLOW = { reached: true, durationMs: settings.slowMs };
const UNREACHABLE = { reached: false, durationMs: 30_000 };

function admitted(admission: Admission) {
  if (admission.kind !== "admitted") throw new Error(`expected admitted, got ${admission.kind}`);
  return admission;
}

describe("HostAdmission", () => {
  let clock: number;
  let gate: HostAdmission;
  beforeEach(() => {
    vi.useFakeTimers();
    clock = 1_000_000;
    gate = new HostAdmission(settings, () => clock);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("admits a new host up to its starting limit and defers the rest at once", async () => {
    // Prepare
    const first = await gate.admit("slow.example");
    const second = await gate.admit("slow.example");

    // Act
    const third = await gate.admit("slow.example");

    // Assess
    expect([first.kind, second.kind]).toEqual(["admitted", "admitted"]);
    expect(third).toEqual({
      kind: "deferred",
      reason: "slow.example has 2 attempts in flight, its limit",
      delayMs: 1_000,
    });
    expect(await gate.admit("other.example")).toMatchObject({ kind: "admitted" });
  });

  it("doubles the deferral with each deferral of the same attempt, up to 15 minutes", async () => {
    await gate.admit("h");
    await gate.admit("h");
    const delays = [];
    for (const deferrals of [0, 1, 2, 3, 30]) {
      const admission = await gate.admit("h", deferrals);
      delays.push(admission.kind === "deferred" ? admission.delayMs : admission.kind);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 900_000]);
  });

  it("raises the limit by one for each quick answer, up to the ceiling", async () => {
    for (let i = 0; i < 5; i++) admitted(await gate.admit("fast")).release(ANSWERED);
    const held = [];
    for (let i = 0; i < 4; i++) held.push(admitted(await gate.admit("fast")));
    expect(gate.snapshot("fast")).toEqual({ inFlight: 4, limit: 4, open: false });
    const fifth = gate.admit("fast");
    await vi.advanceTimersByTimeAsync(settings.admitWaitMs);
    expect((await fifth).kind).toBe("deferred");
  });

  it("lets an attempt over a quick host's limit wait for a slot that frees", async () => {
    admitted(await gate.admit("quick")).release(ANSWERED);
    const held = [];
    for (let i = 0; i < 3; i++) held.push(admitted(await gate.admit("quick")));
    const waiting = gate.admit("quick");
    await vi.advanceTimersByTimeAsync(100);
    held[0]?.release(ANSWERED);
    expect((await waiting).kind).toBe("admitted");
  });

  it("defers an attempt whose wait for a quick host's slot runs out", async () => {
    admitted(await gate.admit("quick")).release(ANSWERED);
    for (let i = 0; i < 3; i++) admitted(await gate.admit("quick"));
    const waiting = gate.admit("quick");
    await vi.advanceTimersByTimeAsync(settings.admitWaitMs);
    expect((await waiting).kind).toBe("deferred");
  });

  it("halves the limit on a slow answer, never below one", async () => {
    for (let i = 0; i < 2; i++) admitted(await gate.admit("h")).release(ANSWERED);
    expect(gate.snapshot("h").limit).toBe(4);
    admitted(await gate.admit("h")).release(SLOW);
    expect(gate.snapshot("h").limit).toBe(2);
    admitted(await gate.admit("h")).release(SLOW);
    admitted(await gate.admit("h")).release(SLOW);
    expect(gate.snapshot("h").limit).toBe(1);
  });

  it("opens the breaker after unreachable attempts in a row, pausing every attempt", async () => {
    const a = admitted(await gate.admit("down"));
    const b = admitted(await gate.admit("down"));
    a.release(UNREACHABLE);
    expect(gate.snapshot("down").open).toBe(false);
    b.release(UNREACHABLE);

    const paused = await gate.admit("down");

    expect(paused).toEqual({
      kind: "paused",
      reason:
        "paused: down failed 2 attempts in a row (timeouts or refused connections); not sent while it recovers",
    });
    expect(gate.snapshot("down")).toEqual({ inFlight: 0, limit: 1, open: true });
  });

  it("an answer in between resets the count of failures in a row", async () => {
    admitted(await gate.admit("flaky")).release(UNREACHABLE);
    admitted(await gate.admit("flaky")).release(ANSWERED);
    admitted(await gate.admit("flaky")).release(UNREACHABLE);
    expect(gate.snapshot("flaky").open).toBe(false);
  });

  it("lets one probe through after the cool-down; an answer closes the breaker", async () => {
    for (let i = 0; i < 2; i++) admitted(await gate.admit("down")).release(UNREACHABLE);
    clock += settings.breakerCooldownMs;

    const probe = admitted(await gate.admit("down"));
    const during = await gate.admit("down");
    probe.release(ANSWERED);

    expect(during.kind).toBe("paused");
    expect(gate.snapshot("down").open).toBe(false);
    expect((await gate.admit("down")).kind).toBe("admitted");
  });

  it("a failed probe opens the breaker for twice as long, up to the longest cool-down", async () => {
    for (let i = 0; i < 2; i++) admitted(await gate.admit("down")).release(UNREACHABLE);
    clock += settings.breakerCooldownMs;
    let probe = admitted(await gate.admit("down"));
    const cooldowns = [];
    for (let round = 0; round < 3; round++) {
      probe.release(UNREACHABLE);
      const opened = clock;
      let next = await gate.admit("down");
      while (next.kind === "paused") {
        clock += 1_000;
        next = await gate.admit("down");
      }
      cooldowns.push(clock - opened);
      probe = admitted(next);
    }
    expect(cooldowns).toEqual([60_000, 120_000, 120_000]);
  });

  it("forgets the least recently used idle hosts beyond its bound", async () => {
    for (const host of ["a", "b", "c"]) admitted(await gate.admit(host)).release(ANSWERED);
    admitted(await gate.admit("a")).release(ANSWERED);
    admitted(await gate.admit("d")).release(ANSWERED);
    expect(gate.snapshot("a").limit).toBe(4);
    expect(gate.snapshot("b").limit).toBe(settings.initialLimit);
  });

  it("a release without an outcome frees the slot and changes nothing else", async () => {
    admitted(await gate.admit("h")).release(ANSWERED);
    admitted(await gate.admit("h")).release();
    expect(gate.snapshot("h")).toEqual({ inFlight: 0, limit: 3, open: false });
  });

  it("a probe released without an outcome lets the next attempt probe", async () => {
    for (let i = 0; i < 2; i++) admitted(await gate.admit("down")).release(UNREACHABLE);
    clock += settings.breakerCooldownMs;
    admitted(await gate.admit("down")).release();
    expect((await gate.admit("down")).kind).toBe("admitted");
  });

  it("ignores a second release of the same slot", async () => {
    const slot = admitted(await gate.admit("h"));
    slot.release(ANSWERED);
    slot.release(ANSWERED);
    expect(gate.snapshot("h")).toEqual({ inFlight: 0, limit: 3, open: false });
  });
});
