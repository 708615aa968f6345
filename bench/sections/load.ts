/**
 * Enrollment load for the sections that measure deliveries: workflows pointing at tracked
 * receiver paths, enrollments offered at a rate, and the webhooks matched back to them.
 * A record may be active once per workflow, so enrollment i goes to workflow ⌊i / records⌋.
 */
import {
  createWebhookWorkflow,
  type Enrolled,
  enroll,
  enrollmentEnded,
  type Harness,
  offerOpenLoop,
  waitUntil,
} from "../harness.ts";
import { inParallel } from "../parallel.ts";

export interface Target {
  readonly workflowId: string;
  readonly path: string;
}

/** `count` workflows of one signed webhook each, to `<prefix>/<n>` on `port`, all answering 200. */
export async function createTargets(
  harness: Harness,
  options: {
    readonly prefix: string;
    readonly count: number;
    readonly appId: string;
    readonly port?: number;
  },
): Promise<Target[]> {
  const targets: Target[] = [];
  for (let index = 0; index < options.count; index++) {
    const path = `${options.prefix}/${index}`;
    await harness.answer(path, { kind: "status", status: 200 });
    const url = harness.receiverUrl(path, options.port);
    targets.push({ workflowId: await createWebhookWorkflow(harness, url, options.appId), path });
  }
  return targets;
}

/** Workflows enough for `enrollments` over `records` records. */
export function targetsNeeded(enrollments: number, records: number): number {
  return Math.max(1, Math.ceil(enrollments / records));
}

export interface Sent extends Enrolled {
  readonly path: string;
}

/** Enrollment `index` of a plan: its workflow and record. */
function pick(targets: readonly Target[], records: readonly string[], index: number) {
  const target = targets[Math.floor(index / records.length)];
  if (!target) throw new Error(`no workflow left for enrollment ${index}`);
  return { target, objectId: records[index % records.length] as string };
}

/** Offers `count` enrollments at `rate` per second, open loop. */
export function offerEnrollments(
  harness: Harness,
  options: {
    readonly rate: number;
    readonly count: number;
    readonly targets: readonly Target[];
    readonly records: readonly string[];
  },
): Promise<Sent[]> {
  return offerOpenLoop(options.rate, options.count, async (index) => {
    const { target, objectId } = pick(options.targets, options.records, index);
    return { ...(await enroll(harness, target.workflowId, objectId)), path: target.path };
  });
}

/** Sends `count` enrollments as fast as `concurrency` callers can (closed loop). */
export async function enrollAsFastAsPossible(
  harness: Harness,
  options: {
    readonly count: number;
    readonly concurrency: number;
    readonly targets: readonly Target[];
    readonly records: readonly string[];
  },
): Promise<Sent[]> {
  const sent: Sent[] = [];
  const indexes = Array.from({ length: options.count }, (_, index) => index);
  await inParallel(indexes, options.concurrency, async (index) => {
    const { target, objectId } = pick(options.targets, options.records, index);
    sent[index] = { ...(await enroll(harness, target.workflowId, objectId)), path: target.path };
  });
  return sent;
}

/** Requests each path has received so far. */
export async function receivedCount(harness: Harness, paths: readonly string[]): Promise<number> {
  const counts = await harness.receivers.call("counts");
  return paths.reduce((total, path) => total + (counts[path]?.requests ?? 0), 0);
}

/** Waits until the paths together have received `expected` requests; false on timeout. */
export function waitForRequests(
  harness: Harness,
  paths: readonly string[],
  expected: number,
  timeoutMs: number,
): Promise<boolean> {
  return waitUntil(async () => (await receivedCount(harness, paths)) >= expected, timeoutMs, 200);
}

/** When each sent enrollment's webhook first arrived (undefined when it has not). */
export async function arrivalTimes(
  harness: Harness,
  sent: readonly Sent[],
): Promise<(number | undefined)[]> {
  const byPath = new Map<string, Map<string, number>>();
  for (const path of new Set(sent.map((item) => item.path))) {
    const first = new Map<string, number>();
    for (const [record, at] of await harness.receivers.call("arrivals", path)) {
      if (!first.has(record)) first.set(record, at);
    }
    byPath.set(path, first);
  }
  return sent.map((item) => byPath.get(item.path)?.get(item.objectId));
}

/** The average webhook body the paths received, in bytes. */
export async function averageBodyBytes(
  harness: Harness,
  paths: readonly string[],
): Promise<number> {
  const counts = await harness.receivers.call("counts");
  let requests = 0;
  let bytes = 0;
  for (const path of paths) {
    requests += counts[path]?.requests ?? 0;
    bytes += counts[path]?.bodyBytes ?? 0;
  }
  return requests === 0 ? 0 : Math.round(bytes / requests);
}

/**
 * Makes one real delivery to `path` with the system process keeping a copy of it as the engine
 * stored it, so that `seed` can store many more like it; returns its enrollment's id.
 */
export async function captureTemplateDelivery(
  harness: Harness,
  options: { readonly appId: string; readonly path: string; readonly objectId: string },
): Promise<string> {
  await harness.answer(options.path, { kind: "status", status: 200 }, false);
  const workflowId = await createWebhookWorkflow(
    harness,
    harness.receiverUrl(options.path),
    options.appId,
  );
  await harness.system.call("armTemplate");
  const enrolled = await enroll(harness, workflowId, options.objectId);
  if (!enrolled.enrollmentId) throw new Error(`enrolling answered ${enrolled.status}`);
  await enrollmentEnded(harness, enrolled.enrollmentId);
  return enrolled.enrollmentId;
}
