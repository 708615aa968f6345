/**
 * 5. AWS requests per delivery, by operation, with DynamoDB capacity units, Lambda invocations
 * and log bytes: enrollment call to enrollment ended, one enrollment at a time, for three
 * receivers (answers at once, fails the first attempt with 503, refuses with 410) and three
 * record sizes.
 */
import {
  createApp,
  createContacts,
  createWebhookWorkflow,
  enroll,
  enrollmentEnded,
  type Harness,
  settle,
  startHarness,
} from "../harness.ts";
import type { AnswerRule } from "../receiver/process.ts";
import type { RequestsResult, Scenario, ScenarioCounts } from "../results.ts";
import type { CounterSnapshot } from "../system/counters.ts";
import { averageBodyBytes } from "./load.ts";
import { type RunSizes, type SectionContext, sizesFor } from "./section.ts";

export const RECORD_KIB = [1, 10, 100] as const;

const ANSWERS: Record<Scenario, AnswerRule> = {
  success: { kind: "status", status: 200 },
  retry: { kind: "failFirstAttempt", firstAttempt: 503, laterAttempts: 200 },
  permanent: { kind: "status", status: 410 },
};

/** 0.001 turns the one-minute wait before the retry into 60 ms; schedules are still made. */
const TIME_SCALE = 0.001;

/** Enrollments per scenario before counting, and counted; the counts are exact, so few do. */
const SIZES: RunSizes<{ warmup: number; measured: number }> = {
  full: { warmup: 2, measured: 8 },
  quick: { warmup: 1, measured: 2 },
};

export async function measureRequests(context: SectionContext): Promise<RequestsResult> {
  const { warmup, measured } = sizesFor(context, SIZES);
  // Counts do not depend on speed, so DynamoDB Local is not warmed up first.
  const harness = await startHarness({ timeScale: TIME_SCALE, warmUpRequests: 0 });
  try {
    const appId = await createApp(harness);
    await warmUp(harness, appId);
    const scenarios: ScenarioCounts[] = [];
    for (const kib of RECORD_KIB) {
      const records = await createContacts(harness, {
        count: warmup + measured,
        bytes: kib * 1024,
        firstId: kib * 1000,
      });
      for (const scenario of Object.keys(ANSWERS) as Scenario[]) {
        const path = `/requests/${kib}/${scenario}`;
        await harness.answer(path, ANSWERS[scenario], false);
        const workflowId = await createWebhookWorkflow(harness, harness.receiverUrl(path), appId);
        const runAll = async (objectIds: readonly string[]) => {
          for (const objectId of objectIds) {
            const enrolled = await enroll(harness, workflowId, objectId);
            if (!enrolled.enrollmentId) throw new Error(`enrolling answered ${enrolled.status}`);
            await enrollmentEnded(harness, enrolled.enrollmentId);
          }
        };
        await runAll(records.slice(0, warmup));
        await settle(harness);
        await harness.system.call("reset");
        await runAll(records.slice(warmup));
        await settle(harness);
        const counts = perDelivery(await harness.system.call("read"), measured, {
          recordKiB: kib,
          scenario,
          bodyBytes: await averageBodyBytes(harness, [path]),
        });
        scenarios.push(counts);
        context.log(`  ${kib} KiB, ${scenario}: ${describe(counts)}`);
      }
    }
    return { deliveriesPerScenario: measured, scenarios };
  } finally {
    await harness.stop();
  }
}

/**
 * Enrollments through every function before any is counted, so that the first scenario's
 * durations are not the only ones to pay for loading and compiling the code.
 */
const WARMUP_ENROLLMENTS = 10;

async function warmUp(harness: Harness, appId: string): Promise<void> {
  const path = "/requests/warm-up";
  await harness.answer(path, ANSWERS.success, false);
  const workflowId = await createWebhookWorkflow(harness, harness.receiverUrl(path), appId);
  const records = await createContacts(harness, {
    count: WARMUP_ENROLLMENTS,
    bytes: 1024,
    firstId: 1,
  });
  for (const objectId of records) {
    const enrolled = await enroll(harness, workflowId, objectId);
    if (enrolled.enrollmentId) await enrollmentEnded(harness, enrolled.enrollmentId);
  }
}

/** The snapshot divided by the deliveries it covers, the benchmark's own probes left out. */
function perDelivery(
  snapshot: CounterSnapshot,
  deliveries: number,
  scenario: Pick<ScenarioCounts, "recordKiB" | "scenario" | "bodyBytes">,
): ScenarioCounts {
  const divide = <T extends Record<string, number>>(value: T): T =>
    Object.fromEntries(
      Object.entries(value).map(([key, number]) => [key, number / deliveries]),
    ) as T;
  const notProbe = ([key]: [string, unknown]) => !key.startsWith("probe");
  return {
    ...scenario,
    deliveries,
    operations: Object.fromEntries(
      Object.entries(snapshot.operations)
        .filter(notProbe)
        .map(([key, count]) => [key, divide({ ...count })]),
    ),
    invocations: Object.fromEntries(
      Object.entries(snapshot.invocations)
        .filter(notProbe)
        .map(([key, count]) => [key, divide({ ...count })]),
    ),
    logBytes: divide(Object.fromEntries(Object.entries(snapshot.logBytes).filter(notProbe))),
    logLines: divide(Object.fromEntries(Object.entries(snapshot.logLines).filter(notProbe))),
    retriesFired: snapshot.retriesFired / deliveries,
  };
}

/** A one-line summary: requests by service and invocations. */
export function describe(counts: ScenarioCounts): string {
  const byService = new Map<string, number>();
  for (const [key, count] of Object.entries(counts.operations)) {
    if (key.endsWith("(empty)")) continue;
    const service = key.split(" ")[1] ?? "";
    byService.set(service, (byService.get(service) ?? 0) + count.count);
  }
  const services = [...byService].map(([name, count]) => `${name} ${round(count)}`).join(", ");
  const invocations = Object.values(counts.invocations).reduce((t, c) => t + c.count, 0);
  return `${services}; ${round(invocations)} invocations`;
}

function round(value: number): string {
  return String(Math.round(value * 100) / 100);
}
