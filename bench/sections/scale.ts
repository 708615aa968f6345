/**
 * 8. Scale: wall time and requests for growing numbers of deliveries, end to end for the smaller
 * runs; the largest puts copies of a real delivery on the lane and lets the lane's poller and
 * the deliver function work through them (the API and the engine's first steps left out).
 */
import { type Harness, settle, withLoadedSystem } from "../harness.ts";
import type { ScaleResult, ScaleRun } from "../results.ts";
import { BILLED_REQUESTERS, type CounterSnapshot, EMPTY_RECEIVE } from "../system/counters.ts";
import {
  captureTemplateDelivery,
  createTargets,
  enrollAsFastAsPossible,
  receivedCount,
  targetsNeeded,
  waitForRequests,
} from "./load.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";

const RECORD_BYTES = 1024;
/** Enrollment calls in flight at once: a busy client, closed loop. */
const ENROLL_CONCURRENCY = 32;
/** The slowest pace still counted as finishing, to bound a run on a starved machine. */
const SLOWEST_DELIVERIES_PER_SECOND = 10;
const LANE_ONLY_PATH = "/scale/lane";

/** Deliveries of the end-to-end runs and of the lane-only run; contacts to enroll. */
const SIZES: RunSizes<{ endToEnd: number[]; laneOnly: number; records: number }> = {
  full: { endToEnd: [1_000, 10_000], laneOnly: 100_000, records: 1_000 },
  quick: { endToEnd: [100, 1_000], laneOnly: 2_000, records: 100 },
};

export async function measureScale(context: SectionContext): Promise<ScaleResult> {
  const { endToEnd, laneOnly, records: recordCount } = sizesFor(context, SIZES);
  return withLoadedSystem(
    { count: recordCount, bytes: RECORD_BYTES },
    async ({ harness, appId, records }) => {
      const runs: ScaleRun[] = [];
      for (const deliveries of endToEnd) {
        const targets = await createTargets(harness, {
          prefix: `/scale/${deliveries}`,
          count: targetsNeeded(deliveries, records.length),
          appId,
        });
        const paths = targets.map((target) => target.path);
        await settle(harness);
        await harness.system.call("reset");
        const started = performance.now();
        const sent = await enrollAsFastAsPossible(harness, {
          count: deliveries,
          concurrency: ENROLL_CONCURRENCY,
          targets,
          records,
        });
        const accepted = sent.filter((item) => item.status === 202).length;
        await waitForRequests(harness, paths, accepted, timeoutFor(deliveries));
        const wallSeconds = (performance.now() - started) / 1000;
        await settle(harness);
        const run = scaleRun(
          "end to end",
          await receivedCount(harness, paths),
          wallSeconds,
          await harness.system.call("read"),
        );
        runs.push(run);
        context.log(`  ${describe(run)}`);
      }
      runs.push(await laneOnlyRun(harness, { appId, objectId: records[0] as string, laneOnly }));
      context.log(`  ${describe(runs[runs.length - 1] as ScaleRun)}`);
      return { runs };
    },
  );
}

async function laneOnlyRun(
  harness: Harness,
  options: { readonly appId: string; readonly objectId: string; readonly laneOnly: number },
): Promise<ScaleRun> {
  const enrollmentId = await captureTemplateDelivery(harness, {
    appId: options.appId,
    path: LANE_ONLY_PATH,
    objectId: options.objectId,
  });
  await harness.system.call("seed", { count: options.laneOnly, enrollmentId });
  await settle(harness);
  const before = await receivedCount(harness, [LANE_ONLY_PATH]);
  await harness.system.call("reset");
  const started = performance.now();
  await harness.system.call("enqueueSeeded");
  await waitForRequests(
    harness,
    [LANE_ONLY_PATH],
    before + options.laneOnly,
    timeoutFor(options.laneOnly),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  await settle(harness);
  return scaleRun(
    "lane and deliver only",
    (await receivedCount(harness, [LANE_ONLY_PATH])) - before,
    wallSeconds,
    await harness.system.call("read"),
  );
}

function timeoutFor(deliveries: number): number {
  return Math.max(60_000, (deliveries / SLOWEST_DELIVERIES_PER_SECOND) * 1000);
}

function scaleRun(
  mode: ScaleRun["mode"],
  deliveries: number,
  wallSeconds: number,
  snapshot: CounterSnapshot,
): ScaleRun {
  let requests = 0;
  let deliverRequests = 0;
  for (const [key, count] of Object.entries(snapshot.operations)) {
    const requester = key.split(" ")[0] as (typeof BILLED_REQUESTERS)[number];
    if (!BILLED_REQUESTERS.includes(requester) || key.endsWith(EMPTY_RECEIVE)) continue;
    requests += count.count;
    if (requester === "deliver" || requester === "lanePoller") deliverRequests += count.count;
  }
  return {
    deliveries,
    mode,
    wallSeconds,
    perSecond: deliveries / wallSeconds,
    requests,
    requestsPerDelivery: requests / deliveries,
    deliverRequestsPerDelivery: deliverRequests / deliveries,
    writeKeys: snapshot.writeKeys,
    readKeys: snapshot.readKeys,
    runtimeErrors: snapshot.runtimeErrors,
  };
}

function describe(run: ScaleRun): string {
  return `${run.deliveries} deliveries (${run.mode}): ${run.wallSeconds.toFixed(1)} s, ${run.requestsPerDelivery.toFixed(2)} requests per delivery, ${run.writeKeys.distinct} partition keys written, busiest ${((run.writeKeys.largest / run.writeKeys.total) * 100).toFixed(2)}% of writes`;
}
