/**
 * Open work: an enrollment or a delivery that has not ended. While it is open it carries, in the
 * open-work index, the time by which it should have moved (`sweepAt`); the sweeper reads the work
 * past that time and resumes it or fails it. This module says when that time is, once, for the
 * writers and the sweeper alike.
 */
import {
  type QueueDefinition,
  queues,
  retryScheduler,
  visibilityTimeoutSeconds,
} from "#shared/contract";

/**
 * Partitions of the open-work index. Every open item lives in one, chosen by its id, so the
 * index's writes spread out: a partition takes 1,000 writes a second, and 32 of them carry the
 * roadmap's 10,000 deliveries a second at about three index writes each. The sweeper reads each
 * one per run, which costs a read unit when nothing is overdue.
 */
export const SWEEP_SHARDS = 32;

/**
 * How long a lane may be behind before its age alarm fires with the stack's default
 * (`laneAgeAlarmSeconds`): a message may wait that long before its consumer even sees it.
 */
const LANE_BACKLOG_MS = 5 * 60_000;

/**
 * The longest a message lives on a lane without being handled for good: each receive that fails
 * hides it for the visibility timeout, and after `maxReceiveCount` receives it moves to the
 * dead-letter queue. After that long it was handled, or it is lost to the lane.
 */
export function laneMessageLifetimeMs(queue: QueueDefinition): number {
  return visibilityTimeoutSeconds(queue) * queue.maxReceiveCount * 1000;
}

/**
 * An enrollment whose action became current (or whose delay ended) should have moved within
 * this: its step waits on the workflow-steps lane, which may be behind, and is retried until it
 * is dead-lettered (20 minutes in all). A delay's hops are sent at most 15 minutes ahead, the
 * last one due when the delay ends, so the same holds from the end of a delay.
 */
export const STEP_STALL_MS = LANE_BACKLOG_MS + laneMessageLifetimeMs(queues.workflowSteps);

/**
 * A delivery's due attempt should have been made and recorded within this: its message waits on
 * the webhook lane, which may be behind, and is retried until it is dead-lettered (35 minutes in
 * all). A consumer that stops mid-attempt leaves a lease of at most 90 seconds, well within it.
 */
export const ATTEMPT_STALL_MS = LANE_BACKLOG_MS + laneMessageLifetimeMs(queues.webhookLane);

/**
 * A scheduled retry fires within a minute of its time, and when the lane refuses it EventBridge
 * Scheduler tries again for up to an hour before it gives up; only then is it lost.
 */
export const RETRY_FIRE_SLACK_MS = 60_000 + retryScheduler.targetMaximumEventAgeSeconds * 1000;

/**
 * Resumes the sweeper gives one piece of work that keeps making no progress, each waiting twice
 * as long as the one before (10 hours in all for a step, 18 for an attempt). An outage of a
 * lane's consumer shorter than that is waited out; work that no resume moved for that long cannot
 * run (a message that fails whatever is tried), and fails with the reason.
 */
export const MAX_SWEEP_RESUMES = 5;

/** The open-work index partition of the item with `id` (FNV-1a of the id). */
export function sweepShardOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % SWEEP_SHARDS;
}

/**
 * When open work is overdue. The stall thresholds are real time: they measure how long lanes,
 * leases and consumers legitimately take, which no clock compression shortens. The policy's own
 * waits (a delay action, a retry's delay) are compressed by `timeScale` (RETRY_TIME_SCALE, 1 on
 * AWS) locally, as the engine and the local scheduler compress them.
 */
export class OpenWorkDeadlines {
  constructor(readonly timeScale = 1) {
    if (!(Number.isFinite(timeScale) && timeScale > 0)) {
      throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
    }
  }

  /** An action became current at `now`: its step should have run by then. */
  step(now: number): number {
    return now + STEP_STALL_MS;
  }

  /** When a delay action of `seconds`, started at `startedAt`, ends (as the engine reckons it). */
  delayEnd(startedAt: number, seconds: number): number {
    return startedAt + seconds * 1000 * this.timeScale;
  }

  /** A delay ends at `resumeAt`: its last hop should have moved the enrollment by then. */
  delay(resumeAt: number): number {
    return resumeAt + STEP_STALL_MS;
  }

  /** An attempt became due at `now` (or a lease on it runs out then). */
  attempt(now: number): number {
    return now + ATTEMPT_STALL_MS;
  }

  /**
   * A retry was scheduled at `now` to fire at `firesAt` (on the policy's clock, which the local
   * scheduler compresses); once fired, it is an attempt on the lane.
   */
  retry(now: number, firesAt: number): number {
    return (
      now + Math.max(0, firesAt - now) * this.timeScale + RETRY_FIRE_SLACK_MS + ATTEMPT_STALL_MS
    );
  }

  /**
   * The sweeper resumed work at `now` for the `resumes`-th time, which should have moved it
   * within `stallMs`: it is looked at again after twice as long as the time before, so a lane
   * whose consumer is down is not flooded with re-sent messages.
   */
  afterResume(now: number, stallMs: number, resumes: number): number {
    return now + stallMs * 2 ** Math.max(0, resumes - 1);
  }
}
