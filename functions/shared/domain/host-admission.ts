/**
 * Fair use of the webhook lane by its receivers (one host each). Every attempt asks for
 * admission to its target's host first:
 *
 * - A host may have only so many attempts in flight at once. The limit starts low and grows by
 *   one with every quick answer, up to a ceiling, so a receiver proves itself before it may hold
 *   much of the lane; a slow answer or an unreachable host halves it.
 * - A host that times out or refuses connections on several attempts in a row trips a breaker:
 *   while it is open, attempts to that host are not sent but paused (recorded as failed, and
 *   retried by the retry policy as any failure is). After a cool-down one probe goes through; an
 *   answer closes the breaker, another failure opens it again for twice as long.
 * - An attempt over its host's limit waits briefly for a slot when the host answers quickly, and
 *   is otherwise deferred: put back on the lane for a while without counting as an attempt.
 *
 * The state is kept per process (per Lambda instance on AWS), so it costs no request.
 */

/**
 * What an attempt showed of its receiver: whether it was reached (it answered with any status)
 * and how long that took. Timeouts, refused and dropped connections are not reached; failures
 * that say nothing of the receiver's capacity (a name that does not resolve, a certificate it
 * does not present) are released without an outcome.
 */
export interface HostOutcome {
  readonly reached: boolean;
  readonly durationMs: number;
}

export type Admission =
  | {
      readonly kind: "admitted";
      /** Gives the slot back and tells what the attempt showed, if anything; once is enough. */
      readonly release: (outcome?: HostOutcome) => void;
    }
  /** Over the host's limit: put the message back on the lane, hidden for `delayMs`. */
  | { readonly kind: "deferred"; readonly reason: string; readonly delayMs: number }
  /** The host's breaker is open: make no request, record the attempt as failed with `reason`. */
  | { readonly kind: "paused"; readonly reason: string };

export interface HostAdmissionSettings {
  /** Attempts in flight a host starts with (and never goes below one). */
  readonly initialLimit: number;
  /** Attempts in flight a host can earn. */
  readonly maxLimit: number;
  /** An answer this slow (ms) halves the host's limit. */
  readonly slowMs: number;
  /** Unreachable attempts in a row that open the breaker. */
  readonly breakerThreshold: number;
  /** First cool-down of an open breaker (ms); doubles while probes fail. */
  readonly breakerCooldownMs: number;
  /** Longest cool-down (ms). */
  readonly maxBreakerCooldownMs: number;
  /** How long an attempt over a quick host's limit waits for a slot before it is deferred. */
  readonly admitWaitMs: number;
  /** Hosts remembered at most; the least recently used are forgotten first. */
  readonly maxHosts: number;
}

/** Defaults for the webhook lane; each is a trade of latency for the lane's safety. */
export const DEFAULT_HOST_ADMISSION: HostAdmissionSettings = {
  // Two hanging attempts hold at most two of the lane's batches while the host proves itself.
  initialLimit: 2,
  // Enough for one receiver to take 200 quick deliveries a second from one instance.
  maxLimit: 32,
  // Far beyond a healthy receiver's answer, far below the 30-second response timeout.
  slowMs: 5_000,
  // Equal to the starting limit: the first wave of hanging attempts opens the breaker.
  breakerThreshold: 2,
  breakerCooldownMs: 30_000,
  // Shorter than the retry policy's 8-hour gap, so a recovered host is noticed in time.
  maxBreakerCooldownMs: 15 * 60_000,
  admitWaitMs: 250,
  maxHosts: 10_000,
};

interface HostState {
  limit: number;
  inFlight: number;
  /** Unreachable outcomes in a row. */
  failures: number;
  /** While open: when the next probe may go (epoch ms). */
  openUntil: number | undefined;
  cooldownMs: number;
  probing: boolean;
  /** Whether the last outcome was a quick answer: only then is a slot worth waiting for. */
  quick: boolean;
  waiters: Array<() => void>;
}

/** The shortest deferral; SQS delays are whole seconds. */
const MIN_DEFER_MS = 1_000;
/** The longest deferral: SQS hides a message for 15 minutes at most. */
const MAX_DEFER_MS = 900_000;

export class HostAdmission {
  private readonly hosts = new Map<string, HostState>();

  constructor(
    private readonly settings: HostAdmissionSettings = DEFAULT_HOST_ADMISSION,
    private readonly now: () => number = Date.now,
  ) {
    if (settings.initialLimit < 1 || settings.maxLimit < settings.initialLimit) {
      throw new RangeError("host limits must satisfy 1 <= initialLimit <= maxLimit");
    }
  }

  /**
   * Asks to make an attempt to `host`. `deferrals` is how often this attempt was deferred
   * already: each deferral waits twice as long as the one before.
   */
  async admit(host: string, deferrals = 0): Promise<Admission> {
    const state = this.stateOf(host);
    const now = this.now();
    if (state.openUntil !== undefined) {
      if (now < state.openUntil || state.probing) {
        return {
          kind: "paused",
          reason: `paused: ${host} failed ${state.failures} attempts in a row (timeouts or refused connections); not sent while it recovers`,
        };
      }
      state.probing = true;
      return this.take(host, state);
    }
    if (state.inFlight < state.limit) return this.take(host, state);
    if (state.quick && this.settings.admitWaitMs > 0 && (await this.slotFreed(state))) {
      if (state.openUntil === undefined && state.inFlight < state.limit) {
        return this.take(host, state);
      }
    }
    return {
      kind: "deferred",
      reason: `${host} has ${state.inFlight} attempts in flight, its limit`,
      delayMs: Math.min(MAX_DEFER_MS, MIN_DEFER_MS * 2 ** Math.min(deferrals, 20)),
    };
  }

  /** The attempts in flight to `host` now, and its limit; for logs and tests. */
  snapshot(host: string): { inFlight: number; limit: number; open: boolean } {
    const state = this.hosts.get(host);
    return {
      inFlight: state?.inFlight ?? 0,
      limit: state?.limit ?? this.settings.initialLimit,
      open: state?.openUntil !== undefined,
    };
  }

  private take(host: string, state: HostState): Admission {
    state.inFlight++;
    let released = false;
    return {
      kind: "admitted",
      release: (outcome) => {
        if (released) return;
        released = true;
        this.release(host, state, outcome);
      },
    };
  }

  private release(host: string, state: HostState, outcome: HostOutcome | undefined): void {
    state.inFlight--;
    const { settings } = this;
    if (outcome === undefined) {
      // Nothing was learnt (the attempt was not made, or failed for a reason of its own).
    } else if (!outcome.reached) {
      state.failures++;
      state.quick = false;
      state.limit = Math.max(1, Math.floor(state.limit / 2));
      if (state.probing || state.failures >= settings.breakerThreshold) {
        state.cooldownMs = state.probing
          ? Math.min(settings.maxBreakerCooldownMs, state.cooldownMs * 2)
          : settings.breakerCooldownMs;
        state.openUntil = this.now() + state.cooldownMs;
      }
    } else {
      const quick = outcome.durationMs < settings.slowMs;
      state.failures = 0;
      state.openUntil = undefined;
      state.cooldownMs = settings.breakerCooldownMs;
      state.quick = quick;
      state.limit = quick
        ? Math.min(settings.maxLimit, state.limit + 1)
        : Math.max(1, Math.floor(state.limit / 2));
    }
    state.probing = false;
    state.waiters.shift()?.();
    this.touch(host, state);
  }

  /** Resolves true when a slot of the host frees within `admitWaitMs`. */
  private slotFreed(state: HostState): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const at = state.waiters.indexOf(wake);
        if (at >= 0) state.waiters.splice(at, 1);
        resolve(false);
      }, this.settings.admitWaitMs);
      state.waiters.push(wake);
    });
  }

  private stateOf(host: string): HostState {
    let state = this.hosts.get(host);
    if (state === undefined) {
      state = {
        limit: this.settings.initialLimit,
        inFlight: 0,
        failures: 0,
        openUntil: undefined,
        cooldownMs: this.settings.breakerCooldownMs,
        probing: false,
        quick: false,
        waiters: [],
      };
    }
    this.touch(host, state);
    return state;
  }

  /** Keeps the map in least-recently-used order and within `maxHosts`. */
  private touch(host: string, state: HostState): void {
    this.hosts.delete(host);
    this.hosts.set(host, state);
    if (this.hosts.size <= this.settings.maxHosts) return;
    for (const [name, candidate] of this.hosts) {
      if (this.hosts.size <= this.settings.maxHosts) break;
      // A host with attempts in flight is still being counted; forget idle ones only.
      if (candidate.inFlight === 0 && candidate.waiters.length === 0) this.hosts.delete(name);
    }
  }
}
