/**
 * The runtime contract between the functions and the stack, declared once: the tables and queues
 * (the CDK stack builds them on AWS, the local runtime in DynamoDB Local and the SQS emulator),
 * the environment variables that name them, the metric names, the routes and the request limit.
 * It lives with the functions because it runs on Lambda; infra imports it, never the reverse.
 */

/** Every table has a string partition key `pk` and a string sort key `sk`. */
export interface TableDefinition {
  /** Logical name; the local table name and the CDK construct id derive from it. */
  readonly name: string;
  /** Environment variable through which the functions learn the table's name. */
  readonly envVar: string;
  /** Attribute holding an epoch-seconds expiry, when items expire. */
  readonly ttlAttribute?: string;
}

/** The five tables: apps, workflows, records, and the state of enrollments and deliveries. */
export const tables = {
  apps: { name: "apps", envVar: "APPS_TABLE" },
  workflows: { name: "workflows", envVar: "WORKFLOWS_TABLE" },
  records: { name: "records", envVar: "RECORDS_TABLE" },
  enrollments: { name: "enrollments", envVar: "ENROLLMENTS_TABLE" },
  deliveries: { name: "deliveries", envVar: "DELIVERIES_TABLE", ttlAttribute: "expiresAt" },
} as const satisfies Record<string, TableDefinition>;

export type TableKey = keyof typeof tables;

/** A lane's queue: its name, the variables that name it, and its consumer's limits. */
export interface QueueDefinition {
  readonly name: string;
  /** Environment variable holding the queue URL. */
  readonly urlEnvVar: string;
  /** Environment variable holding the queue ARN, where a function needs it. */
  readonly arnEnvVar?: string;
  /** Timeout of the function that consumes the queue; visibility is six times this. */
  readonly consumerTimeoutSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** Messages consumed per invocation. */
  readonly batchSize: number;
  readonly messageRetentionSeconds: number;
  readonly maximumMessageSizeBytes: number;
}

/** Lambda advises six times the consumer's timeout, leaving room for retries when it is throttled. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** The two lanes, each with its own queue, dead-letter queue and consumer. */
export const queues = {
  /** setProperty, delay and resume steps of every workflow. */
  workflowSteps: {
    name: "workflow-steps",
    urlEnvVar: "WORKFLOW_STEPS_QUEUE_URL",
    consumerTimeoutSeconds: 30,
    maxReceiveCount: 5,
    batchSize: 10,
    messageRetentionSeconds: 4 * 24 * 3600,
    maximumMessageSizeBytes: 64 * 1024,
  },
  /** The webhook lane: one message per delivery attempt. */
  webhookLane: {
    name: "webhook-lane",
    urlEnvVar: "WEBHOOK_LANE_QUEUE_URL",
    arnEnvVar: "WEBHOOK_LANE_QUEUE_ARN",
    consumerTimeoutSeconds: 60,
    maxReceiveCount: 5,
    batchSize: 10,
    messageRetentionSeconds: 4 * 24 * 3600,
    maximumMessageSizeBytes: 64 * 1024,
  },
} as const satisfies Record<string, QueueDefinition>;

export type QueueKey = keyof typeof queues;

/** How long a received message stays hidden from other consumers. */
export function visibilityTimeoutSeconds(queue: QueueDefinition): number {
  return queue.consumerTimeoutSeconds * VISIBILITY_TIMEOUT_FACTOR;
}

/** Environment variables of the retry scheduler. */
export const retryScheduler = {
  groupEnvVar: "RETRY_SCHEDULE_GROUP",
  roleArnEnvVar: "RETRY_SCHEDULER_ROLE_ARN",
  deadLetterArnEnvVar: "RETRY_SCHEDULER_DLQ_ARN",
  defaultGroupName: "webhook-retries",
} as const;

/** The custom metrics the functions emit (CloudWatch EMF) and the dashboard and alarms read. */
export const metrics = {
  namespace: "WorkflowWebhooks",
  /** Dimension on every custom metric; a few values only (`api`, `engine`, `deliver`). */
  serviceDimension: "service",
  names: {
    deliverySucceeded: "DeliverySucceeded",
    deliveryRetried: "DeliveryRetried",
    deliveryFailed: "DeliveryFailed",
    /** Milliseconds from sending a request to its response (or error), per attempt. */
    deliveryLatency: "DeliveryLatency",
    retryScheduled: "RetryScheduled",
    retryScheduleFailed: "RetryScheduleFailed",
    /** A scheduled retry arrived on the lane (the schedule fired). */
    retryFired: "RetryFired",
    /** An attempt went back on the lane because its receiver had its share in flight. */
    deliveryDeferred: "DeliveryDeferred",
    /** An attempt failed unsent because its receiver's breaker was open. */
    deliveryPaused: "DeliveryPaused",
    enrollmentStarted: "EnrollmentStarted",
    enrollmentCompleted: "EnrollmentCompleted",
  },
} as const;

/** Request bodies the API validates; each names a zod schema in `domain/request-schemas.ts`. */
export type RequestBodyName =
  | "createApp"
  | "putObject"
  | "workflow"
  | "enroll"
  | "testAction"
  | "rotateSecret";

export interface ApiRoute {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** API Gateway resource path; `{name}` segments are path parameters. */
  readonly path: string;
  readonly body?: RequestBodyName;
}

/** Every route of the HTTP API (docs/contract.md), for the stack, the local gateway and the router. */
export const apiRoutes = [
  { method: "GET", path: "/health" },
  { method: "POST", path: "/apps", body: "createApp" },
  { method: "GET", path: "/apps/{appId}" },
  { method: "PUT", path: "/objects/{objectType}/{objectId}", body: "putObject" },
  { method: "GET", path: "/objects/{objectType}/{objectId}" },
  { method: "GET", path: "/workflows" },
  { method: "POST", path: "/workflows", body: "workflow" },
  { method: "GET", path: "/workflows/{workflowId}" },
  { method: "PUT", path: "/workflows/{workflowId}", body: "workflow" },
  { method: "DELETE", path: "/workflows/{workflowId}" },
  { method: "POST", path: "/workflows/{workflowId}/enrollments", body: "enroll" },
  { method: "POST", path: "/workflows/{workflowId}/actions/{actionId}/test", body: "testAction" },
  { method: "GET", path: "/enrollments/{enrollmentId}" },
  { method: "GET", path: "/deliveries/{deliveryId}" },
  { method: "POST", path: "/deliveries/{deliveryId}/retry" },
  { method: "POST", path: "/apps/{appId}/rotate-secret", body: "rotateSecret" },
  { method: "GET", path: "/openapi.json" },
] as const satisfies readonly ApiRoute[];

type KeyOf<Route> = Route extends {
  readonly method: infer M extends string;
  readonly path: infer P extends string;
}
  ? `${M} ${P}`
  : never;

/** A route as the API handler looks it up: method and API Gateway resource path, e.g. `GET /health`. */
export type RouteKey = KeyOf<(typeof apiRoutes)[number]>;

const ROUTE_KEYS: ReadonlySet<string> = new Set(
  apiRoutes.map((route) => `${route.method} ${route.path}`),
);

/** Whether `key` names one of `apiRoutes`. */
export function isRouteKey(key: string): key is RouteKey {
  return ROUTE_KEYS.has(key);
}

/**
 * How long the API function may take: API Gateway answers 503 to a request its function has not
 * answered within 30 seconds, and stopping just before keeps the timeout the function's own,
 * logged and counted. Every route must answer well within it.
 */
export const API_TIME_LIMIT_SECONDS = 29;

/** Largest request body the API accepts (docs/contract.md). */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
