import type { DeliveriesTable, ReplayCandidate } from "#adapters/deliveries-table";
import type { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import type { ReplaysTable } from "#adapters/replays-table";
import { attemptMessage, type Delivery } from "#domain/delivery";
import { NotFoundError, StaleStateError, ValidationError } from "#domain/errors";
import type { DeliveryAttemptMessage, ReplayStepMessage } from "#domain/messages";
import {
  canReplay,
  newReplay,
  paceDelaySeconds,
  type Replay,
  replayView,
  stepDurationSeconds,
} from "#domain/replay";
import type { RequestBody } from "#domain/request-schemas";

/** How fast a replay goes: re-fired deliveries per second, and per step. */
export interface ReplayPace {
  readonly perSecond: number;
  readonly perStep: number;
}

/**
 * A replay puts 20 re-fired deliveries a second on the webhook lane. A receiver just back from an
 * outage gets them at that steady rate on top of its live traffic, and the lane (100 attempts in
 * flight on AWS by default) keeps most of its room for everyone else's deliveries; the lane's
 * per-receiver admission applies on top. 100,000 deliveries take about 83 minutes. A step
 * handles 10 seconds' worth (200 deliveries), far within the engine's 30-second timeout, and the
 * next step's message waits until this step's sends are due.
 */
export const DEFAULT_REPLAY_PACE: ReplayPace = { perSecond: 20, perStep: 200 };
/**
 * Index entries a step reads at most: failed deliveries may be rare among a workflow's, and a step
 * must stay short; the next step goes on from where this one stopped.
 */
const STEP_READ_BUDGET = 2_000;
/** Deliveries a step re-fires at once: its writes finish in a few rounds of DynamoDB latency. */
const REFIRE_CONCURRENCY = 10;

export interface ReplaysDeps {
  readonly replays: ReplaysTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly now: () => number;
  readonly newId: () => string;
}

/**
 * Starts a replay of a workflow's deliveries that failed for good among those created in
 * [since, until] (until: now when absent), and answers with its id at once: the replay runs in
 * steps on the workflow-steps lane.
 */
export async function startReplay(deps: ReplaysDeps, input: RequestBody<"replayDeliveries">) {
  const now = deps.now();
  const selection = {
    workflowId: input.workflowId,
    since: Date.parse(input.since),
    until: input.until === undefined ? now : Date.parse(input.until),
  };
  if (selection.until < selection.since) {
    throw new ValidationError("since", "must not be after until, which is now when absent");
  }
  const replay = newReplay({ replayId: deps.newId(), selection, now });
  await deps.replays.create(replay);
  try {
    await deps.workflowSteps.send({ type: "replay", replayId: replay.replayId, step: 0 });
  } catch (error) {
    // A replay without its first message would show `running` for good.
    await deps.replays.discard(replay.replayId);
    throw error;
  }
  return { replayId: replay.replayId };
}

/** A replay's progress. */
export async function readReplay(deps: Pick<ReplaysDeps, "replays">, replayId: string) {
  const replay = await deps.replays.get(replayId);
  if (!replay) throw new NotFoundError(`replay ${replayId} not found`);
  return replayView(replay);
}

export interface ReplayStepDeps {
  readonly replays: ReplaysTable;
  readonly deliveries: DeliveriesTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly webhookLane: WebhookLaneQueue;
  readonly now: () => number;
  readonly pace: ReplayPace;
  /**
   * How long a replay must have stood still before a message of the step it finished re-sends the
   * next: longer than a step's consumer can run, and than the wait between two steps.
   */
  readonly stalledAfterMs: number;
}

/** What a replay step did, for logs and metrics. */
export type ReplayStepReport =
  | { readonly kind: "skipped"; readonly reason: string }
  | {
      readonly kind: "stepped";
      readonly step: number;
      readonly matched: number;
      readonly replayed: number;
      /** Deliveries this run of the step made due again (a step run again re-fires none twice). */
      readonly refired: number;
      readonly completed: boolean;
    };

/**
 * Runs one step of a replay: reads the next stretch of the workflow's failed deliveries from the
 * index, re-fires each (a conditional write from `failed`, marked with the replay, so none is
 * re-fired twice), sends their attempts to the webhook lane in batches, paced at `pace.perSecond`,
 * counts the step in, and sends the next step's message for when these sends are due. A step run
 * again after a crash finds the deliveries it re-fired, counts them, and sends again the messages
 * of those whose attempt is not made yet (the lane makes each attempt once).
 */
export async function runReplayStep(
  deps: ReplayStepDeps,
  message: ReplayStepMessage,
): Promise<ReplayStepReport> {
  const replay = await deps.replays.get(message.replayId);
  if (!replay) return { kind: "skipped", reason: "replay not found" };
  if (replay.status === "completed") return { kind: "skipped", reason: "replay completed already" };
  if (replay.steps !== message.step) {
    await resendStalledStep(deps, replay, message);
    return { kind: "skipped", reason: `replay is at step ${replay.steps}` };
  }
  const found = await deps.deliveries.replayCandidates(
    replay.selection,
    replay.replayId,
    replay.cursor,
    { want: deps.pace.perStep, budget: STEP_READ_BUDGET },
  );
  const refires = await inBatches(found.candidates, REFIRE_CONCURRENCY, (candidate) =>
    refire(deps, replay.replayId, candidate),
  );
  const messages = refires.flatMap((outcome) => (outcome.send ? [outcome.send] : []));
  await deps.webhookLane.sendBatch(
    messages.map((attempt, index) => ({
      message: attempt,
      delaySeconds: paceDelaySeconds(index, deps.pace.perSecond),
    })),
  );
  const outcome = {
    matched: found.candidates.length,
    replayed: refires.filter((refired) => refired.replayed).length,
    cursor: found.cursor,
  };
  try {
    await deps.replays.recordStep(replay, message.step, outcome, deps.now());
  } catch (error) {
    // Another run of this step counted it and went on.
    if (error instanceof StaleStateError) return { kind: "skipped", reason: error.message };
    throw error;
  }
  const completed = outcome.cursor === undefined;
  if (!completed) {
    await deps.workflowSteps.send(
      { type: "replay", replayId: replay.replayId, step: message.step + 1 },
      stepDurationSeconds(messages.length, deps.pace.perSecond),
    );
  }
  return {
    kind: "stepped",
    step: message.step,
    matched: outcome.matched,
    replayed: outcome.replayed,
    refired: refires.filter((refired) => refired.fresh).length,
    completed,
  };
}

/** What re-firing one candidate came to. */
interface Refire {
  /** The delivery counts as replayed by this replay. */
  readonly replayed: boolean;
  /** This run made it due again. */
  readonly fresh: boolean;
  /** The attempt message to send to the lane, if any. */
  readonly send?: DeliveryAttemptMessage;
}

const NOT_REPLAYED: Refire = { replayed: false, fresh: false };

async function refire(
  deps: ReplayStepDeps,
  replayId: string,
  candidate: ReplayCandidate,
): Promise<Refire> {
  if (candidate.replayedBy === replayId) return replayedEarlier(candidate);
  if (!canReplay(candidate)) return NOT_REPLAYED;
  try {
    const attempt = await deps.deliveries.requestReplay(candidate, replayId, deps.now());
    return { replayed: true, fresh: true, send: attemptMessage(candidate, attempt) };
  } catch (error) {
    if (!(error instanceof StaleStateError)) throw error;
    // The index follows the table a moment late: the delivery itself says what happened.
    const current = await deps.deliveries.get(candidate.deliveryId);
    return current?.replayedBy === replayId ? replayedEarlier(current) : NOT_REPLAYED;
  }
}

/**
 * A delivery an earlier run of this step re-fired. While its attempt has not been made, its
 * message is sent again, in case that run stopped before sending it; the lane makes an attempt
 * only once, whatever the number of its messages.
 */
function replayedEarlier(
  delivery: Pick<Delivery, "deliveryId" | "url" | "status" | "nextAttempt">,
): Refire {
  if (delivery.status !== "pending" || delivery.nextAttempt === null) {
    return { replayed: true, fresh: false };
  }
  return { replayed: true, fresh: false, send: attemptMessage(delivery, delivery.nextAttempt) };
}

/**
 * A message of the step the replay finished last finds the replay still at the next step: the
 * consumer that counted the step may have stopped before sending the next one. Once the replay
 * has stood still for longer than a step and the wait after it take, the next step is sent again;
 * should the first one turn up after all, the step is counted only once.
 */
async function resendStalledStep(
  deps: ReplayStepDeps,
  replay: Replay,
  message: ReplayStepMessage,
): Promise<void> {
  if (replay.steps !== message.step + 1) return;
  if (deps.now() - replay.updatedAt < deps.stalledAfterMs) return;
  await deps.workflowSteps.send({ type: "replay", replayId: replay.replayId, step: replay.steps });
}

/** Maps `items` through `work`, `size` at a time, keeping their order. */
async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    results.push(...(await Promise.all(items.slice(start, start + size).map(work))));
  }
  return results;
}
