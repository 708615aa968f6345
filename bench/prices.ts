/**
 * us-east-1 list prices the cost section uses, each with where it comes from. Free tiers are
 * left out: at a million deliveries they are a rounding error or already spent elsewhere.
 */
export interface Price {
  /** The price as the pricing page lists it, in dollars... */
  readonly listed: number;
  /** ...per this many units... */
  readonly per: number;
  /** ...of this (plural, as the page words it). */
  readonly units: string;
  /** Where the price is published, in words (no links: they move). */
  readonly source: string;
}

const MILLION = 1_000_000;
/** AWS bills data in GB of 2^30 bytes. */
export const GIB = 1024 ** 3;

export const prices = {
  lambdaRequest: {
    listed: 0.2,
    per: MILLION,
    units: "requests",
    source: "AWS Lambda pricing page, us-east-1, requests",
  },
  lambdaArmGbSecond: {
    listed: 0.0000133334,
    per: 1,
    units: "GB-second",
    source: "AWS Lambda pricing page, us-east-1, Arm (arm64), first 7.5 billion GB-seconds",
  },
  apiGatewayRest: {
    listed: 3.5,
    per: MILLION,
    units: "requests",
    source: "Amazon API Gateway pricing page, us-east-1, REST APIs, first 333 million",
  },
  apiGatewayHttp: {
    listed: 1.0,
    per: MILLION,
    units: "requests",
    source: "Amazon API Gateway pricing page, us-east-1, HTTP APIs, first 300 million",
  },
  sqsRequest: {
    listed: 0.4,
    per: MILLION,
    units: "requests (each 64 KiB of payload is one)",
    source: "Amazon SQS pricing page, us-east-1, standard queues, after the first million",
  },
  dynamoWriteUnit: {
    listed: 0.625,
    per: MILLION,
    units: "write request units",
    source: "Amazon DynamoDB pricing page, on-demand, us-east-1, Standard table class",
  },
  dynamoReadUnit: {
    listed: 0.125,
    per: MILLION,
    units: "read request units",
    source: "Amazon DynamoDB pricing page, on-demand, us-east-1, Standard table class",
  },
  logsIngestedGb: {
    listed: 0.5,
    per: 1,
    units: "GB ingested",
    source:
      "Amazon CloudWatch pricing page, us-east-1, Logs, Standard class, ingestion (first tier)",
  },
  schedulerInvocation: {
    listed: 1.0,
    per: MILLION,
    units: "scheduled invocations",
    source: "Amazon EventBridge pricing page, us-east-1, Scheduler, after the free 14 million",
  },
  eventBridgeEvent: {
    listed: 1.0,
    per: MILLION,
    units: "custom events (each 64 KiB of payload is one)",
    source: "Amazon EventBridge pricing page, us-east-1, custom events published",
  },
  apiDestinationInvocation: {
    listed: 0.2,
    per: MILLION,
    units: "invocations",
    source: "Amazon EventBridge pricing page, us-east-1, API destinations",
  },
} as const satisfies Record<string, Price>;

/** Dollars for one unit. */
export function unitPrice(price: Price): number {
  return price.listed / price.per;
}

/** The price as a reader would quote it, e.g. `$0.40 per million requests`. */
export function quote(price: Price): string {
  const per = price.per === MILLION ? "million " : price.per === 1 ? "" : `${price.per} `;
  const decimals = String(price.listed).split(".")[1]?.length ?? 0;
  const amount = decimals >= 2 ? String(price.listed) : price.listed.toFixed(2);
  return `$${amount} per ${per}${price.units}`;
}

/**
 * Lambda's own lines per invocation in CloudWatch Logs (START, END and REPORT, with the X-Ray
 * trace id the stack's active tracing adds), which the functions do not write and the local
 * runtime does not print: about 90 + 60 + 250 bytes, assumed.
 */
export const LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION = 400;

/** SQS and EventBridge count each 64 KiB of a payload as one request or event. */
export const PAYLOAD_CHUNK_BYTES = 64 * 1024;
