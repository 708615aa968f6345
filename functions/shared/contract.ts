/**
 * The runtime contract between the functions and the stack, declared once: the tables and queues
 * (the CDK stack builds them on AWS, the local runtime in DynamoDB Local and the SQS emulator),
 * the environment variables that name them, the metric names, the routes and the request limit.
 * It lives with the functions because it runs on Lambda; infra imports it, never the reverse.
 */

/** A key attribute of an index: its name and DynamoDB type (string or number). */
export interface KeyAttribute {
  readonly name: string;
  readonly type: "S" | "N";
}

/** A global secondary index. */
export interface IndexDefinition {
  readonly name: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** `KEYS_ONLY`, `ALL`, or the non-key attributes to copy into the index. */
  readonly projection: "KEYS_ONLY" | "ALL" | readonly string[];
}

/** Every table has a string partition key `pk` and a string sort key `sk`. */
export interface TableDefinition {
  /** Logical name; the local table name and the CDK construct id derive from it. */
  readonly name: string;
  /** Environment variable through which the functions learn the table's name. */
  readonly envVar: string;
  /** Attribute holding an epoch-seconds expiry, when items expire. */
  readonly ttlAttribute?: string;
  /** Global secondary indexes; items without an index's key attributes stay out of it. */
  readonly indexes?: readonly IndexDefinition[];
  /** The table's change stream, with both images of every changed item. */
  readonly stream?: "NEW_AND_OLD_IMAGES";
}

/** Sort key of a record's item in the records table (lists live there too, under others). */
export const RECORD_SORT_KEY = "RECORD";

/**
 * Workflows with enrollment triggers, by object type: the stream consumer asks it which
 * workflows a change could enroll into, instead of reading every workflow. Sparse: only
 * workflows with triggers carry `triggerObjectType`.
 */
export const WORKFLOWS_BY_TRIGGER_TYPE: IndexDefinition = {
  name: "byTriggerObjectType",
  partitionKey: { name: "triggerObjectType", type: "S" },
  sortKey: { name: "createdAt", type: "S" },
  projection: ["id", "objectType", "enrollmentTriggers", "updatedAt"],
};

/**
 * A workflow's enrollments, newest first. Keys only: enrollments change at every step, and an
 * index that copied them would be written as often; the page reads the items themselves.
 */
export const ENROLLMENTS_BY_WORKFLOW: IndexDefinition = {
  name: "byWorkflow",
  partitionKey: { name: "workflowId", type: "S" },
  sortKey: { name: "createdAt", type: "N" },
  projection: "KEYS_ONLY",
};

/** One record's enrollments in a workflow, newest first (`workflowRecord` is `workflowId#objectId`). */
export const ENROLLMENTS_BY_WORKFLOW_RECORD: IndexDefinition = {
  name: "byWorkflowRecord",
  partitionKey: { name: "workflowRecord", type: "S" },
  sortKey: { name: "createdAt", type: "N" },
  projection: "KEYS_ONLY",
};

/**
 * The indexes of the operators' lists. Their keys are attributes the items already carry, so
 * items written before an index existed are listed too, and other item types stay out of it.
 */
export const indexes = {
  /**
   * A workflow's deliveries by creation time (epoch ms), for `GET /deliveries` and replays. Keys
   * only: its keys never change, so the writes of every attempt leave it alone, and a list reads
   * the deliveries themselves.
   */
  deliveriesByWorkflow: {
    name: "byWorkflow",
    partitionKey: { name: "workflowId", type: "S" },
    sortKey: { name: "createdAt", type: "N" },
    projection: "KEYS_ONLY",
  },
  /**
   * Every workflow by creation time (ISO-8601), for `GET /workflows`: all workflow items share
   * their sort key `WORKFLOW`, which makes it the index's partition key.
   */
  workflowsByCreation: {
    name: "byCreation",
    partitionKey: { name: "sk", type: "S" },
    sortKey: { name: "createdAt", type: "S" },
    projection: "ALL",
  },
} as const satisfies Record<string, IndexDefinition>;

/**
 * The open-work index of the enrollments and deliveries tables: only an enrollment or delivery
 * that has not ended carries `sweepShard` and `sweepAt`, the time by which it should have moved
 * (epoch ms), so the sweeper reads the work that is overdue and nothing else. The shard spreads
 * the index's writes over partitions (`domain/open-work.ts`). Keys only: an entry costs one
 * write unit whatever the size of the item it stands for, and the sweeper reads the item itself.
 */
export const openWorkIndex = {
  name: "open-work",
  partitionKey: { name: "sweepShard", type: "N" },
  sortKey: { name: "sweepAt", type: "N" },
  projection: "KEYS_ONLY",
} as const satisfies IndexDefinition;

/** The five tables: apps, workflows, records, and the state of enrollments and deliveries. */
export const tables = {
  apps: { name: "apps", envVar: "APPS_TABLE" },
  workflows: {
    name: "workflows",
    envVar: "WORKFLOWS_TABLE",
    indexes: [WORKFLOWS_BY_TRIGGER_TYPE, indexes.workflowsByCreation],
  },
  records: { name: "records", envVar: "RECORDS_TABLE", stream: "NEW_AND_OLD_IMAGES" },
  enrollments: {
    name: "enrollments",
    envVar: "ENROLLMENTS_TABLE",
    indexes: [ENROLLMENTS_BY_WORKFLOW, ENROLLMENTS_BY_WORKFLOW_RECORD, openWorkIndex],
  },
  deliveries: {
    name: "deliveries",
    envVar: "DELIVERIES_TABLE",
    ttlAttribute: "expiresAt",
    indexes: [indexes.deliveriesByWorkflow, openWorkIndex],
  },
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

/** A function fed by a table's change stream, and how its event source mapping reads it. */
export interface StreamConsumerDefinition {
  /** The table whose stream feeds the function. */
  readonly table: TableKey;
  readonly consumerTimeoutSeconds: number;
  /** Stream records per invocation. */
  readonly batchSize: number;
  /** Retries of a failing batch (bisected each time) before its records go to the on-failure queue. */
  readonly retryAttempts: number;
  /** Records older than this are not retried but sent to the on-failure queue. */
  readonly maxRecordAgeSeconds: number;
  /** Only items with one of these sort keys reach the function. */
  readonly sortKeys: readonly string[];
  /** Where the descriptions of records that could not be processed go. */
  readonly onFailureQueue: {
    readonly name: string;
    readonly messageRetentionSeconds: number;
  };
}

/**
 * The enrollment function: the records table's stream feeds it every change of a record, and it
 * starts the enrollments whose triggers the change newly meets (docs/contract.md).
 */
export const enrollmentStream = {
  table: "records",
  consumerTimeoutSeconds: 60,
  // A burst of imports arrives in few invocations; a lone change is still handed over at once.
  batchSize: 100,
  // A failing batch is bisected on every retry and resumes at the record that failed: seven
  // halvings isolate one record of a batch of 100, so ten retries give up on the poison record
  // alone, never on the healthy records around it.
  retryAttempts: 10,
  // A trigger that fires an hour late is no longer what the user wanted; it is reported instead.
  maxRecordAgeSeconds: 3600,
  sortKeys: [RECORD_SORT_KEY],
  onFailureQueue: { name: "enroll-failures", messageRetentionSeconds: 14 * 24 * 3600 },
} as const satisfies StreamConsumerDefinition;

/** Environment variables of the retry scheduler. */
export const retryScheduler = {
  groupEnvVar: "RETRY_SCHEDULE_GROUP",
  roleArnEnvVar: "RETRY_SCHEDULER_ROLE_ARN",
  deadLetterArnEnvVar: "RETRY_SCHEDULER_DLQ_ARN",
  defaultGroupName: "webhook-retries",
  /**
   * How long EventBridge Scheduler keeps trying to put a fired retry on the lane before it gives
   * the retry to its dead-letter queue; the sweeper waits this out before it re-sends a retry.
   */
  targetMaximumEventAgeSeconds: 3600,
} as const;

/** The custom metrics the functions emit (CloudWatch EMF) and the dashboard and alarms read. */
export const metrics = {
  namespace: "WorkflowWebhooks",
  /** Dimension on every custom metric; a few values only (`api`, `engine`, `deliver`, `enroll`, `sweep`). */
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
    /** An enrollment started by a workflow's triggers (also counted as started). */
    enrollmentTriggered: "EnrollmentTriggered",
    /** A delivery that had failed for good was re-fired by a replay. */
    deliveryReplayed: "DeliveryReplayed",
    /** The sweeper re-sent the step or attempt of work that had stopped moving, or finished it. */
    sweeperResumed: "SweeperResumed",
    /** The sweeper failed work that could not move, with the reason. */
    sweeperFailed: "SweeperFailed",
    /** Overdue open work the sweeper looked at in a run, repaired or not. */
    sweeperExamined: "SweeperExamined",
  },
} as const;

/**
 * The sweeper: a function run on a schedule (a timer locally, scaled by RETRY_TIME_SCALE) that
 * finds open work past its `sweepAt` in the open-work index and resumes it or fails it.
 */
export const sweeper = {
  /** Repairs come at most this long after work became overdue; a run costs a few reads. */
  intervalSeconds: 300,
  /** Each run reads bounded pages and stops starting repairs well before this. */
  timeoutSeconds: 60,
} as const;

/** Request bodies the API validates; each names a zod schema in `domain/request-schemas.ts`. */
export type RequestBodyName =
  | "createApp"
  | "putObject"
  | "workflow"
  | "enroll"
  | "testAction"
  | "rotateSecret"
  | "formSubmission"
  | "createList"
  | "replayDeliveries";

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
  { method: "GET", path: "/workflows/{workflowId}/enrollments" },
  { method: "POST", path: "/forms/{formId}/submissions", body: "formSubmission" },
  { method: "POST", path: "/lists", body: "createList" },
  { method: "GET", path: "/lists/{listId}" },
  { method: "PUT", path: "/lists/{listId}/members/{objectId}" },
  { method: "DELETE", path: "/lists/{listId}/members/{objectId}" },
  { method: "DELETE", path: "/enrollments/{enrollmentId}" },
  { method: "GET", path: "/deliveries" },
  { method: "POST", path: "/deliveries/replay", body: "replayDeliveries" },
  { method: "GET", path: "/replays/{replayId}" },
] as const satisfies readonly ApiRoute[];

type KeyOf<Route> = Route extends {
  readonly method: infer M extends string;
  readonly path: infer P extends string;
}
  ? `${M} ${P}`
  : never;

/** A route as the API handler looks it up: method and API Gateway resource path, e.g. `GET /health`. */
export type RouteKey = KeyOf<(typeof apiRoutes)[number]>;

// Built at the first lookup rather than at import, so that the bundles of functions that route
// nothing leave the route list out.
let routeKeys: ReadonlySet<string> | undefined;

/** Whether `key` names one of `apiRoutes`. */
export function isRouteKey(key: string): key is RouteKey {
  routeKeys ??= new Set(apiRoutes.map((route) => `${route.method} ${route.path}`));
  return routeKeys.has(key);
}

/**
 * How long the API function may take: API Gateway answers 503 to a request its function has not
 * answered within 30 seconds, and stopping just before keeps the timeout the function's own,
 * logged and counted. Every route must answer well within it.
 */
export const API_TIME_LIMIT_SECONDS = 29;

/** Largest request body the API accepts (docs/contract.md). */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
