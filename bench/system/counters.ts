/** What the system under test counted, as it crosses from its process to the benchmark's. */

/** Requests of one operation (e.g. `DynamoDB GetItem`) made by one function. */
export interface OperationCount {
  count: number;
  /** Requests that failed (a refused condition, a throttle, an emulator error). */
  failed: number;
  /** SQS bills each 64 KiB chunk of a request's payload as one request. */
  chunks: number;
  /** DynamoDB read and write units, as DynamoDB would charge them (see `instrument.ts`). */
  readUnits: number;
  writeUnits: number;
}

/** Invocations of one function's handler. */
export interface InvocationCount {
  count: number;
  /** SQS messages handed to it (0 for the API). */
  records: number;
  durationMs: number;
  /** Sum of each invocation's duration rounded up to the millisecond, as Lambda bills. */
  billedMs: number;
}

/** How writes (or reads) spread over partition keys. */
export interface KeySpread {
  readonly total: number;
  readonly distinct: number;
  /** Requests that touched the busiest key. */
  readonly largest: number;
  /** That key's table (its logical name when known). */
  readonly largestTable: string;
}

export interface CounterSnapshot {
  /**
   * Keyed by `function service operation`, e.g. `deliver DynamoDB GetItem`; a poller's receives
   * that brought nothing are counted apart, as `ReceiveMessage (empty)`.
   */
  readonly operations: Record<string, OperationCount>;
  /** Keyed by function: `api`, `engine`, `deliver`. */
  readonly invocations: Record<string, InvocationCount>;
  /** Bytes and lines the functions wrote to stdout and stderr (their logs and EMF metrics). */
  readonly logBytes: Record<string, number>;
  readonly logLines: Record<string, number>;
  /**
   * Error reports of the local runtime (an API call or a batch that timed out): a sign that the
   * system was overloaded while counting.
   */
  readonly runtimeErrors: number;
  /** Retry schedules that fired (each is a scheduled invocation and an SQS SendMessage on AWS). */
  readonly retriesFired: number;
  /** CPU of the system process (API, functions, pollers, emulators; not DynamoDB Local). */
  readonly cpuMicros: { readonly user: number; readonly system: number };
  /** CPU of DynamoDB Local's Java process, when it can be read (Linux /proc). */
  readonly dynamoDbLocalCpuMs: number | undefined;
  readonly writeKeys: KeySpread;
  readonly readKeys: KeySpread;
}

/**
 * Who made a request: a function, a lane's poller (Lambda's event source mapping on AWS), the
 * benchmark's own polling of the API (`probe`), or the runtime outside any of them.
 */
export type FunctionName =
  | "api"
  | "engine"
  | "deliver"
  | "lanePoller"
  | "stepsPoller"
  | "probe"
  | "runtime";

/** The functions Lambda would invoke, and bill. */
export const BILLED_FUNCTIONS = ["api", "engine", "deliver"] as const;

/** Whose requests belong to a delivery's cost: the functions' and their pollers'. */
export const BILLED_REQUESTERS: readonly FunctionName[] = [
  ...BILLED_FUNCTIONS,
  "lanePoller",
  "stepsPoller",
];

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

/** Header by which the benchmark's polling of the API is told apart from the measured traffic. */
export const PROBE_HEADER = "x-benchmark-probe";

/** A poller's ReceiveMessage that brought nothing: idle polling, told apart from the rest. */
export const EMPTY_RECEIVE = "ReceiveMessage (empty)";
