import type { DeliveriesTable, DeliveryState } from "#adapters/deliveries-table";
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
export type SweepOutcome =
  /** It had stopped moving: its step or attempt was re-sent, or its webhook action finished. */
  | { readonly kind: "resumed"; readonly reason: string; readonly sent?: string }
  /** It could never move: it failed with the reason. */
  | { readonly kind: "failed"; readonly reason: string }
  /** It is waiting for good reason (on its delivery, or on an attempt in flight). */
  | { readonly kind: "postponed"; readonly reason: string; readonly until: number }
  /** It had ended; a writer that does not keep the index left it there. */
  | { readonly kind: "cleared"; readonly reason: string }
  /** It moved or went while the sweeper looked: nothing to do. */
  | { readonly kind: "skipped"; readonly reason: string }
  /** Looking at it failed; the next run looks again. */
  | { readonly kind: "error"; readonly error: unknown };

/** One overdue item, and what the sweeper did with it. */
export type SweepFinding = FindingSubject & SweepOutcome;

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
          ...(work === "enrollment"
            ? await sweepEnrollment(deps, id)
            : await sweepDelivery(deps, id)),
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
async function sweepEnrollment(deps: SweeperDeps, enrollmentId: string): Promise<SweepFinding[]> {
  const found = await deps.enrollments.getForSweep(enrollmentId);
  if (!found) return [{ work: "enrollment", enrollmentId, kind: "skipped", reason: "not found" }];
  const { enrollment, marks } = found;
  const index = enrollment.currentIndex;
  const subject: FindingSubject = {
    work: "enrollment",
    enrollmentId,
    workflowId: enrollment.workflowId,
    actionIndex: index,
  };
  if (hasEnded(enrollment)) return sweepEndedEnrollment(deps, enrollment, subject);
  const progress = enrollment.actions[index];
  const action = enrollment.definition[index];
  if (!progress || !action) {
    return [
      await clearing(subject, `enrollment has no action ${index}`, () =>
        deps.enrollments.clearSweep(enrollment),
      ),
    ];
  }
  const what = `${action.type} action ${index}`;

  if (progress.status === "running" && action.type === "webhook") {
    return sweepWebhookWait(deps, enrollment, subject, marks);
  }
  if (marks.resumes >= MAX_SWEEP_RESUMES) {
    const reason = `${what} made no progress after ${marks.resumes} resumes by the sweeper`;
    const report = await failAction(deps, enrollment, index, reason);
    return [
      report.kind === "finished"
        ? { ...subject, kind: "failed", reason }
        : { ...subject, kind: "skipped", reason: report.reason },
    ];
  }
  if (progress.status === "running" && action.type === "delay" && progress.startedAt) {
    const resumeAt = deps.deadlines.delayEnd(progress.startedAt, action.seconds);
    await deps.workflowSteps.send({ type: "resume", enrollmentId, actionIndex: index, resumeAt });
    return [
      await resuming(deps, enrollment, subject, marks, {
        reason: `${what} ended at ${isoOrNull(resumeAt)} and did not resume`,
        sent: "resume",
      }),
    ];
  }
  // A pending action's step was lost (or is dead-lettered): start it again. Starting is
  // conditional on the action still pending, so a step that arrives after all does nothing.
  await deps.workflowSteps.send({ type: "advance", enrollmentId, actionIndex: index });
  return [
    await resuming(deps, enrollment, subject, marks, {
      reason: `${what} was ${progress.status} with no step to move it`,
      sent: "advance",
    }),
  ];
}

/** The delivery of the enrollment's current action, when that action is a webhook's. */
function currentDeliveryId(enrollment: Enrollment): string | undefined {
  const progress = enrollment.actions[enrollment.currentIndex];
  if (progress?.type !== "webhook") return undefined;
  return progress.deliveryId ?? deliveryIdFor(enrollment.enrollmentId, progress.actionId);
}

/**
 * An enrollment that ended but is still in the index, where a writer that does not keep it left
 * it (or stopped before releasing the record's place): its place is released, a delivery still
 * open at its last action fails (nothing waits for it any more), and it leaves the index.
 */
async function sweepEndedEnrollment(
  deps: SweeperDeps,
  enrollment: Enrollment,
  subject: FindingSubject,
): Promise<SweepFinding[]> {
  await deps.enrollments.releaseLock(enrollment);
  const findings: SweepFinding[] = [];
  const deliveryId = currentDeliveryId(enrollment);
  const state = deliveryId ? await deps.deliveries.readState(deliveryId) : undefined;
  if (state && isOpen(state.delivery) && state.delivery.retryMode === "auto") {
    findings.push(
      await failing(
        deps,
        state.delivery,
        deliverySubject(state.delivery),
        `enrollment ${enrollment.status}`,
        {
          moveEnrollment: false,
        },
      ),
    );
  }
  findings.push(
    await clearing(subject, `enrollment ${enrollment.status}`, () =>
      deps.enrollments.clearSweep(enrollment),
    ),
  );
  return findings;
}

/**
 * An enrollment waiting on its webhook's delivery. A delivery that was never created (the
 * enrollment is created with its first webhook running, and what was to create the delivery
 * stopped) is started again through the workflow-steps lane, counted as a resume. Until the
 * delivery first retries, the enrollment is what watches it (a delivery enters the index only
 * then, which keeps the index's cost off the deliveries that succeed at once): an overdue first
 * attempt is re-sent here. A delivery that ended without the action being finished has it
 * finished. Otherwise the delivery moves by itself, or its own sweep moves it, and the enrollment
 * is looked at again once the delivery should have moved.
 */
async function sweepWebhookWait(
  deps: SweeperDeps,
  enrollment: Enrollment,
  subject: FindingSubject,
  marks: OpenWorkMarks,
): Promise<SweepFinding[]> {
  const index = enrollment.currentIndex;
  const deliveryId = currentDeliveryId(enrollment) ?? "";
  const withDelivery = { ...subject, deliveryId };
  const state = await deps.deliveries.readState(deliveryId);
  if (!state) {
    const what = `webhook action ${index} has no delivery ${deliveryId}`;
    if (marks.resumes >= MAX_SWEEP_RESUMES) {
      const reason = `${what} after ${marks.resumes} resumes by the sweeper`;
      const report = await failAction(deps, enrollment, index, reason);
      return [
        report.kind === "finished"
          ? { ...withDelivery, kind: "failed", reason }
          : { ...withDelivery, kind: "skipped", reason: report.reason },
      ];
    }
    // The step creates the delivery and hands its first attempt to the webhook lane.
    await deps.workflowSteps.send({
      type: "advance",
      enrollmentId: enrollment.enrollmentId,
      actionIndex: index,
    });
    return [
      await resuming(deps, enrollment, withDelivery, marks, { reason: what, sent: "advance" }),
    ];
  }
  const { delivery } = state;
  if (!isOpen(delivery)) {
    const report = await finishWebhookAction(deps, delivery);
    return [
      report.kind === "finished"
        ? {
            ...withDelivery,
            kind: "resumed",
            reason: `delivery ${delivery.status} but its webhook action was not finished`,
          }
        : { ...withDelivery, kind: "skipped", reason: report.reason },
    ];
  }
  const now = deps.now();
  const watched = state.marks.sweepAt !== undefined;
  const leased = state.leaseUntil !== undefined && state.leaseUntil > now;
  const findings: SweepFinding[] = [];
  let until: number;
  if (watched) {
    until = deps.deadlines.step(Math.max(state.marks.sweepAt ?? now, now));
  } else if (leased) {
    until = deps.deadlines.attempt(state.leaseUntil ?? now);
  } else if (deps.deadlines.attempt(delivery.updatedAt) > now) {
    until = deps.deadlines.attempt(delivery.updatedAt);
  } else {
    findings.push(...(await sweepOpenDelivery(deps, state, deliverySubject(delivery), enrollment)));
    until = deps.deadlines.step(deps.deadlines.attempt(now));
  }
  findings.push(
    await postponing(withDelivery, `delivery is ${delivery.status}`, until, () =>
      deps.enrollments.postponeSweep(enrollment, { until, resumed: false }),
    ),
  );
  return findings;
}

/** One overdue delivery: re-send its due attempt, or fail it when it can no longer matter. */
async function sweepDelivery(deps: SweeperDeps, deliveryId: string): Promise<SweepFinding[]> {
  const state = await deps.deliveries.readState(deliveryId);
  if (!state) return [{ work: "delivery", deliveryId, kind: "skipped", reason: "not found" }];
  const subject = deliverySubject(state.delivery);
  if (!isOpen(state.delivery)) return [await sweepEndedDelivery(deps, state.delivery, subject)];
  return sweepOpenDelivery(deps, state, subject);
}

function deliverySubject(delivery: Delivery): FindingSubject {
  return {
    work: "delivery",
    deliveryId: delivery.deliveryId,
    enrollmentId: delivery.enrollmentId,
    workflowId: delivery.workflowId,
    actionIndex: delivery.actionIndex,
  };
}

function isOpen(delivery: Pick<Delivery, "status">): boolean {
  return delivery.status === "pending" || delivery.status === "retrying";
}

/**
 * An open delivery whose attempt is overdue: re-sent under the same number (the lane makes each
 * attempt once, under a lease), unless an attempt is in flight, its enrollment no longer waits on
 * it, or no re-send moved it: then it fails with the reason. `knownEnrollment` spares a read.
 */
async function sweepOpenDelivery(
  deps: SweeperDeps,
  state: DeliveryState,
  subject: FindingSubject,
  knownEnrollment?: Enrollment,
): Promise<SweepFinding[]> {
  const { delivery, marks, leaseUntil } = state;
  const now = deps.now();
  if (leaseUntil !== undefined && leaseUntil > now) {
    const until = deps.deadlines.attempt(leaseUntil);
    return [
      await postponing(subject, `attempt ${delivery.nextAttempt} is in flight`, until, () =>
        deps.deliveries.postponeSweep(delivery, { until, resumed: false }),
      ),
    ];
  }
  if (delivery.retryMode === "auto") {
    // A manual retry of a failed delivery (`once`) runs after its enrollment moved on; any other
    // delivery matters only while its enrollment waits on it.
    const enrollment = knownEnrollment ?? (await deps.enrollments.get(delivery.enrollmentId));
    const gone = !enrollment
      ? "enrollment not found"
      : hasEnded(enrollment)
        ? `enrollment ${enrollment.status}`
        : enrollment.currentIndex !== delivery.actionIndex
          ? `enrollment moved on to action ${enrollment.currentIndex}`
          : undefined;
    if (gone) return [await failing(deps, delivery, subject, gone, { moveEnrollment: false })];
  }
  if (marks.resumes >= MAX_SWEEP_RESUMES) {
    const reason = `attempt ${delivery.nextAttempt} was not made after ${marks.resumes} re-sends by the sweeper`;
    return [await failing(deps, delivery, subject, reason, { moveEnrollment: true })];
  }
  const next = delivery.nextAttempt ?? delivery.attemptCount + 1;
  await deps.webhookLane.send(attemptMessage(delivery, next));
  const reason =
    delivery.status === "retrying"
      ? `retry ${next} was due at ${isoOrNull(delivery.nextAttemptAt)} and did not fire`
      : `attempt ${next} was due and not made`;
  const until = deps.deadlines.afterResume(now, ATTEMPT_STALL_MS, marks.resumes + 1);
  // From here the delivery is in the index itself, its resumes counted there.
  return [
    await moving({ ...subject, kind: "resumed", reason, sent: `attempt ${next}` }, () =>
      deps.deliveries.postponeSweep(delivery, { until, resumed: true }),
    ),
  ];
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
