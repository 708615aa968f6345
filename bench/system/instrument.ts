/**
 * Counting inside the system under test: an AWS SDK middleware on the functions' clients (and
 * the pollers'), a wrapper around each handler, and a tap on stdout and stderr for log bytes.
 * Which function made a request is known from an AsyncLocalStorage scope the wrapper opens.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type CounterSnapshot,
  EMPTY_RECEIVE,
  type FunctionName,
  type InvocationCount,
  type KeySpread,
  type OperationCount,
} from "./counters.ts";

/** The function whose invocation is running, for everything it calls. */
export const invocationScope = new AsyncLocalStorage<FunctionName>();

const READ_OPERATIONS = new Set(["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"]);
const WRITE_OPERATIONS = new Set([
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "BatchWriteItem",
  "TransactWriteItems",
]);
/**
 * DynamoDB bills each item of a transaction twice its plain units, so at least two. DynamoDB
 * Local doubles them too, but reported 2 units for a two-item transaction of items under 1 KB,
 * where DynamoDB bills 4: the floor below corrects that case and leaves its other figures alone.
 */
const TRANSACTION_ITEM_FLOOR_UNITS = 2;
const TRANSACTION_OPERATIONS = new Set(["TransactWriteItems", "TransactGetItems"]);
/** A write refused by its condition still costs at least one write unit on DynamoDB. */
const REFUSED_WRITE_UNITS = 1;
/** SQS bills every 64 KiB chunk of a request's payload as one request. */
const SQS_CHUNK_BYTES = 64 * 1024;

const SERVICE_NAMES: Record<string, string> = {
  DynamoDBClient: "DynamoDB",
  SQSClient: "SQS",
  SchedulerClient: "Scheduler",
};

type Input = Record<string, unknown>;
type Next = (args: { input: Input }) => Promise<{ output: Input }>;
type Middleware = (next: Next, context: { clientName?: string; commandName?: string }) => Next;

/** Every AWS SDK v3 client has one; typed loosely so one function serves the three clients. */
export interface InstrumentableClient {
  readonly middlewareStack: { add(middleware: never, options: never): void };
}

interface Tally {
  count: number;
}

/** Everything counted since the last reset. */
export class Counters {
  readonly operations = new Map<string, OperationCount>();
  readonly invocations = new Map<string, InvocationCount>();
  readonly logBytes = new Map<string, number>();
  readonly logLines = new Map<string, number>();
  /** Handler invocations running now; not reset. */
  inFlight = 0;
  /** Error reports of the local runtime itself (timeouts of API calls and batches). */
  runtimeErrors = 0;
  /** Requests per `table key`, writes and reads apart. */
  readonly writeKeys = new Map<string, Tally>();
  readonly readKeys = new Map<string, Tally>();

  reset(): void {
    this.operations.clear();
    this.invocations.clear();
    this.logBytes.clear();
    this.logLines.clear();
    this.writeKeys.clear();
    this.readKeys.clear();
    this.runtimeErrors = 0;
  }

  operation(fn: string, service: string, operation: string): OperationCount {
    const key = `${fn} ${service} ${operation}`;
    let count = this.operations.get(key);
    if (!count) {
      count = { count: 0, failed: 0, chunks: 0, readUnits: 0, writeUnits: 0 };
      this.operations.set(key, count);
    }
    return count;
  }

  invocation(fn: string): InvocationCount {
    let count = this.invocations.get(fn);
    if (!count) {
      count = { count: 0, records: 0, durationMs: 0, billedMs: 0 };
      this.invocations.set(fn, count);
    }
    return count;
  }

  snapshot(
    extra: Pick<CounterSnapshot, "retriesFired" | "cpuMicros" | "dynamoDbLocalCpuMs">,
    tableLabel: (table: string) => string,
  ): CounterSnapshot {
    return {
      operations: Object.fromEntries([...this.operations].map(([k, v]) => [k, { ...v }])),
      invocations: Object.fromEntries([...this.invocations].map(([k, v]) => [k, { ...v }])),
      logBytes: Object.fromEntries(this.logBytes),
      logLines: Object.fromEntries(this.logLines),
      runtimeErrors: this.runtimeErrors,
      writeKeys: spread(this.writeKeys, tableLabel),
      readKeys: spread(this.readKeys, tableLabel),
      ...extra,
    };
  }
}

function spread(keys: Map<string, Tally>, tableLabel: (table: string) => string): KeySpread {
  let total = 0;
  let largest = 0;
  let largestKey = "";
  for (const [key, tally] of keys) {
    total += tally.count;
    if (tally.count > largest) {
      largest = tally.count;
      largestKey = key;
    }
  }
  return {
    total,
    distinct: keys.size,
    largest,
    largestTable: largestKey ? tableLabel(largestKey.slice(0, largestKey.indexOf(" "))) : "",
  };
}

export interface CountingOptions {
  readonly counters: Counters;
  /**
   * Who makes the requests of a client only one party uses (the pollers'); by default the
   * invocation scope tells which function is running.
   */
  readonly fnOf?: (input: Input) => FunctionName;
  /** The partition key attribute of each table, by table name. */
  readonly partitionKeys: ReadonlyMap<string, string>;
  /** Sees every request before it is sent, e.g. to keep a copy of one. */
  readonly observe?: (operation: string, input: Input) => void;
}

/**
 * Adds the counting middleware to `client`. It asks DynamoDB for the consumed capacity of every
 * request that can report it, so the units are DynamoDB's own figure rather than an estimate.
 */
export function countRequests(client: InstrumentableClient, options: CountingOptions): void {
  const middleware: Middleware = (next, context) => async (args) => {
    const service = SERVICE_NAMES[context.clientName ?? ""] ?? context.clientName ?? "unknown";
    const operation = (context.commandName ?? "Unknown").replace(/Command$/, "");
    const fn = options.fnOf?.(args.input) ?? invocationScope.getStore() ?? "runtime";
    const isDynamo = service === "DynamoDB";
    const input =
      isDynamo && (READ_OPERATIONS.has(operation) || WRITE_OPERATIONS.has(operation))
        ? { ...args.input, ReturnConsumedCapacity: "TOTAL" }
        : args.input;
    options.observe?.(operation, input);
    if (isDynamo) tallyKeys(options.counters, operation, input, options.partitionKeys);
    let result: { output: Input };
    try {
      result = await next({ ...args, input });
    } catch (error) {
      const count = options.counters.operation(fn, service, operation);
      count.count += 1;
      count.failed += 1;
      if (service === "SQS") count.chunks += 1;
      if (isDynamo && WRITE_OPERATIONS.has(operation)) count.writeUnits += REFUSED_WRITE_UNITS;
      throw error;
    }
    const empty =
      operation === "ReceiveMessage" &&
      ((result.output.Messages as unknown[] | undefined)?.length ?? 0) === 0;
    const count = options.counters.operation(fn, service, empty ? EMPTY_RECEIVE : operation);
    count.count += 1;
    if (isDynamo) addCapacity(count, operation, input, result.output);
    if (service === "SQS") count.chunks += sqsChunks(operation, input, result.output);
    return result;
  };
  client.middlewareStack.add(
    middleware as never,
    { step: "initialize", name: "benchmarkRequestCounter", override: true } as never,
  );
}

function addCapacity(count: OperationCount, operation: string, input: Input, output: Input): void {
  const consumed = output.ConsumedCapacity as
    | { CapacityUnits?: number }
    | { CapacityUnits?: number }[]
    | undefined;
  if (!consumed) return;
  const units = (Array.isArray(consumed) ? consumed : [consumed]).reduce(
    (sum, item) => sum + (item.CapacityUnits ?? 0),
    0,
  );
  const items = (input.TransactItems as unknown[] | undefined)?.length ?? 0;
  const charged = TRANSACTION_OPERATIONS.has(operation)
    ? Math.max(units, items * TRANSACTION_ITEM_FLOOR_UNITS)
    : units;
  if (READ_OPERATIONS.has(operation)) count.readUnits += charged;
  else count.writeUnits += charged;
}

function sqsChunks(operation: string, input: Input, output: Input): number {
  let bytes = 0;
  if (operation === "SendMessage") bytes = Buffer.byteLength(String(input.MessageBody ?? ""));
  if (operation === "SendMessageBatch") {
    for (const entry of (input.Entries as { MessageBody?: string }[] | undefined) ?? []) {
      bytes += Buffer.byteLength(entry.MessageBody ?? "");
    }
  }
  if (operation === "ReceiveMessage") {
    for (const message of (output.Messages as { Body?: string }[] | undefined) ?? []) {
      bytes += Buffer.byteLength(message.Body ?? "");
    }
  }
  return Math.max(1, Math.ceil(bytes / SQS_CHUNK_BYTES));
}

/** Notes the partition key each item of a DynamoDB request touches. */
function tallyKeys(
  counters: Counters,
  operation: string,
  input: Input,
  partitionKeys: ReadonlyMap<string, string>,
): void {
  const note = (kind: "read" | "write", table: unknown, item: unknown) => {
    const attribute = partitionKeys.get(String(table));
    const value = attribute ? (item as Input | undefined)?.[attribute] : undefined;
    if (value === undefined) return;
    const keys = kind === "write" ? counters.writeKeys : counters.readKeys;
    const key = `${String(table)} ${String(value)}`;
    const tally = keys.get(key);
    if (tally) tally.count += 1;
    else keys.set(key, { count: 1 });
  };
  const table = input.TableName;
  switch (operation) {
    case "PutItem":
      note("write", table, input.Item);
      return;
    case "UpdateItem":
    case "DeleteItem":
      note("write", table, input.Key);
      return;
    case "GetItem":
      note("read", table, input.Key);
      return;
    case "Query":
      note("read", table, queriedKey(input, partitionKeys.get(String(table))));
      return;
    case "TransactWriteItems":
      for (const item of (input.TransactItems as Record<string, Input>[] | undefined) ?? []) {
        for (const [kind, request] of Object.entries(item)) {
          note("write", request.TableName, kind === "Put" ? request.Item : request.Key);
        }
      }
      return;
    case "BatchWriteItem":
      for (const [name, requests] of Object.entries(
        (input.RequestItems as Record<string, Record<string, Input>[]> | undefined) ?? {},
      )) {
        for (const request of requests) {
          note("write", name, request.PutRequest?.Item ?? request.DeleteRequest?.Key);
        }
      }
      return;
  }
}

/** The partition key value of a `pk = :value` key condition. */
function queriedKey(input: Input, attribute: string | undefined): Input | undefined {
  if (!attribute) return undefined;
  const match = /^\s*(#?\w+)\s*=\s*(:\w+)/.exec(String(input.KeyConditionExpression ?? ""));
  if (!match?.[1] || !match[2]) return undefined;
  const names = (input.ExpressionAttributeNames as Record<string, string> | undefined) ?? {};
  const name = match[1].startsWith("#") ? names[match[1]] : match[1];
  if (name !== attribute) return undefined;
  const values = (input.ExpressionAttributeValues as Input | undefined) ?? {};
  return { [attribute]: values[match[2]] };
}

/** A Lambda handler, API or SQS: an event and a context in, a promise out. */
export type Handler = (event: never, context: never) => Promise<unknown>;

/**
 * Wraps a handler that is loaded later (its module reads its configuration at import, which
 * exists only once the runtime has started): counts invocations, messages and duration, and runs
 * it in its function's scope. `scopeOf` may move an invocation to another scope (the probes).
 */
export function instrumentHandler(
  fn: FunctionName,
  counters: Counters,
  load: () => Handler,
  scopeOf: (event: unknown) => FunctionName = () => fn,
): Handler {
  return (event, context) => {
    const scope = scopeOf(event);
    const started = performance.now();
    counters.inFlight += 1;
    return invocationScope.run(scope, async () => {
      try {
        return await load()(event, context);
      } finally {
        counters.inFlight -= 1;
        const durationMs = performance.now() - started;
        const count = counters.invocation(scope);
        count.count += 1;
        count.records += (event as { Records?: unknown[] }).Records?.length ?? 0;
        count.durationMs += durationMs;
        count.billedMs += Math.ceil(durationMs);
      }
    });
  };
}

/** The local runtime's own error reports shown after each reset; the rest are only counted. */
const RUNTIME_ERRORS_SHOWN = 3;

/**
 * Counts what the functions write to stdout and stderr (their JSON logs and EMF metric lines,
 * which CloudWatch Logs would ingest) and keeps it off the terminal unless `echo` is set.
 * The local runtime's error reports (a timed-out API call or batch, when the system is
 * overloaded) are counted, and only the first few shown; anything else passes through.
 */
export function tapFunctionOutput(counters: Counters, echo: boolean): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const fn = invocationScope.getStore();
      if (fn === undefined) {
        const runtimeError =
          stream === process.stderr && String(chunk).includes('"service":"local-runtime"');
        if (runtimeError) counters.runtimeErrors += 1;
        if (!runtimeError || echo || counters.runtimeErrors <= RUNTIME_ERRORS_SHOWN) {
          return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
        }
        return true;
      }
      const bytes = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
      counters.logBytes.set(fn, (counters.logBytes.get(fn) ?? 0) + bytes);
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
      const lines = text.split("\n").length - 1;
      counters.logLines.set(fn, (counters.logLines.get(fn) ?? 0) + lines);
      if (echo) return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
      const callback = rest.find((item) => typeof item === "function") as (() => void) | undefined;
      if (callback) queueMicrotask(callback);
      return true;
    }) as typeof stream.write;
  }
}
