/**
 * 6. Cost per million deliveries, from the requests, units, invocations, durations and log bytes
 * counted per delivery, at us-east-1 list prices; beside EventBridge API destinations.
 */
import {
  GIB,
  LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION,
  PAYLOAD_CHUNK_BYTES,
  prices,
  unitPrice,
} from "../prices.ts";
import type { CostLine, CostResult, RequestsResult, ScenarioCounts } from "../results.ts";
import { deployedFunctions } from "../stack.ts";
import { BILLED_FUNCTIONS, BILLED_REQUESTERS, EMPTY_RECEIVE } from "../system/counters.ts";

const MILLION = 1_000_000;
/** Share of deliveries whose first attempt fails (and succeeds on the one retry). */
export const FAILURE_SHARES = [0, 0.05] as const;
/** An enrollment is one API request, whichever API Gateway flavour serves it. */
const API_REQUESTS_PER_DELIVERY = 1;
const RECEIVER_LATENCY_STEP_SECONDS = 0.1;

/** Dollars per delivery, item by item, for one measured scenario. */
function dollarsPerDelivery(
  counts: ScenarioCounts,
  memoryMb: Record<string, number>,
): Record<string, number> {
  let sqsChunks = 0;
  let readUnits = 0;
  let writeUnits = 0;
  for (const [key, count] of Object.entries(counts.operations)) {
    const [requester, service] = key.split(" ");
    if (!BILLED_REQUESTERS.includes(requester as never) || key.endsWith(EMPTY_RECEIVE)) continue;
    if (service === "SQS") sqsChunks += count.chunks;
    readUnits += count.readUnits;
    writeUnits += count.writeUnits;
  }
  // EventBridge Scheduler puts each fired retry on the lane: one more SQS request.
  sqsChunks += counts.retriesFired;
  let invocations = 0;
  let gbSeconds = 0;
  let logBytes = 0;
  for (const fn of BILLED_FUNCTIONS) {
    const invocation = counts.invocations[fn];
    if (!invocation) continue;
    invocations += invocation.count;
    gbSeconds += (invocation.billedMs / 1000) * ((memoryMb[fn] ?? 0) / 1024);
    logBytes +=
      (counts.logBytes[fn] ?? 0) + invocation.count * LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION;
  }
  return {
    "Lambda requests": invocations * unitPrice(prices.lambdaRequest),
    "Lambda duration": gbSeconds * unitPrice(prices.lambdaArmGbSecond),
    "SQS requests": sqsChunks * unitPrice(prices.sqsRequest),
    "DynamoDB writes": writeUnits * unitPrice(prices.dynamoWriteUnit),
    "DynamoDB reads": readUnits * unitPrice(prices.dynamoReadUnit),
    "CloudWatch Logs": (logBytes / GIB) * unitPrice(prices.logsIngestedGb),
    "EventBridge Scheduler": counts.retriesFired * unitPrice(prices.schedulerInvocation),
  };
}

/** The column name of a record size and failure share, e.g. `10 KiB, 5%`. */
export function columnName(kib: number, failureShare: number): string {
  return `${kib} KiB, ${Math.round(failureShare * 100)}%`;
}

export function computeCost(requests: RequestsResult): CostResult {
  const memoryMb: Record<string, number> = {};
  for (const fn of deployedFunctions()) memoryMb[fn.service] = fn.memoryMb;
  const sizes = [...new Set(requests.scenarios.map((scenario) => scenario.recordKiB))];
  const columns: string[] = [];
  const lines = new Map<string, Record<string, number>>();
  const totalRest: Record<string, number> = {};
  const totalHttpApi: Record<string, number> = {};
  const apiDestinations: Record<string, number> = {};
  for (const kib of sizes) {
    const find = (name: ScenarioCounts["scenario"]) => {
      const found = requests.scenarios.find((s) => s.recordKiB === kib && s.scenario === name);
      if (!found) throw new Error(`no ${name} scenario measured for ${kib} KiB`);
      return found;
    };
    const success = dollarsPerDelivery(find("success"), memoryMb);
    const retried = dollarsPerDelivery(find("retry"), memoryMb);
    const bodyBytes = find("success").bodyBytes;
    for (const failureShare of FAILURE_SHARES) {
      const column = columnName(kib, failureShare);
      columns.push(column);
      let total = 0;
      for (const [item, dollars] of Object.entries(success)) {
        const mixed =
          ((1 - failureShare) * dollars + failureShare * (retried[item] ?? 0)) * MILLION;
        const line = lines.get(item) ?? {};
        line[column] = mixed;
        lines.set(item, line);
        total += mixed;
      }
      const gateway = API_REQUESTS_PER_DELIVERY * MILLION;
      // The stack's front door is an HTTP API; a REST API's total is shown beside it.
      const http = lines.get("API Gateway (HTTP API)") ?? {};
      http[column] = gateway * unitPrice(prices.apiGatewayHttp);
      lines.set("API Gateway (HTTP API)", http);
      totalRest[column] = total + gateway * unitPrice(prices.apiGatewayRest);
      totalHttpApi[column] = total + gateway * unitPrice(prices.apiGatewayHttp);
      // One custom event per delivery (a 64 KiB chunk each), one API destination call per attempt.
      apiDestinations[column] =
        MILLION *
        (Math.max(1, Math.ceil(bodyBytes / PAYLOAD_CHUNK_BYTES)) *
          unitPrice(prices.eventBridgeEvent) +
          (1 + failureShare) * unitPrice(prices.apiDestinationInvocation));
    }
  }
  const deliverInvocations =
    requests.scenarios.find((s) => s.scenario === "success")?.invocations.deliver?.count ?? 1;
  return {
    memoryMb,
    columns,
    lines: [...lines].map(([item, dollars]): CostLine => ({ item, dollars })),
    totalRest,
    totalHttpApi,
    apiDestinations,
    per100msReceiverLatency:
      MILLION *
      deliverInvocations *
      RECEIVER_LATENCY_STEP_SECONDS *
      ((memoryMb.deliver ?? 0) / 1024) *
      unitPrice(prices.lambdaArmGbSecond),
  };
}
