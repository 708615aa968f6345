/**
 * A replay: re-fires, once each, the deliveries of a workflow that failed for good, among those
 * created in a window of time. It runs in steps on the workflow-steps lane, each paging through a
 * stretch of the deliveries' index, so no request has to wait for it.
 */
import { type Delivery, ENROLLMENT_CANCELLED } from "#domain/delivery";

export type ReplayStatus = "running" | "completed";

/** Which deliveries a replay re-fires: a workflow's, created within [since, until] (epoch ms). */
export interface ReplaySelection {
  readonly workflowId: string;
  readonly since: number;
  readonly until: number;
}

/** Where the next step of a replay starts reading the index; opaque outside the adapter. */
export type ReplayCursor = Readonly<Record<string, unknown>>;

export interface Replay {
  readonly replayId: string;
  readonly selection: ReplaySelection;
  readonly status: ReplayStatus;
  /** Deliveries found that had failed for good in the window. */
  readonly matched: number;
  /**
   * Of those, the ones re-fired. The rest could not be: never built (nothing to send), failed
   * because their enrollment was cancelled, or changed since they were found.
   */
  readonly replayed: number;
  /** Steps done so far; the next step's message carries this number. */
  readonly steps: number;
  /** Where the next step starts; null before the first step and once the index is exhausted. */
  readonly cursor: ReplayCursor | null;
  readonly startedAt: number;
  readonly updatedAt: number;
  readonly completedAt: number | null;
}

/** A replay as `POST /deliveries/replay` starts it: running, nothing found yet. */
export function newReplay(input: {
  replayId: string;
  selection: ReplaySelection;
  now: number;
}): Replay {
  return {
    replayId: input.replayId,
    selection: input.selection,
    status: "running",
    matched: 0,
    replayed: 0,
    steps: 0,
    cursor: null,
    startedAt: input.now,
    updatedAt: input.now,
    completedAt: null,
  };
}

/** What one step found and did. */
export interface ReplayStepOutcome {
  readonly matched: number;
  readonly replayed: number;
  /** Where the next step starts; undefined when the index is exhausted. */
  readonly cursor: ReplayCursor | undefined;
}

/** What `GET /replays/{replayId}` shows of a replay. */
export function replayView(replay: Replay) {
  return {
    replayId: replay.replayId,
    workflowId: replay.selection.workflowId,
    since: new Date(replay.selection.since).toISOString(),
    until: new Date(replay.selection.until).toISOString(),
    status: replay.status,
    matched: replay.matched,
    replayed: replay.replayed,
    startedAt: new Date(replay.startedAt).toISOString(),
    completedAt: replay.completedAt === null ? null : new Date(replay.completedAt).toISOString(),
  };
}

/**
 * Seconds to hold back the `index`-th of a step's re-fired deliveries (0-based) so the step
 * sends at most `perSecond` a second: the first `perSecond` at once, the next a second later...
 */
export function paceDelaySeconds(index: number, perSecond: number): number {
  return Math.floor(index / perSecond);
}

/** How long a step's sends take at `perSecond`, in whole seconds: when the next step may start. */
export function stepDurationSeconds(sent: number, perSecond: number): number {
  return Math.ceil(sent / perSecond);
}

/**
 * Whether a delivery found by a replay can be re-fired: it failed for good after at least one
 * attempt (one that failed before it could be built has nothing to send), and not because its
 * enrollment was cancelled, which an operator did on purpose.
 */
export function canReplay(
  delivery: Pick<Delivery, "status" | "attemptCount" | "failureReason">,
): boolean {
  return (
    delivery.status === "failed" &&
    delivery.attemptCount > 0 &&
    delivery.failureReason !== ENROLLMENT_CANCELLED
  );
}
