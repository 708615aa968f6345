import { setTimeout as sleep } from "node:timers/promises";

/** Long enough for a compressed-clock run on a busy machine; a test that needs more says so. */
const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * Between two probes: short enough that a test goes on soon after the condition holds, long
 * enough that probing the local emulators does not compete with the work it waits for.
 */
const DEFAULT_INTERVAL_MS = 50;

/** How long `eventually` waits and how often it probes. */
export interface EventuallyOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/** A condition that did not hold in time; its cause is the probe's last failure. */
export class EventuallyTimeoutError extends Error {
  override name = "EventuallyTimeoutError";
}

/**
 * Probes until `probe` returns without throwing, and returns what it returned. A probe says "not
 * yet" by throwing, typically a failed `expect`; after `timeoutMs` that last failure is reported.
 */
export async function eventually<T>(
  what: string,
  probe: () => T | Promise<T>,
  { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = DEFAULT_INTERVAL_MS }: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() >= deadline) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new EventuallyTimeoutError(
          `timed out after ${timeoutMs} ms waiting for ${what}: ${reason}`,
          { cause: error },
        );
      }
    }
    await sleep(intervalMs);
  }
}
