/** The shape of everything the benchmark measures, as stored next to the document it renders. */
import { cpus, loadavg, platform, release, totalmem } from "node:os";
import type { Percentiles } from "./stats.ts";
import type { KeySpread, OperationCount } from "./system/counters.ts";

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  /** 1, 5 and 15 minute load averages when the section started: others share the machine. */
  readonly loadAverage: readonly number[];
}

export function describeMachine(): Machine {
  const processors = cpus();
  return {
    cpuModel: processors[0]?.model.trim() ?? "unknown",
    cores: processors.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

/** When and where a section was measured, and whether it was the shortened run. */
export interface Stamp {
  readonly measuredAt: string;
  readonly quick: boolean;
  readonly machine: Machine;
  readonly seconds: number;
}

export interface RateLatency {
  readonly offeredPerSecond: number;
  /** Enrollments sent per second as measured, warm-up excluded. */
  readonly sentPerSecond: number;
  readonly enrollments: number;
  /** Enrollments the API refused or failed (anything but 202). */
  readonly refused: number;
  readonly delivered: number;
  /** Enrollment answered to webhook received, ms. */
  readonly latencyMs: Percentiles;
  /** Enrollment sent to answered, ms. */
  readonly apiAnswerMs: Percentiles;
  /** The local runtime's reports of API calls or batches timing out: it was overloaded. */
  readonly runtimeErrors: number;
}

export interface LatencyResult {
  readonly warmupSeconds: number;
  readonly measureSeconds: number;
  readonly bodyBytes: number;
  readonly rates: readonly RateLatency[];
}

export interface ReceiverCeiling {
  readonly concurrency: number;
  readonly bodyBytes: number;
  readonly seconds: number;
  readonly requests: number;
  readonly perSecond: number;
}

export interface ThroughputResult {
  readonly offeredPerSecond: number;
  readonly offerSeconds: number;
  /** The shares of the deliveries (by arrival) between which the rate is taken... */
  readonly steadyShare: readonly [number, number];
  /** ...and when those deliveries arrived, in seconds from the first enrollment. */
  readonly steadySeconds: readonly [number, number];
  readonly enrollments: number;
  readonly refused: number;
  /** Deliveries between the two shares, over which the sustained rate is taken. */
  readonly deliveredInWindow: number;
  readonly sustainedPerSecond: number;
  readonly delivered: number;
  /** From the first enrollment to the last delivery. */
  readonly drainedAfterSeconds: number;
  readonly bodyBytes: number;
  /** The local runtime's reports of API calls or batches timing out: it was overloaded. */
  readonly runtimeErrors: number;
  readonly receiverCeiling: ReceiverCeiling;
  readonly ratio: number;
}

export interface HealthyRun {
  readonly enrollments: number;
  readonly arrivedWithinWindow: number;
  readonly windowSeconds: number;
  /** Over the deliveries that arrived within the window. */
  readonly latencyMs: Percentiles;
}

export interface FairnessResult {
  readonly laneConcurrency: number;
  readonly batchSize: number;
  readonly hungQueued: number;
  /** Hung requests the silent receiver held open when the healthy deliveries started. */
  readonly hungHeldAtStart: number;
  readonly healthyPerSecond: number;
  readonly alone: HealthyRun;
  readonly withHungReceiver: HealthyRun;
}

export interface CpuResult {
  readonly direct: {
    readonly deliveries: number;
    readonly batchSize: number;
    readonly invocations: number;
    /** Median over invocations of (CPU of the invocation / its messages), µs. */
    readonly microsPerDelivery: number;
    readonly p95MicrosPerDelivery: number;
  };
  readonly bareUndici: {
    readonly requests: number;
    readonly concurrency: number;
    readonly bodyBytes: number;
    /** Median over repeated rounds of (CPU of the round / its requests), µs. */
    readonly microsPerRequest: number;
    readonly rounds: readonly number[];
  };
  readonly loaded: {
    readonly offeredPerSecond: number;
    readonly seconds: number;
    readonly deliveries: number;
    /** CPU of the whole system process (API, engine, deliver, pollers, SQS emulator), µs. */
    readonly systemMicrosPerDelivery: number;
    /** CPU of DynamoDB Local's Java process, µs; undefined where it cannot be read. */
    readonly dynamoDbLocalMicrosPerDelivery: number | undefined;
  };
}

export type Scenario = "success" | "retry" | "permanent";

export interface ScenarioCounts {
  readonly recordKiB: number;
  readonly scenario: Scenario;
  readonly deliveries: number;
  /** Webhook body bytes the receiver got per request. */
  readonly bodyBytes: number;
  /** Everything per delivery. Operations keyed `function service operation`. */
  readonly operations: Record<string, OperationCount>;
  readonly invocations: Record<
    string,
    { count: number; records: number; billedMs: number; durationMs: number }
  >;
  readonly logBytes: Record<string, number>;
  readonly logLines: Record<string, number>;
  readonly retriesFired: number;
}

export interface RequestsResult {
  readonly deliveriesPerScenario: number;
  readonly scenarios: readonly ScenarioCounts[];
}

export interface CostLine {
  readonly item: string;
  /** Dollars per million deliveries, by `<KiB>/<failure %>` column. */
  readonly dollars: Record<string, number>;
}

export interface CostResult {
  readonly memoryMb: Record<string, number>;
  readonly columns: readonly string[];
  readonly lines: readonly CostLine[];
  readonly totalRest: Record<string, number>;
  readonly totalHttpApi: Record<string, number>;
  readonly apiDestinations: Record<string, number>;
  /** Dollars per million deliveries per 100 ms the receiver takes to answer (deliver's duration). */
  readonly per100msReceiverLatency: number;
}

/** The cost section as stored: priced from the request counts of one requests run. */
export interface PricedCost extends CostResult {
  readonly pricedFrom: { readonly measuredAt: string; readonly quick: boolean };
}

export interface BundleResult {
  readonly name: string;
  readonly bytes: number;
  readonly mapBytes: number;
  readonly topPackages: readonly { readonly name: string; readonly bytes: number }[];
  readonly topInputs: readonly { readonly path: string; readonly bytes: number }[];
  /** Median of `runs` fresh processes: importing the bundle (its clients built at import), ms. */
  readonly importMs: number;
  /** The same without --enable-source-maps, which the stack sets. */
  readonly importMsWithoutSourceMaps: number;
  /** Process start to exit, with source maps, ms. */
  readonly processMs: number;
}

export interface BundlesResult {
  readonly esbuild: string;
  readonly options: string;
  readonly runs: number;
  readonly functions: readonly BundleResult[];
}

export interface ScaleRun {
  readonly deliveries: number;
  readonly mode: "end to end" | "lane and deliver only";
  readonly wallSeconds: number;
  readonly perSecond: number;
  /** Every AWS request counted (pollers' empty receives aside), and per delivery. */
  readonly requests: number;
  readonly requestsPerDelivery: number;
  /** Requests of the deliver function and the lane's poller only, per delivery. */
  readonly deliverRequestsPerDelivery: number;
  readonly writeKeys: KeySpread;
  readonly readKeys: KeySpread;
  /** The local runtime's reports of API calls or batches timing out: it was overloaded. */
  readonly runtimeErrors: number;
}

export interface ScaleResult {
  readonly runs: readonly ScaleRun[];
}

/**
 * The layout of the stored results. A change to any section's shape bumps it, and results of
 * another layout are set aside rather than rendered wrong.
 */
export const RESULTS_LAYOUT = 1;

export interface StoredResults {
  readonly layout: number;
  readonly sections: SectionResults;
}

export interface SectionResults {
  latency?: LatencyResult & Stamp;
  throughput?: ThroughputResult & Stamp;
  fairness?: FairnessResult & Stamp;
  cpu?: CpuResult & Stamp;
  requests?: RequestsResult & Stamp;
  cost?: PricedCost & Stamp;
  bundles?: BundlesResult & Stamp;
  scale?: ScaleResult & Stamp;
}

export type SectionName = keyof SectionResults;

export const SECTION_NAMES: readonly SectionName[] = [
  "latency",
  "throughput",
  "fairness",
  "cpu",
  "requests",
  "cost",
  "bundles",
  "scale",
];
