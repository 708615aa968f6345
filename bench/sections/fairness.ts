/**
 * 3. Fairness: a healthy receiver's deliveries alone, then again while another receiver that
 * never answers has deliveries queued ahead of them on the same lane.
 */
import { deployedSettings, type Harness, waitUntil, withLoadedSystem } from "../harness.ts";
import type { FairnessResult, HealthyRun } from "../results.ts";
import { percentiles } from "../stats.ts";
import { clock } from "../system/counters.ts";
import {
  arrivalTimes,
  createTargets,
  offerEnrollments,
  receivedCount,
  type Target,
} from "./load.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";

const HEALTHY_PER_SECOND = 10;
const HUNG_DELIVERIES = 200;
/** The hung deliveries are enrolled quickly, so they are all on the lane before the healthy ones. */
const HUNG_ENROLL_PER_SECOND = 100;
/** Messages per deliver invocation, from the lane's definition (infra/definitions.ts). */
const LANE_BATCH_SIZE = 10;
const RECORD_BYTES = 1024;
/** The counter of the engine's sends: for a workflow of one webhook, each is a lane message. */
const LANE_HANDOFF = "engine SQS SendMessage";

/**
 * Healthy deliveries, and how long each may take to count as arrived. The shortened window
 * still outlasts one round of hung batches (the delivery client's 30 s response timeout).
 */
const SIZES: RunSizes<{ healthyCount: number; windowSeconds: number }> = {
  full: { healthyCount: 50, windowSeconds: 60 },
  quick: { healthyCount: 20, windowSeconds: 40 },
};

export async function measureFairness(context: SectionContext): Promise<FairnessResult> {
  const { healthyCount, windowSeconds } = sizesFor(context, SIZES);
  return withLoadedSystem(
    { count: HUNG_DELIVERIES, bytes: RECORD_BYTES },
    async ({ harness, appId, records }) => {
      const [alone, beside] = await createTargets(harness, { prefix: "/healthy", count: 2, appId });
      const hungPort = await harness.addReceiver();
      const [hung] = await createTargets(harness, {
        prefix: "/hung",
        count: 1,
        appId,
        port: hungPort,
      });
      if (!alone || !beside || !hung) throw new Error("workflows missing");
      await harness.answer(hung.path, { kind: "hang" });

      const aloneRun = await healthyRun(
        harness,
        alone,
        records.slice(0, healthyCount),
        windowSeconds,
      );
      context.log(
        `  alone: ${aloneRun.arrivedWithinWindow}/${healthyCount} within ${windowSeconds} s, p95 ${aloneRun.latencyMs.p95.toFixed(0)} ms`,
      );

      await harness.system.call("reset");
      await offerEnrollments(harness, {
        rate: HUNG_ENROLL_PER_SECOND,
        count: HUNG_DELIVERIES,
        targets: [hung],
        records,
      });
      // The engine's one SQS message per enrollment here is the delivery's first attempt on the lane.
      await waitUntil(async () => {
        const { operations } = await harness.system.call("read");
        return (operations[LANE_HANDOFF]?.count ?? 0) >= HUNG_DELIVERIES;
      }, 60_000);
      const held = await receivedCount(harness, [hung.path]);
      const withHung = await healthyRun(
        harness,
        beside,
        records.slice(0, healthyCount),
        windowSeconds,
      );
      context.log(
        `  beside a receiver that never answers: ${withHung.arrivedWithinWindow}/${healthyCount} within ${windowSeconds} s${withHung.arrivedWithinWindow > 0 ? `, p95 of those ${withHung.latencyMs.p95.toFixed(0)} ms` : ""}`,
      );
      await harness.receivers.call("releaseHanging");
      const settings = deployedSettings();
      return {
        laneConcurrency: settings.webhookLaneMaxConcurrency,
        batchSize: LANE_BATCH_SIZE,
        hungQueued: HUNG_DELIVERIES,
        hungHeldAtStart: held,
        healthyPerSecond: HEALTHY_PER_SECOND,
        alone: aloneRun,
        withHungReceiver: withHung,
      };
    },
  );
}

/**
 * Enrolls the records into the healthy workflow at 10 a second and gives each delivery until
 * `windowSeconds` after its enrollment was answered.
 */
async function healthyRun(
  harness: Harness,
  target: Target,
  records: readonly string[],
  windowSeconds: number,
): Promise<HealthyRun> {
  const sent = await offerEnrollments(harness, {
    rate: HEALTHY_PER_SECOND,
    count: records.length,
    targets: [target],
    records,
  });
  const lastAnswered = sent.reduce((last, item) => Math.max(last, item.answeredAt), 0);
  await waitUntil(
    async () => (await receivedCount(harness, [target.path])) >= sent.length,
    Math.max(0, lastAnswered + windowSeconds * 1000 - clock()),
    200,
  );
  const arrived = await arrivalTimes(harness, sent);
  const latencies: number[] = [];
  sent.forEach((item, index) => {
    const at = arrived[index];
    if (at !== undefined && at - item.answeredAt <= windowSeconds * 1000) {
      latencies.push(at - item.answeredAt);
    }
  });
  return {
    enrollments: sent.length,
    arrivedWithinWindow: latencies.length,
    windowSeconds,
    latencyMs: percentiles(latencies),
  };
}
