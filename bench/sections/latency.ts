/**
 * 1. Latency: enrollment answered to webhook received, at several offered rates, open loop,
 * each after a warm-up at the same rate.
 */
import { type Harness, settle, withLoadedSystem } from "../harness.ts";
import type { LatencyResult, RateLatency } from "../results.ts";
import { percentiles } from "../stats.ts";
import {
  arrivalTimes,
  averageBodyBytes,
  createTargets,
  offerEnrollments,
  targetsNeeded,
  waitForRequests,
} from "./load.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";

const RATES = [50, 100, 200];
/** A webhook body of about 1 KiB: a contact with a few properties. */
const RECORD_BYTES = 1024;
/** How long the backlog of one rate may take to drain before the next rate starts. */
const DRAIN_TIMEOUT_MS = 90_000;
/** Seconds of warm-up and of measurement per rate; contacts to enroll (each once a workflow). */
const SIZES: RunSizes<{ warmupSeconds: number; measureSeconds: number; records: number }> = {
  full: { warmupSeconds: 3, measureSeconds: 15, records: 500 },
  quick: { warmupSeconds: 1, measureSeconds: 3, records: 100 },
};

export async function measureLatency(context: SectionContext): Promise<LatencyResult> {
  const { warmupSeconds, measureSeconds, records: recordCount } = sizesFor(context, SIZES);
  return withLoadedSystem(
    { count: recordCount, bytes: RECORD_BYTES },
    async ({ harness, appId, records }) => {
      const rates: RateLatency[] = [];
      const paths: string[] = [];
      for (const rate of RATES) {
        const result = await measureRate(harness, {
          rate,
          warmupSeconds,
          measureSeconds,
          appId,
          records,
        });
        rates.push(result.latency);
        paths.push(...result.paths);
        context.log(
          `  ${rate}/s offered: p50 ${result.latency.latencyMs.p50.toFixed(0)} ms, p95 ${result.latency.latencyMs.p95.toFixed(0)} ms, p99 ${result.latency.latencyMs.p99.toFixed(0)} ms (${result.latency.delivered}/${result.latency.enrollments} delivered)`,
        );
      }
      return {
        warmupSeconds,
        measureSeconds,
        bodyBytes: await averageBodyBytes(harness, paths),
        rates,
      };
    },
  );
}

async function measureRate(
  harness: Harness,
  options: {
    readonly rate: number;
    readonly warmupSeconds: number;
    readonly measureSeconds: number;
    readonly appId: string;
    readonly records: readonly string[];
  },
): Promise<{ latency: RateLatency; paths: string[] }> {
  const { rate, records } = options;
  const warmup = Math.round(rate * options.warmupSeconds);
  const count = warmup + Math.round(rate * options.measureSeconds);
  const targets = await createTargets(harness, {
    prefix: `/latency/${rate}`,
    count: targetsNeeded(count, records.length),
    appId: options.appId,
  });
  const paths = targets.map((target) => target.path);
  await harness.system.call("reset");
  const sent = await offerEnrollments(harness, { rate, count, targets, records });
  const accepted = sent.filter((item) => item.status === 202).length;
  await waitForRequests(harness, paths, accepted, DRAIN_TIMEOUT_MS);
  await settle(harness);
  const { runtimeErrors } = await harness.system.call("read");
  const arrived = await arrivalTimes(harness, sent);
  const measured = sent.slice(warmup);
  const latencies: number[] = [];
  measured.forEach((item, index) => {
    const at = arrived[warmup + index];
    if (item.status === 202 && at !== undefined) latencies.push(at - item.answeredAt);
  });
  const first = measured[0]?.sentAt ?? 0;
  const last = measured[measured.length - 1]?.sentAt ?? first;
  return {
    latency: {
      offeredPerSecond: rate,
      sentPerSecond:
        last > first ? ((measured.length - 1) * 1000) / (last - first) : measured.length,
      enrollments: measured.length,
      refused: measured.filter((item) => item.status !== 202).length,
      delivered: latencies.length,
      latencyMs: percentiles(latencies),
      apiAnswerMs: percentiles(measured.map((item) => item.answeredAt - item.sentAt)),
      runtimeErrors,
    },
    paths,
  };
}
