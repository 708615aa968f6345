/**
 * 4. CPU per delivery: the deliver handler's own (invocations one at a time, process.cpuUsage
 * around each), a bare undici POST's, and the whole system process's under load.
 */
import { Pool } from "undici";
import { type Harness, settle, withLoadedSystem } from "../harness.ts";
import type { CpuResult } from "../results.ts";
import { median, percentile } from "../stats.ts";
import {
  averageBodyBytes,
  captureTemplateDelivery,
  createTargets,
  offerEnrollments,
  receivedCount,
  targetsNeeded,
  waitForRequests,
} from "./load.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";
import { jsonBody } from "./throughput.ts";

/** Messages per deliver invocation, as the lane hands them out (infra/definitions.ts). */
const BATCH_SIZE = 10;
/** Invocations before these only warm the handler up (JIT, connections) and are not kept. */
const WARMUP_INVOCATIONS = 5;
/** Rounds of the bare POST loop; the median round is reported. */
const BARE_ROUNDS = 5;
const LOADED_PER_SECOND = 100;
const RECORD_BYTES = 1024;
const DIRECT_PATH = "/cpu/direct";

/** Deliveries through the handler (and bare POSTs), seconds of load, contacts to enroll. */
const SIZES: RunSizes<{ deliveries: number; loadedSeconds: number; records: number }> = {
  full: { deliveries: 1000, loadedSeconds: 10, records: 500 },
  quick: { deliveries: 100, loadedSeconds: 3, records: 100 },
};

export async function measureCpu(context: SectionContext): Promise<CpuResult> {
  const { deliveries, loadedSeconds, records: recordCount } = sizesFor(context, SIZES);
  return withLoadedSystem(
    { count: recordCount, bytes: RECORD_BYTES },
    async ({ harness, appId, records }) => {
      const enrollmentId = await captureTemplateDelivery(harness, {
        appId,
        path: DIRECT_PATH,
        objectId: records[0] as string,
      });

      await harness.system.call("seed", { count: WARMUP_INVOCATIONS * BATCH_SIZE, enrollmentId });
      const oneAtATime = { batchSize: BATCH_SIZE, concurrency: 1, quietBetween: true };
      await harness.system.call("invokeDirect", oneAtATime);
      await harness.system.call("seed", { count: deliveries, enrollmentId });
      const run = await harness.system.call("invokeDirect", oneAtATime);
      const perDelivery = run.cpuMicrosPerInvocation.map((micros) => micros / BATCH_SIZE);
      const direct = {
        deliveries: run.deliveries,
        batchSize: BATCH_SIZE,
        invocations: run.invocations,
        microsPerDelivery: median(perDelivery),
        p95MicrosPerDelivery: percentile(perDelivery, 95),
      };
      context.log(
        `  deliver handler: ${direct.microsPerDelivery.toFixed(0)} µs CPU per delivery (median of ${run.invocations} invocations of ${BATCH_SIZE})`,
      );

      const bodyBytes = await averageBodyBytes(harness, [DIRECT_PATH]);
      const bareUndici = await measureBarePost(harness, {
        bodyBytes,
        requests: deliveries,
        concurrency: BATCH_SIZE,
      });
      context.log(
        `  bare undici POST: ${bareUndici.microsPerRequest.toFixed(0)} µs CPU per request`,
      );

      const loaded = await measureLoaded(harness, {
        appId,
        records,
        seconds: loadedSeconds,
      });
      context.log(
        `  whole system process under ${LOADED_PER_SECOND}/s: ${loaded.systemMicrosPerDelivery.toFixed(0)} µs per delivery`,
      );
      return { direct, bareUndici, loaded };
    },
  );
}

/** CPU of this process per POST, `concurrency` in flight, in rounds; the median round. */
async function measureBarePost(
  harness: Harness,
  options: { readonly bodyBytes: number; readonly requests: number; readonly concurrency: number },
): Promise<CpuResult["bareUndici"]> {
  const path = "/cpu/bare";
  await harness.answer(path, { kind: "status", status: 200 }, false);
  const url = new URL(harness.receiverUrl(path));
  const pool = new Pool(url.origin, {
    connections: options.concurrency,
    connect: { ca: harness.certificate.cert },
  });
  const body = jsonBody(options.bodyBytes);
  const round = async (requests: number) => {
    let left = requests;
    const worker = async () => {
      while (left > 0) {
        left -= 1;
        const response = await pool.request({
          method: "POST",
          path,
          headers: { "content-type": "application/json" },
          body,
        });
        await response.body.dump();
      }
    };
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / requests;
  };
  try {
    await round(WARMUP_INVOCATIONS * options.concurrency);
    const perRound = Math.max(options.concurrency, Math.round(options.requests / BARE_ROUNDS));
    const rounds: number[] = [];
    for (let index = 0; index < BARE_ROUNDS; index++) rounds.push(await round(perRound));
    return {
      requests: perRound * BARE_ROUNDS,
      concurrency: options.concurrency,
      bodyBytes: options.bodyBytes,
      microsPerRequest: median(rounds),
      rounds,
    };
  } finally {
    await pool.close();
  }
}

/** CPU of the system process (and of DynamoDB Local) per delivery, enrollment to delivery. */
async function measureLoaded(
  harness: Harness,
  options: {
    readonly appId: string;
    readonly records: readonly string[];
    readonly seconds: number;
  },
): Promise<CpuResult["loaded"]> {
  const count = LOADED_PER_SECOND * options.seconds;
  const targets = await createTargets(harness, {
    prefix: "/cpu/loaded",
    count: targetsNeeded(count, options.records.length),
    appId: options.appId,
  });
  const paths = targets.map((target) => target.path);
  await settle(harness);
  await harness.system.call("reset");
  const sent = await offerEnrollments(harness, {
    rate: LOADED_PER_SECOND,
    count,
    targets,
    records: options.records,
  });
  await waitForRequests(harness, paths, sent.filter((item) => item.status === 202).length, 120_000);
  await settle(harness);
  const snapshot = await harness.system.call("read");
  const deliveries = await receivedCount(harness, paths);
  return {
    offeredPerSecond: LOADED_PER_SECOND,
    seconds: options.seconds,
    deliveries,
    systemMicrosPerDelivery: (snapshot.cpuMicros.user + snapshot.cpuMicros.system) / deliveries,
    dynamoDbLocalMicrosPerDelivery:
      snapshot.dynamoDbLocalCpuMs === undefined
        ? undefined
        : (snapshot.dynamoDbLocalCpuMs * 1000) / deliveries,
  };
}
