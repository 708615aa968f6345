import { type App, CfnOutput, Duration, Stack, type StackProps, Validations } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsSolutionsChecks } from "cdk-nag";
import type { Construct, Node } from "constructs";
import { type ApiAuthorization, WorkflowApi } from "#infra/constructs/api";
import { EnrollmentStream } from "#infra/constructs/enrollment-stream";
import { Lane, MAX_CONCURRENCY_RANGE } from "#infra/constructs/lanes";
import { Monitoring } from "#infra/constructs/monitoring";
import { RetryScheduler } from "#infra/constructs/retry-scheduler";
import { StateTables } from "#infra/constructs/state-tables";
import { Sweeper } from "#infra/constructs/sweeper";
import { LOG_LEVELS, type LogLevel, TeamFunction } from "#infra/constructs/team-function";
import {
  API_TIME_LIMIT_SECONDS,
  apiRoutes,
  ENROLLMENTS_BY_WORKFLOW,
  ENROLLMENTS_BY_WORKFLOW_RECORD,
  enrollmentStream,
  indexes,
  openWorkIndex,
  queues,
  sweeper,
  WORKFLOWS_BY_TRIGGER_TYPE,
} from "#shared/contract";

/** Everything a deployment may choose, read from CDK context (cdk.json or `-c key=value`). */
export interface StackSettings {
  readonly apiAuthorization: ApiAuthorization;
  readonly apiThrottlingRateLimit: number;
  readonly apiThrottlingBurstLimit: number;
  readonly alarmEmail: string | undefined;
  readonly tableDeletionProtection: boolean;
  readonly webhookLaneMaxConcurrency: number;
  readonly workflowStepsMaxConcurrency: number;
  readonly logRetentionDays: RetentionDays;
  readonly logLevel: LogLevel;
  readonly failedDeliveriesAlarmThreshold: number;
  readonly laneAgeAlarmSeconds: number;
}

/** The defaults, also written out in cdk.json so that they can be found and changed there. */
export const DEFAULT_SETTINGS: StackSettings = {
  apiAuthorization: { type: "iam" },
  apiThrottlingRateLimit: 50,
  apiThrottlingBurstLimit: 100,
  alarmEmail: undefined,
  tableDeletionProtection: true,
  // Ten invocations of ten messages each: 100 deliveries in flight, far more than a few hundred
  // per second at typical receiver latencies, while a slow receiver ties up at most 10 of the
  // account's 1,000 concurrent executions.
  webhookLaneMaxConcurrency: 10,
  // Workflow steps are short DynamoDB updates; 5 invocations of 10 keep up with bursts of
  // enrollments without crowding the account.
  workflowStepsMaxConcurrency: 5,
  logRetentionDays: RetentionDays.ONE_MONTH,
  logLevel: "INFO",
  failedDeliveriesAlarmThreshold: 10,
  laneAgeAlarmSeconds: 300,
};

/** A context option with a value the stack cannot use. */
export class InvalidContextError extends Error {
  override name = "InvalidContextError";
}

const AUTHORIZATION_TYPES = ["iam", "token", "cognito"] as const;
const RETENTION_DAYS = new Set<number>(
  Object.values(RetentionDays).filter((value): value is number => typeof value === "number"),
);

type NumberSetting = {
  [K in keyof StackSettings]: StackSettings[K] extends number ? K : never;
}[keyof StackSettings];

/** Reads and checks the stack's context options; an invalid value throws and names the option. */
export function settingsFromContext(node: Node): StackSettings {
  const raw = (key: string): unknown => {
    const value = node.tryGetContext(key);
    return value === "" || value === null ? undefined : value;
  };
  const whole = (key: NumberSetting, min: number, max?: number) =>
    wholeNumber(key, raw(key), DEFAULT_SETTINGS[key], min, max);
  const { min, max } = MAX_CONCURRENCY_RANGE;
  return {
    apiAuthorization: apiAuthorization(
      oneOf(
        "apiAuthorization",
        raw("apiAuthorization"),
        AUTHORIZATION_TYPES,
        DEFAULT_SETTINGS.apiAuthorization.type,
      ),
      raw,
    ),
    apiThrottlingRateLimit: whole("apiThrottlingRateLimit", 1),
    apiThrottlingBurstLimit: whole("apiThrottlingBurstLimit", 1),
    alarmEmail: email("alarmEmail", raw("alarmEmail")),
    tableDeletionProtection: bool(
      "tableDeletionProtection",
      raw("tableDeletionProtection"),
      DEFAULT_SETTINGS.tableDeletionProtection,
    ),
    webhookLaneMaxConcurrency: whole("webhookLaneMaxConcurrency", min, max),
    workflowStepsMaxConcurrency: whole("workflowStepsMaxConcurrency", min, max),
    logRetentionDays: retention("logRetentionDays", whole("logRetentionDays", 1)),
    logLevel: oneOf("logLevel", raw("logLevel"), LOG_LEVELS, DEFAULT_SETTINGS.logLevel),
    failedDeliveriesAlarmThreshold: whole("failedDeliveriesAlarmThreshold", 0),
    laneAgeAlarmSeconds: whole("laneAgeAlarmSeconds", 60),
  };
}

function apiAuthorization(
  type: (typeof AUTHORIZATION_TYPES)[number],
  raw: (key: string) => unknown,
): ApiAuthorization {
  switch (type) {
    case "iam":
      return { type };
    case "token":
      return { type, authorizerFunctionArn: requiredString("apiTokenAuthorizerArn", raw, type) };
    case "cognito":
      return {
        type,
        userPoolArn: requiredString("apiUserPoolArn", raw, type),
        userPoolClientIds: requiredList("apiUserPoolClientIds", raw, type),
      };
  }
}

function requiredString(key: string, raw: (key: string) => unknown, type: string): string {
  const value = raw(key);
  if (typeof value !== "string") {
    throw new InvalidContextError(`context apiAuthorization=${type} needs ${key} as well`);
  }
  return value;
}

/** A list from `-c key=a,b` or from cdk.json as a string or an array of strings. */
function requiredList(key: string, raw: (key: string) => unknown, type: string): string[] {
  const value = raw(key);
  const items = (Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [])
    .map((item) => (typeof item === "string" ? item.trim() : item))
    .filter((item) => item !== "");
  if (items.length === 0) {
    throw new InvalidContextError(`context apiAuthorization=${type} needs ${key} as well`);
  }
  if (!items.every((item): item is string => typeof item === "string")) {
    throw new InvalidContextError(`context ${key} must be a list of strings`);
  }
  return items;
}

function oneOf<T extends string>(
  key: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value))
    return value as T;
  throw new InvalidContextError(
    `context ${key} must be one of ${allowed.join(", ")}, got "${String(value)}"`,
  );
}

function wholeNumber(
  key: string,
  value: unknown,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  // `-c key=value` gives strings; cdk.json gives numbers.
  const parsed = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof parsed !== "number" || !Number.isInteger(parsed) || parsed < min || parsed > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new InvalidContextError(
      `context ${key} must be a whole number ${range}, got "${String(value)}"`,
    );
  }
  return parsed;
}

function retention(key: string, days: number): RetentionDays {
  if (!RETENTION_DAYS.has(days)) {
    throw new InvalidContextError(
      `context ${key} must be one of CloudWatch's retention periods (${[...RETENTION_DAYS].join(", ")}), got ${days}`,
    );
  }
  return days;
}

function email(key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) return value;
  throw new InvalidContextError(`context ${key} must be an email address, got "${String(value)}"`);
}

function bool(key: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new InvalidContextError(`context ${key} must be true or false, got "${String(value)}"`);
}

/**
 * Adds the stack to `app`, configured from the app's context and checked by cdk-nag's AWS
 * Solutions rules: a finding that is not acknowledged, with its reason, fails synthesis.
 */
export function addWorkflowWebhooks(app: App): WorkflowWebhooksStack {
  const stack = new WorkflowWebhooksStack(app, "WorkflowWebhooks", {
    settings: settingsFromContext(app.node),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}

export interface WorkflowWebhooksStackProps extends StackProps {
  readonly settings: StackSettings;
}

/**
 * The whole system on AWS: the state tables, the two lanes with their consumers, the retry
 * scheduler, the API, the enroll function fed by the records stream, the sweeper and the
 * monitoring. Each function is granted, and told of, exactly the resources it uses.
 */
export class WorkflowWebhooksStack extends Stack {
  readonly state: StateTables;
  readonly apiFunction: TeamFunction;
  readonly engineFunction: TeamFunction;
  readonly deliverFunction: TeamFunction;
  readonly enrollFunction: TeamFunction;
  readonly enrollments: EnrollmentStream;
  readonly workflowSteps: Lane;
  readonly webhookLane: Lane;
  readonly retries: RetryScheduler;
  readonly api: WorkflowApi;
  readonly monitoring: Monitoring;
  readonly sweepFunction: TeamFunction;
  readonly sweeper: Sweeper;

  constructor(scope: Construct, id: string, props: WorkflowWebhooksStackProps) {
    const { settings, ...stackProps } = props;
    super(scope, id, {
      description: "Workflow automation over CRM records with a retried, signed webhook lane",
      ...stackProps,
    });
    const logging = { logRetention: settings.logRetentionDays, logLevel: settings.logLevel };

    this.state = new StateTables(this, "State", {
      deletionProtection: settings.tableDeletionProtection,
    });

    this.apiFunction = new TeamFunction(this, "ApiFunction", {
      entry: "functions/api/handler.ts",
      serviceName: "api",
      description: "The HTTP API behind API Gateway",
      // API Gateway gives up after 30 seconds; stopping just before keeps the timeout the
      // function's own, logged and counted as an error.
      timeout: Duration.seconds(API_TIME_LIMIT_SECONDS),
      ...logging,
    });
    this.engineFunction = new TeamFunction(this, "EngineFunction", {
      entry: "functions/engine/handler.ts",
      serviceName: "engine",
      description: "Runs workflow steps from the workflow-steps lane",
      timeout: Duration.seconds(queues.workflowSteps.consumerTimeoutSeconds),
      reservedConcurrency: settings.workflowStepsMaxConcurrency,
      ...logging,
    });
    this.deliverFunction = new TeamFunction(this, "DeliverFunction", {
      entry: "functions/deliver/handler.ts",
      serviceName: "deliver",
      description: "Makes webhook delivery attempts from the webhook lane",
      timeout: Duration.seconds(queues.webhookLane.consumerTimeoutSeconds),
      reservedConcurrency: settings.webhookLaneMaxConcurrency,
      ...logging,
    });

    this.sweepFunction = new TeamFunction(this, "SweepFunction", {
      entry: "functions/sweep/handler.ts",
      serviceName: "sweep",
      description: "Resumes or fails enrollments and deliveries that stopped moving",
      timeout: Duration.seconds(sweeper.timeoutSeconds),
      ...logging,
    });

    this.workflowSteps = new Lane(this, "WorkflowStepsLane", {
      definition: queues.workflowSteps,
      consumer: this.engineFunction,
      maxConcurrency: settings.workflowStepsMaxConcurrency,
    });
    this.webhookLane = new Lane(this, "WebhookLane", {
      definition: queues.webhookLane,
      consumer: this.deliverFunction,
      maxConcurrency: settings.webhookLaneMaxConcurrency,
    });
    this.retries = new RetryScheduler(this, "RetryScheduler", { lane: this.webhookLane });

    const { apps, workflows, records, enrollments, deliveries } = this.state.tables;
    for (const table of [apps, workflows, records, enrollments, deliveries]) {
      this.apiFunction.useTable(table, "readWrite");
    }
    this.engineFunction.useTable(records, "readWrite");
    this.engineFunction.useTable(enrollments, "readWrite");
    this.engineFunction.useTable(deliveries, "readWrite");
    this.deliverFunction.useTable(apps, "read");
    this.deliverFunction.useTable(deliveries, "readWrite");
    // The lane moves an enrollment past its webhook action as soon as the delivery ends, and
    // writes the webhook's outputs into the record first.
    this.deliverFunction.useTable(enrollments, "readWrite");
    this.deliverFunction.useTable(records, "readWrite");
    for (const fn of [this.apiFunction, this.engineFunction, this.deliverFunction]) {
      fn.sendsTo(this.workflowSteps);
      fn.sendsTo(this.webhookLane);
    }
    this.retries.allowScheduling(this.deliverFunction);
    // Operators' lists and replays: the API lists through the indexes and starts replays, whose
    // steps the engine runs (re-firing deliveries found through the deliveries' index); the API
    // deletes the scheduled retry of an enrollment it cancels.
    this.apiFunction.queriesIndex(deliveries, indexes.deliveriesByWorkflow);
    this.apiFunction.queriesIndex(workflows, indexes.workflowsByCreation);
    this.engineFunction.queriesIndex(deliveries, indexes.deliveriesByWorkflow);
    this.retries.allowCancelling(this.apiFunction);
    this.apiFunction.queriesIndex(enrollments, ENROLLMENTS_BY_WORKFLOW);
    this.apiFunction.queriesIndex(enrollments, ENROLLMENTS_BY_WORKFLOW_RECORD);

    this.enrollFunction = new TeamFunction(this, "EnrollFunction", {
      entry: "functions/enroll/handler.ts",
      serviceName: "enroll",
      description:
        "Starts the enrollments that changes of records trigger, from the records stream",
      timeout: Duration.seconds(enrollmentStream.consumerTimeoutSeconds),
      ...logging,
    });
    this.enrollments = new EnrollmentStream(this, "EnrollmentStream", {
      definition: enrollmentStream,
      table: this.state.tables[enrollmentStream.table],
      consumer: this.enrollFunction,
      // Its messages describe changes on their way to the workflow-steps lane: that lane's key.
      encryptionKey: this.workflowSteps.encryptionKey,
    });
    // A triggered enrollment starts as one through the API does: a first webhook action's
    // delivery is built and handed to the webhook lane at once.
    this.enrollFunction.useTable(workflows, "read");
    this.enrollFunction.useTable(records, "read");
    this.enrollFunction.useTable(enrollments, "readWrite");
    this.enrollFunction.useTable(deliveries, "readWrite");
    this.enrollFunction.queriesIndex(workflows, WORKFLOWS_BY_TRIGGER_TYPE);
    this.enrollFunction.sendsTo(this.workflowSteps);
    this.enrollFunction.sendsTo(this.webhookLane);

    // The sweeper reads the open work of these two tables, re-sends steps and attempts, finishes
    // the webhook actions of deliveries that ended (writing their outputs into the record), and
    // fails what cannot move.
    this.sweepFunction.useTable(enrollments, "readWrite");
    this.sweepFunction.useTable(deliveries, "readWrite");
    this.sweepFunction.useTable(records, "readWrite");
    this.sweepFunction.queriesIndex(enrollments, openWorkIndex);
    this.sweepFunction.queriesIndex(deliveries, openWorkIndex);
    this.sweepFunction.sendsTo(this.workflowSteps);
    this.sweepFunction.sendsTo(this.webhookLane);
    this.sweeper = new Sweeper(this, "Sweeper", {
      sweepFunction: this.sweepFunction,
      interval: Duration.seconds(sweeper.intervalSeconds),
    });

    this.api = new WorkflowApi(this, "Api", {
      handler: this.apiFunction,
      routes: apiRoutes,
      authorization: settings.apiAuthorization,
      throttling: {
        rateLimit: settings.apiThrottlingRateLimit,
        burstLimit: settings.apiThrottlingBurstLimit,
      },
      logRetention: settings.logRetentionDays,
    });

    this.monitoring = new Monitoring(this, "Monitoring", {
      functions: [
        this.apiFunction,
        this.engineFunction,
        this.deliverFunction,
        this.enrollFunction,
        this.sweepFunction,
      ],
      deliverer: this.deliverFunction,
      lanes: [this.workflowSteps, this.webhookLane],
      retries: this.retries,
      api: this.api,
      failedDeliveriesThreshold: settings.failedDeliveriesAlarmThreshold,
      laneAgeThreshold: Duration.seconds(settings.laneAgeAlarmSeconds),
      alarmEmail: settings.alarmEmail,
      enrollmentStream: this.enrollments,
      sweepFunction: this.sweepFunction,
      tables: Object.values(this.state.tables),
    });

    this.addOutputs();
  }

  private addOutputs(): void {
    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    output("ApiUrl", this.api.url, "Base URL of the API (SigV4-signed requests)");
    output("DashboardUrl", this.monitoring.dashboardUrl, "The CloudWatch dashboard");
    output("AlarmTopicArn", this.monitoring.alarmTopic.topicArn, "Subscribe here for alarms");
    for (const [name, lane] of [
      ["WorkflowSteps", this.workflowSteps],
      ["WebhookLane", this.webhookLane],
    ] as const) {
      output(`${name}QueueName`, lane.queue.queueName, `The ${lane.definition.name} queue`);
      output(
        `${name}DeadLetterQueueName`,
        lane.deadLetterQueue.queueName,
        `Dead letters of the ${lane.definition.name} queue`,
      );
    }
    output(
      "RetrySchedulerDeadLetterQueueName",
      this.retries.deadLetterQueue.queueName,
      "Retries EventBridge Scheduler could not deliver",
    );
    output("RetryScheduleGroupName", this.retries.groupName, "Schedule group of the retries");
    output(
      "EnrollFailuresQueueName",
      this.enrollments.onFailureQueue.queueName,
      "Stream records the enroll function gave up on",
    );
    for (const table of Object.values(this.state.tables)) {
      const name = table.node.id.replace(/Table$/, "");
      output(`${name}TableName`, table.tableName, `The ${table.definition.name} table`);
    }
  }
}
