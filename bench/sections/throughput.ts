/**
 * 2. Throughput: deliveries per second sustained while 200 enrollments a second are offered,
 * beside what the same receiver takes from a plain undici POST loop with the same body size.
 */
import { Pool } from "undici";
import { type Harness, settle, withLoadedSystem } from "../harness.ts";
import type { ReceiverCeiling, ThroughputResult } from "../results.ts";
import {
  arrivalTimes,
  averageBodyBytes,
  createTargets,
  offerEnrollments,
  targetsNeeded,
  waitForRequests,
} from "./load.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";

const OFFERED_PER_SECOND = 200;
const RECORD_BYTES = 1024;
const DRAIN_TIMEOUT_MS = 120_000;
/** Requests in flight in the ceiling loop: as many as the lane's batches could hold at once. */
const CEILING_CONCURRENCY = 32;

/**
 * The rate is read between these shares of the deliveries (by arrival): the first arrive while
 * the pipeline fills and the last while it drains, and a system that cannot keep up delivers the
 * middle at its own pace, however late.
 */
const STEADY_SHARE: readonly [number, number] = [0.1, 0.9];

/** Seconds of offered load, contacts to enroll, and seconds of the receiver's ceiling loop. */
const SIZES: RunSizes<{ offerSeconds: number; records: number; ceilingSeconds: number }> = {
  full: { offerSeconds: 20, records: 500, ceilingSeconds: 5 },
  quick: { offerSeconds: 5, records: 100, ceilingSeconds: 2 },
};

export async function measureThroughput(context: SectionContext): Promise<ThroughputResult> {
  const { offerSeconds, records: recordCount, ceilingSeconds } = sizesFor(context, SIZES);
  return withLoadedSystem(
    { count: recordCount, bytes: RECORD_BYTES },
    async ({ harness, appId, records }) => {
      const count = OFFERED_PER_SECOND * offerSeconds;
      const targets = await createTargets(harness, {
        prefix: "/throughput",
        count: targetsNeeded(count, records.length),
        appId,
      });
      const paths = targets.map((target) => target.path);
      await harness.system.call("reset");
      const sent = await offerEnrollments(harness, {
        rate: OFFERED_PER_SECOND,
        count,
        targets,
        records,
      });
      const accepted = sent.filter((item) => item.status === 202).length;
      await waitForRequests(harness, paths, accepted, DRAIN_TIMEOUT_MS);
      await settle(harness);
      const { runtimeErrors } = await harness.system.call("read");
      const arrived = (await arrivalTimes(harness, sent))
        .filter((at): at is number => at !== undefined)
        .sort((a, b) => a - b);
      const start = sent[0]?.sentAt ?? 0;
      const [first, last] = STEADY_SHARE.map((share) =>
        Math.min(arrived.length - 1, Math.floor(share * arrived.length)),
      ) as [number, number];
      const [from, to] = [arrived[first] ?? start, arrived[last] ?? start];
      const inWindow = last - first;
      const sustainedPerSecond = to > from ? (inWindow * 1000) / (to - from) : 0;
      const bodyBytes = await averageBodyBytes(harness, paths);
      context.log(
        `  sustained ${sustainedPerSecond.toFixed(1)} deliveries/s with ${OFFERED_PER_SECOND}/s offered; ${arrived.length}/${count} delivered`,
      );
      const receiverCeiling = await measureReceiverCeiling(harness, {
        bodyBytes,
        seconds: ceilingSeconds,
      });
      context.log(
        `  receiver ceiling ${receiverCeiling.perSecond.toFixed(0)} requests/s (undici, ${CEILING_CONCURRENCY} at once)`,
      );
      return {
        offeredPerSecond: OFFERED_PER_SECOND,
        offerSeconds,
        steadyShare: STEADY_SHARE,
        steadySeconds: [(from - start) / 1000, (to - start) / 1000],
        enrollments: count,
        refused: count - accepted,
        deliveredInWindow: inWindow,
        sustainedPerSecond,
        delivered: arrived.length,
        drainedAfterSeconds: ((arrived[arrived.length - 1] ?? start) - start) / 1000,
        bodyBytes,
        runtimeErrors,
        receiverCeiling,
        ratio: sustainedPerSecond / receiverCeiling.perSecond,
      };
    },
  );
}

/** A POST body of exactly `bytes` bytes of JSON, like a webhook's. */
export function jsonBody(bytes: number): string {
  const frame = '{"padding":""}';
  return `{"padding":"${"x".repeat(Math.max(0, bytes - frame.length))}"}`;
}

/**
 * Requests per second the receiver answers when nothing but a plain undici POST loop calls it:
 * keep-alive connections, `concurrency` requests in flight, after a one-second warm-up.
 */
export async function measureReceiverCeiling(
  harness: Harness,
  options: { readonly bodyBytes: number; readonly seconds: number },
): Promise<ReceiverCeiling> {
  const path = "/ceiling";
  await harness.answer(path, { kind: "status", status: 200 }, false);
  const url = new URL(harness.receiverUrl(path));
  const pool = new Pool(url.origin, {
    connections: CEILING_CONCURRENCY,
    connect: { ca: harness.certificate.cert },
  });
  const body = jsonBody(options.bodyBytes);
  const post = async () => {
    const response = await pool.request({
      method: "POST",
      path,
      headers: { "content-type": "application/json" },
      body,
    });
    await response.body.dump();
  };
  const loop = async (until: number) => {
    let requests = 0;
    const worker = async () => {
      while (performance.now() < until) {
        await post();
        requests += 1;
      }
    };
    await Promise.all(Array.from({ length: CEILING_CONCURRENCY }, worker));
    return requests;
  };
  try {
    await loop(performance.now() + 1000);
    const started = performance.now();
    const requests = await loop(started + options.seconds * 1000);
    const seconds = (performance.now() - started) / 1000;
    return {
      concurrency: CEILING_CONCURRENCY,
      bodyBytes: options.bodyBytes,
      seconds,
      requests,
      perSecond: requests / seconds,
    };
  } finally {
    await pool.close();
  }
}
