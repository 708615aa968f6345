import type { DeliveriesTable } from "#adapters/deliveries-table";
import type { EnrollmentsTable } from "#adapters/enrollments-table";
import type { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import type { OpenWorkMarks } from "#adapters/open-work-index";
import type { RecordsTable } from "#adapters/records-table";
import { failAction, finishWebhookAction } from "#app/enrollment-progress";
import { attemptMessage, type Delivery, deliveryIdFor } from "#domain/delivery";
import { type Enrollment, hasEnded, isoOrNull } from "#domain/enrollment";
import { StaleStateError } from "#domain/errors";
import {
  ATTEMPT_STALL_MS,
  MAX_SWEEP_RESUMES,
  type OpenWorkDeadlines,
  STEP_STALL_MS,
  SWEEP_SHARDS,
} from "#domain/open-work";

export interface SweeperDeps {
  readonly enrollments: EnrollmentsTable;
  readonly deliveries: DeliveriesTable;
  /** Where the outputs of a webhook that ended go, when the sweeper finishes its action. */
  readonly records: RecordsTable;
  readonly workflowSteps: WorkflowStepsQueue;
  readonly webhookLane: WebhookLaneQueue;
  /** The clock the writers use; the sweeper compares it with the times they wrote. */
  readonly now: () => number;
  /** The writers' deadlines: the same stall thresholds and time scale. */
  readonly deadlines: OpenWorkDeadlines;
  /**
   * Real milliseconds the run may still start repairs in; a run stops when it reaches zero and
   * the next run takes up the rest. Unbounded when absent.
   */
  readonly timeLeftMs?: () => number;
}

/**
 * Overdue items read per shard and table in one run: 32 shards of 25 make at most 800 of each
 * kind, which a run repairs in well under its minute. Work beyond it is read by the next run.
 */
export const SWEEP_PAGE_SIZE = 25;

/**
 * Shards swept at once per table: enough to finish a run of full pages in time, few enough that
 * a run never competes with the lanes for DynamoDB or SQS.
 */
const SWEEP_CONCURRENCY = 4;

/** Which kind of open work a finding is about. */
export type OpenWorkKind = "enrollment" | "delivery";

/** The work a finding is about, for logs. */
export interface FindingSubject {
  readonly work: OpenWorkKind;
  readonly enrollmentId?: string;
  readonly deliveryId?: string;
  readonly workflowId?: string;
  readonly actionIndex?: number;
}

/** What the sweeper did with one overdue item. */
export type SweepFinding = FindingSubject &
  (
    | /** It had stopped moving: its step or attempt was re-sent, or its webhook action finished. */
    { readonly kind: "resumed"; readonly reason: string; readonly sent?: string }
    /** It could never move: it failed with the reason. */
    | { readonly kind: "failed"; readonly reason: string }
    /** It is legitimately waiting (on its delivery, or on an attempt in flight). */
    | { readonly kind: "postponed"; readonly reason: string; readonly until: number }
    /** It had ended; a writer that does not keep the index left it there. */
    | { readonly kind: "cleared"; readonly reason: string }
    /** It moved or went while the sweeper looked: nothing to do. */
    | { readonly kind: "skipped"; readonly reason: string }
    /** Looking at it failed; the next run looks again. */
    | { readonly kind: "error"; readonly error: unknown }
  );

/** One run of the sweeper. */
export interface SweepRun {
  readonly findings: readonly SweepFinding[];
  /** False when the run stopped for time before it read every page it meant to. */
  readonly complete: boolean;
}

/**
 * Finds the open work that made no progress for longer than it should have, in bounded pages of
 * the open-work index (never a scan), and resumes it (re-sends its step or attempt, which are
 * idempotent and conditional) or, when it cannot run, fails it with the reason. Each item is read
 * again before anything is done to it, and each write is conditional on what was read.
 */
export async function sweepOpenWork(deps: SweeperDeps): Promise<SweepRun> {
  const findings: SweepFinding[] = [];
  let complete = true;
  const now = deps.now();
  const shards = Array.from({ length: SWEEP_SHARDS }, (_, shard) => shard);
  const timeIsUp = () => deps.timeLeftMs !== undefined && deps.timeLeftMs() <= 0;

  const sweepShard = async (work: OpenWorkKind, shard: number) => {
    if (timeIsUp()) {
      complete = false;
      return;
    }
    const table = work === "enrollment" ? deps.enrollments : deps.deliveries;
    let ids: string[];
    try {
      ids = await table.overdue(shard, now, SWEEP_PAGE_SIZE);
    } catch (error) {
      findings.push({ work, kind: "error", error });
      return;
    }
    for (const id of ids) {
      if (timeIsUp()) {
        complete = false;
        return;
      }
      const subject: FindingSubject =
        work === "enrollment" ? { work, enrollmentId: id } : { work, deliveryId: id };
      try {
        findings.push(
          work === "enrollment" ? await sweepEnrollment(deps, id) : await sweepDelivery(deps, id),
        );
      } catch (error) {
        findings.push({ ...subject, kind: "error", error });
      }
    }
  };

  await Promise.all(
    (["enrollment", "delivery"] as const).map((work) =>
      inTurns(shards, SWEEP_CONCURRENCY, (shard) => sweepShard(work, shard)),
    ),
  );
  return { findings, complete };
}

/** Runs `task` for every item, at most `concurrency` at a time. */
async function inTurns<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** One overdue enrollment: what its current action waits for, and whether that can still come. */
async function sweepEnrollment(deps: SweeperDeps, enrollmentId: string): Promise<SweepFinding> {
  const found = await deps.enrollments.getForSweep(enrollmentId);
  if (!found) return { work: "enrollment", enrollmentId, kind: "skipped", reason: "not found" };
  const { enrollment, marks } = found;
  const index = enrollment.currentIndex;
  const subject: FindingSubject = {
    work: "enrollment",
    enrollmentId,
    workflowId: enrollment.workflowId,
    actionIndex: index,
  };
  if (hasEnded(enrollment)) {
    // A writer stopped between ending it and releasing the record's place, or does not keep
    // the index: both are safe to finish here.
    await deps.enrollments.releaseLock(enrollment);
    return clearing(subject, `enrollment ${enrollment.status}`, () =>
      deps.enrollments.clearSweep(enrollment),
    );
  }
  const progress = enrollment.actions[index];
  const action = enrollment.definition[index];
  if (!progress || !action) {
    return clearing(subject, `enrollment has no action ${index}`, () =>
      deps.enrollments.clearSweep(enrollment),
    );
  }
  const what = `${action.type} action ${index}`;

  if (progress.status === "running" && action.type === "webhook") {
    return sweepWebhookWait(deps, enrollment, subject, progress.deliveryId);
  }
  if (marks.resumes >= MAX_SWEEP_RESUMES) {
    const reason = `${what} made no progress after ${marks.resumes} resumes by the sweeper`;
    const report = await failAction(deps, enrollment, index, reason);
    return report.kind === "finished"
      ? { ...subject, kind: "failed", reason }
      : { ...subject, kind: "skipped", reason: report.reason };
  }
  if (progress.status === "running" && action.type === "delay" && progress.startedAt) {
    const resumeAt = deps.deadlines.delayEnd(progress.startedAt, action.seconds);
    await deps.workflowSteps.send({ type: "resume", enrollmentId, actionIndex: index, resumeAt });
    return resuming(deps, enrollment, subject, marks, {
      reason: `${what} ended at ${isoOrNull(resumeAt)} and did not resume`,
      sent: "resume",
    });
  }
  // A pending action's step was lost (or is dead-lettered): start it again. Starting is
  // conditional on the action still pending, so a step that arrives after all does nothing.
  await deps.workflowSteps.send({ type: "advance", enrollmentId, actionIndex: index });
  return resuming(deps, enrollment, subject, marks, {
    reason: `${what} was ${progress.status} with no step to move it`,
    sent: "advance",
  });
}

/**
 * An enrollment waiting on its webhook's delivery: fine while the delivery is open (its own
 * sweep keeps it moving), overdue once the delivery ended and the action was not finished.
 */
async function sweepWebhookWait(
  deps: SweeperDeps,
  enrollment: Enrollment,
  subject: FindingSubject,
  knownDeliveryId: string | undefined,
): Promise<SweepFinding> {
  const index = enrollment.currentIndex;
  const actionId = enrollment.actions[index]?.actionId ?? "";
  const deliveryId = knownDeliveryId ?? deliveryIdFor(enrollment.enrollmentId, actionId);
  const withDelivery = { ...subject, deliveryId };
  const state = await deps.deliveries.readState(deliveryId);
  if (!state) {
    const reason = `webhook action ${index} has no delivery ${deliveryId}`;
    const report = await failAction(deps, enrollment, index, reason);
    return report.kind === "finished"
      ? { ...withDelivery, kind: "failed", reason }
      : { ...withDelivery, kind: "skipped", reason: report.reason };
  }
  const { delivery } = state;
  if (delivery.status === "succeeded" || delivery.status === "failed") {
    const report = await finishWebhookAction(deps, delivery);
    return report.kind === "finished"
      ? {
          ...withDelivery,
          kind: "resumed",
          reason: `delivery ${delivery.status} but its webhook action was not finished`,
        }
      : { ...withDelivery, kind: "skipped", reason: report.reason };
  }
  // The delivery moves by itself, or its own sweep moves it: look again once it should have.
  const until = deps.deadlines.step(Math.max(state.marks.sweepAt ?? 0, deps.now()));
  return postponing(withDelivery, `delivery is ${delivery.status}`, until, () =>
    deps.enrollments.postponeSweep(enrollment, { until, resumed: false }),
  );
}

/** One overdue delivery: re-send its due attempt, or fail it when it can no longer matter. */
async function sweepDelivery(deps: SweeperDeps, deliveryId: string): Promise<SweepFinding> {
  const state = await deps.deliveries.readState(deliveryId);
  if (!state) return { work: "delivery", deliveryId, kind: "skipped", reason: "not found" };
  const { delivery, marks, leaseUntil } = state;
  const subject: FindingSubject = {
    work: "delivery",
    deliveryId,
    enrollmentId: delivery.enrollmentId,
    workflowId: delivery.workflowId,
    actionIndex: delivery.actionIndex,
  };
  if (delivery.status === "succeeded" || delivery.status === "failed") {
    return sweepEndedDelivery(deps, delivery, subject);
  }
  const now = deps.now();
  if (leaseUntil !== undefined && leaseUntil > now) {
    const until = deps.deadlines.attempt(leaseUntil);
    return postponing(subject, `attempt ${delivery.nextAttempt} is in flight`, until, () =>
      deps.deliveries.postponeSweep(delivery, { until, resumed: false }),
    );
  }
  if (delivery.retryMode === "auto") {
    // A manual retry of a failed delivery (`once`) runs after its enrollment moved on; any other
    // delivery matters only while its enrollment waits on it.
    const enrollment = await deps.enrollments.get(delivery.enrollmentId);
    const gone = !enrollment
      ? "enrollment not found"
      : hasEnded(enrollment)
        ? `enrollment ${enrollment.status}`
        : enrollment.currentIndex !== delivery.actionIndex
          ? `enrollment moved on to action ${enrollment.currentIndex}`
          : undefined;
    if (gone) return failing(deps, delivery, subject, gone, { moveEnrollment: false });
  }
  if (marks.resumes >= MAX_SWEEP_RESUMES) {
    const reason = `attempt ${delivery.nextAttempt} was not made after ${marks.resumes} re-sends by the sweeper`;
    return failing(deps, delivery, subject, reason, { moveEnrollment: true });
  }
  const next = delivery.nextAttempt ?? delivery.attemptCount + 1;
  await deps.webhookLane.send(attemptMessage(delivery, next));
  const reason =
    delivery.status === "retrying"
      ? `retry ${next} was due at ${isoOrNull(delivery.nextAttemptAt)} and did not fire`
      : `attempt ${next} was due and not made`;
  const resumes = marks.resumes + 1;
  const until = deps.deadlines.afterResume(now, ATTEMPT_STALL_MS, resumes);
  return moving({ ...subject, kind: "resumed", reason, sent: `attempt ${next}` }, () =>
    deps.deliveries.postponeSweep(delivery, { until, resumed: true }),
  );
}

/**
 * An ended delivery still in the index: make sure its enrollment moved past it (safe to repeat),
 * then take it out.
 */
async function sweepEndedDelivery(
  deps: SweeperDeps,
  delivery: Delivery,
  subject: FindingSubject,
): Promise<SweepFinding> {
  const report =
    delivery.retryMode === "auto" ? await finishWebhookAction(deps, delivery) : undefined;
  const cleared = await clearing(subject, `delivery ${delivery.status}`, () =>
    deps.deliveries.clearSweep(delivery),
  );
  return report?.kind === "finished"
    ? {
        ...subject,
        kind: "resumed",
        reason: `delivery ${delivery.status} but its webhook action was not finished`,
      }
    : cleared;
}

/** Fails an open delivery; when its enrollment waits on it, the enrollment moves on. */
async function failing(
  deps: SweeperDeps,
  delivery: Delivery,
  subject: FindingSubject,
  reason: string,
  options: { readonly moveEnrollment: boolean },
): Promise<SweepFinding> {
  try {
    await deps.deliveries.failOpen(delivery, reason, deps.now());
  } catch (error) {
    if (error instanceof StaleStateError)
      return { ...subject, kind: "skipped", reason: error.message };
    throw error;
  }
  if (options.moveEnrollment && delivery.retryMode === "auto") {
    await finishWebhookAction(deps, { ...delivery, status: "failed" });
  }
  return { ...subject, kind: "failed", reason };
}

/** Counts a resume of an enrollment and looks at it again after a longer wait. */
function resuming(
  deps: SweeperDeps,
  enrollment: Enrollment,
  subject: FindingSubject,
  marks: OpenWorkMarks,
  done: { readonly reason: string; readonly sent: string },
): Promise<SweepFinding> {
  const until = deps.deadlines.afterResume(deps.now(), STEP_STALL_MS, marks.resumes + 1);
  return moving({ ...subject, kind: "resumed", ...done }, () =>
    deps.enrollments.postponeSweep(enrollment, { until, resumed: true }),
  );
}

/**
 * After a re-send: the item is due again later. When it moved meanwhile, the write loses its
 * condition, which is fine: it moved, and its own write set its due time.
 */
async function moving(finding: SweepFinding, postpone: () => Promise<void>): Promise<SweepFinding> {
  try {
    await postpone();
  } catch (error) {
    if (!(error instanceof StaleStateError)) throw error;
  }
  return finding;
}

async function postponing(
  subject: FindingSubject,
  reason: string,
  until: number,
  postpone: () => Promise<void>,
): Promise<SweepFinding> {
  try {
    await postpone();
  } catch (error) {
    if (error instanceof StaleStateError)
      return { ...subject, kind: "skipped", reason: error.message };
    throw error;
  }
  return { ...subject, kind: "postponed", reason, until };
}

async function clearing(
  subject: FindingSubject,
  reason: string,
  clear: () => Promise<void>,
): Promise<SweepFinding> {
  try {
    await clear();
  } catch (error) {
    if (error instanceof StaleStateError)
      return { ...subject, kind: "skipped", reason: error.message };
    throw error;
  }
  return { ...subject, kind: "cleared", reason };
}
