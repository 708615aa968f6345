import { Aws, Duration, Fn, RemovalPolicy, Stack } from "aws-cdk-lib";
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { QueryDefinition, QueryString } from "aws-cdk-lib/aws-logs";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { WorkflowApi } from "#infra/constructs/api";
import type { EnrollmentStream } from "#infra/constructs/enrollment-stream";
import type { Lane } from "#infra/constructs/lanes";
import type { RetryScheduler } from "#infra/constructs/retry-scheduler";
import type { StateTable } from "#infra/constructs/state-tables";
import type { TeamFunction } from "#infra/constructs/team-function";
import { metrics } from "#shared/contract";

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export interface MonitoringProps {
  /** Every function of the system: errors, throttles, duration, and the log groups to query. */
  readonly functions: readonly TeamFunction[];
  /** The function that makes delivery attempts; its `service` dimension carries the delivery metrics. */
  readonly deliverer: TeamFunction;
  readonly lanes: readonly Lane[];
  readonly retries: RetryScheduler;
  readonly api: WorkflowApi;
  /** Deliveries failing for good within 5 minutes above which the alarm fires. */
  readonly failedDeliveriesThreshold: number;
  /** Age of a lane's oldest message, held for 3 minutes, at which the alarm fires. */
  readonly laneAgeThreshold: Duration;
  /** @default - no subscription; subscribe to the topic yourself */
  readonly alarmEmail?: string;
  /** The function fed by the records stream: its triggered enrollments, iterator age and failures. */
  readonly enrollmentStream?: EnrollmentStream;
  /**
   * The sweeper's function, whose `service` dimension carries its repair metrics; one of
   * `functions`.
   * @default - no sweeper alarm or widget
   */
  readonly sweepFunction?: TeamFunction;
  /**
   * Tables whose throttling (the table's and its indexes') raises an alarm.
   * @default - none
   */
  readonly tables?: readonly StateTable[];
}

/** Age of the newest stream record handed over, held for 3 minutes, at which the alarm fires. */
const ITERATOR_AGE_ALARM = Duration.minutes(5);

/**
 * Any of these in 5 minutes is worth a look: a healthy system has none, and each is counted by
 * CloudWatch or by the functions, never sampled.
 */
const ANY_IN_FIVE_MINUTES = {
  threshold: 1,
  comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  evaluationPeriods: 1,
} as const;

/**
 * What an operator watches: a dashboard of deliveries, lanes, retries, functions, the API and the
 * sweeper; alarms on dead letters, deliveries failing for good, lanes falling behind, function
 * errors and throttles, API 5xx, retries that could not be scheduled or fired, throttled tables
 * and the sweeper's repairs, all sent to one encrypted SNS topic; and saved Logs Insights queries
 * over the functions' logs.
 */
export class Monitoring extends Construct {
  readonly alarmTopic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: readonly Alarm[];
  readonly queries: readonly QueryDefinition[];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    validateMonitoring(id, props);
    super(scope, id);
    const stackName = Stack.of(this).stackName;

    this.alarmTopic = this.createAlarmTopic(props.alarmEmail);
    const deliveryMetric = (name: string, statistic: string) =>
      new Metric({
        namespace: metrics.namespace,
        metricName: name,
        dimensionsMap: { [metrics.serviceDimension]: props.deliverer.serviceName },
        statistic,
        period: Duration.minutes(5),
      });

    const alarms: Alarm[] = [];
    const alarm = (alarmId: string, description: string, options: AlarmOptions) => {
      const created = new Alarm(this, alarmId, {
        alarmName: `${stackName}-${alarmId}`,
        alarmDescription: `${description} See "Watching it in the console" in the README.`,
        // Idle queues and functions report nothing; silence is not trouble.
        treatMissingData: TreatMissingData.NOT_BREACHING,
        ...options,
      });
      created.addAlarmAction(new SnsAction(this.alarmTopic));
      created.addOkAction(new SnsAction(this.alarmTopic));
      alarms.push(created);
      return created;
    };

    const deadLetterQueues: Array<[string, Queue]> = [
      ...props.lanes.map((lane): [string, Queue] => [
        `${lane.definition.name} DLQ`,
        lane.deadLetterQueue,
      ]),
      ["retry schedules DLQ", props.retries.deadLetterQueue],
    ];
    for (const [label, queue] of deadLetterQueues) {
      alarm(`${pascal(label)}Messages`, `A message reached the ${label}.`, {
        metric: queue.metricApproximateNumberOfMessagesVisible({
          statistic: "Maximum",
          period: Duration.minutes(1),
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    alarm(
      "DeliveriesFailing",
      `More than ${props.failedDeliveriesThreshold} deliveries failed for good within 5 minutes.`,
      {
        metric: deliveryMetric(metrics.names.deliveryFailed, "Sum"),
        threshold: props.failedDeliveriesThreshold,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      },
    );
    for (const lane of props.lanes) {
      alarm(
        `${pascal(lane.definition.name)}Behind`,
        `The ${lane.definition.name} lane's oldest message has waited ${props.laneAgeThreshold.toSeconds()} s or more for 3 minutes.`,
        {
          metric: lane.queue.metricApproximateAgeOfOldestMessage({
            statistic: "Maximum",
            period: Duration.minutes(1),
          }),
          threshold: props.laneAgeThreshold.toSeconds(),
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 3,
        },
      );
    }
    for (const fn of props.functions) {
      alarm(`${pascal(fn.serviceName)}FunctionErrors`, `The ${fn.serviceName} function failed.`, {
        metric: fn.metricErrors({ statistic: "Sum", period: Duration.minutes(5) }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    const streamed = props.enrollmentStream;
    const iteratorAge = streamed?.consumer.metric("IteratorAge", {
      statistic: "Maximum",
      period: Duration.minutes(1),
    });
    if (streamed && iteratorAge) {
      alarm(
        "EnrollFailuresMessages",
        "The enroll function gave up on stream records: changes that may have missed their triggered enrollments.",
        {
          metric: streamed.onFailureQueue.metricApproximateNumberOfMessagesVisible({
            statistic: "Maximum",
            period: Duration.minutes(1),
          }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
        },
      );
      alarm(
        "EnrollmentsBehind",
        `The enroll function has been ${ITERATOR_AGE_ALARM.toMinutes()} minutes or more behind the records stream for 3 minutes.`,
        {
          metric: iteratorAge,
          threshold: ITERATOR_AGE_ALARM.toMilliseconds(),
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 3,
        },
      );
    }
    this.addFailureAlarms(props, alarm, deliveryMetric);
    this.alarms = alarms;

    this.dashboard = new Dashboard(this, "Dashboard", {
      // Dashboard names are unique per account, not per region.
      dashboardName: Fn.join("-", [stackName, Aws.REGION]),
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# ${stackName}\nDeliveries, lanes, retries, functions and API. What each widget and alarm means, and what to do: "Watching it in the console" in the README.`,
        width: 12,
        height: 4,
      }),
      new AlarmStatusWidget({ title: "Alarms", alarms, width: 12, height: 4 }),
    );
    this.dashboard.addWidgets(
      graph("Deliveries (per 5 minutes)", [
        deliveryMetric(metrics.names.deliverySucceeded, "Sum").with({ label: "succeeded" }),
        deliveryMetric(metrics.names.deliveryRetried, "Sum").with({ label: "retried" }),
        deliveryMetric(metrics.names.deliveryFailed, "Sum").with({ label: "failed for good" }),
        // A receiver at its share of the lane, or behind an open breaker (docs/fair-lane.md).
        deliveryMetric(metrics.names.deliveryDeferred, "Sum").with({ label: "deferred" }),
        deliveryMetric(metrics.names.deliveryPaused, "Sum").with({ label: "paused" }),
      ]),
      graph(
        "Delivery latency per attempt (ms)",
        ["p50", "p95", "p99"].map((p) =>
          deliveryMetric(metrics.names.deliveryLatency, p).with({ label: p }),
        ),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        "Lane depth (messages)",
        props.lanes.flatMap((lane) => [
          lane.queue
            .metricApproximateNumberOfMessagesVisible({ statistic: "Maximum" })
            .with({ label: `${lane.definition.name} waiting` }),
          lane.queue
            .metricApproximateNumberOfMessagesNotVisible({ statistic: "Maximum" })
            .with({ label: `${lane.definition.name} in flight` }),
        ]),
        8,
      ),
      graph(
        "Age of oldest message (s)",
        props.lanes.map((lane) =>
          lane.queue
            .metricApproximateAgeOfOldestMessage({ statistic: "Maximum" })
            .with({ label: lane.definition.name }),
        ),
        8,
      ),
      graph(
        "Dead-letter queue depth",
        deadLetterQueues.map(([label, queue]) =>
          queue.metricApproximateNumberOfMessagesVisible({ statistic: "Maximum" }).with({ label }),
        ),
        8,
      ),
    );
    const group = props.retries.group;
    this.dashboard.addWidgets(
      graph("Retries (per 5 minutes)", [
        deliveryMetric(metrics.names.retryScheduled, "Sum").with({ label: "scheduled" }),
        deliveryMetric(metrics.names.retryFired, "Sum").with({ label: "fired" }),
        deliveryMetric(metrics.names.retryScheduleFailed, "Sum").with({
          label: "could not be scheduled",
        }),
      ]),
      graph("EventBridge Scheduler (retry group)", [
        group.metricAttempts({ statistic: "Sum" }).with({ label: "invocation attempts" }),
        group.metricTargetErrors({ statistic: "Sum" }).with({ label: "target errors" }),
        group.metricThrottled({ statistic: "Sum" }).with({ label: "throttled" }),
        group.metricDropped({ statistic: "Sum" }).with({ label: "dropped" }),
        group.metricSentToDLQ({ statistic: "Sum" }).with({ label: "sent to DLQ" }),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        "Function errors",
        props.functions.map((fn) =>
          fn.metricErrors({ statistic: "Sum" }).with({ label: fn.serviceName }),
        ),
        8,
      ),
      graph(
        "Function throttles",
        props.functions.map((fn) =>
          fn.metricThrottles({ statistic: "Sum" }).with({ label: fn.serviceName }),
        ),
        8,
      ),
      graph(
        "Function duration p99 (ms)",
        props.functions.map((fn) =>
          fn.metricDuration({ statistic: "p99" }).with({ label: fn.serviceName }),
        ),
        8,
      ),
    );
    const stage = props.api.stage;
    this.dashboard.addWidgets(
      graph("API requests and errors", [
        stage.metricCount({ statistic: "Sum" }).with({ label: "requests" }),
        stage.metricClientError({ statistic: "Sum" }).with({ label: "4xx" }),
        stage.metricServerError({ statistic: "Sum" }).with({ label: "5xx" }),
      ]),
      graph(
        "API latency (ms)",
        ["p50", "p95", "p99"].map((p) => stage.metricLatency({ statistic: p }).with({ label: p })),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        "Enrollments (per 5 minutes, by emitting function)",
        [metrics.names.enrollmentStarted, metrics.names.enrollmentCompleted].map(
          (name) =>
            new MathExpression({
              expression: `SEARCH('{${metrics.namespace},${metrics.serviceDimension}} MetricName="${name}"', 'Sum', 300)`,
              label: name,
              period: Duration.minutes(5),
            }),
        ),
        24,
      ),
    );
    if (streamed && iteratorAge) {
      this.dashboard.addWidgets(
        graph("Triggered enrollments (per 5 minutes)", [
          new Metric({
            namespace: metrics.namespace,
            metricName: metrics.names.enrollmentTriggered,
            dimensionsMap: { [metrics.serviceDimension]: streamed.consumer.serviceName },
            statistic: "Sum",
            period: Duration.minutes(5),
          }).with({ label: "triggered" }),
          streamed.onFailureQueue
            .metricApproximateNumberOfMessagesVisible({ statistic: "Maximum" })
            .with({ label: "stream records given up on" }),
        ]),
        graph("Records stream iterator age (ms)", [iteratorAge.with({ label: "enroll" })]),
      );
    }
    this.addSweeperWidgets(props);

    this.queries = this.createQueries(stackName, props.functions);
  }

  /**
   * Alarms on what goes wrong without failing a delivery outright: API 5xx, throttled functions
   * and tables, retries that could not be scheduled or could not reach the lane, and the
   * sweeper's repairs (work that had stopped moving).
   */
  private addFailureAlarms(
    props: MonitoringProps,
    alarm: (alarmId: string, description: string, options: AlarmOptions) => Alarm,
    deliveryMetric: (name: string, statistic: string) => Metric,
  ): void {
    const fiveMinutes = { statistic: "Sum", period: Duration.minutes(5) };
    alarm("ApiServerErrors", "The API answered a request with a 5xx.", {
      metric: props.api.stage.metricServerError(fiveMinutes),
      ...ANY_IN_FIVE_MINUTES,
    });
    for (const fn of props.functions) {
      alarm(
        `${pascal(fn.serviceName)}FunctionThrottles`,
        `Lambda throttled the ${fn.serviceName} function.`,
        { metric: fn.metricThrottles(fiveMinutes), ...ANY_IN_FIVE_MINUTES },
      );
    }
    alarm(
      "RetrySchedulingFailing",
      "The deliver function could not schedule a retry (its message returns to the lane and tries again).",
      { metric: deliveryMetric(metrics.names.retryScheduleFailed, "Sum"), ...ANY_IN_FIVE_MINUTES },
    );
    alarm(
      "RetryScheduleTargetErrors",
      "EventBridge Scheduler could not put a fired retry on the webhook lane (it tries again for an hour, then dead-letters it).",
      { metric: props.retries.group.metricTargetErrors(fiveMinutes), ...ANY_IN_FIVE_MINUTES },
    );
    for (const table of props.tables ?? []) {
      alarm(
        `${pascal(table.definition.name)}TableThrottled`,
        `DynamoDB throttled requests to the ${table.definition.name} table or its indexes.`,
        { metric: throttleEvents(table), ...ANY_IN_FIVE_MINUTES },
      );
    }
    if (props.sweepFunction) {
      alarm(
        "SweeperRepairs",
        "The sweeper resumed or failed work that had stopped moving: something failed silently before it.",
        { metric: sweeperRepairs(props.sweepFunction), ...ANY_IN_FIVE_MINUTES },
      );
    }
  }

  /** The sweeper's row: what it looked at and what it repaired, and DynamoDB's throttling. */
  private addSweeperWidgets(props: MonitoringProps): void {
    const sweep = props.sweepFunction;
    const widgets: GraphWidget[] = [];
    if (sweep) {
      const sweeperMetric = (name: string) => serviceMetric(sweep, name, "Sum");
      widgets.push(
        graph("Sweeper (per 5 minutes)", [
          sweeperMetric(metrics.names.sweeperExamined).with({ label: "overdue work looked at" }),
          sweeperMetric(metrics.names.sweeperResumed).with({ label: "resumed" }),
          sweeperMetric(metrics.names.sweeperFailed).with({ label: "failed" }),
        ]),
      );
    }
    const tables = props.tables ?? [];
    if (tables.length > 0) {
      widgets.push(
        graph(
          "DynamoDB throttled requests (per 5 minutes)",
          tables.map((table) => throttleEvents(table).with({ label: table.definition.name })),
        ),
      );
    }
    if (widgets.length > 0) this.dashboard.addWidgets(...widgets);
  }

  /** The dashboard in the CloudWatch console. */
  get dashboardUrl(): string {
    return `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }

  private createAlarmTopic(alarmEmail: string | undefined): Topic {
    const key = new Key(this, "AlarmTopicKey", {
      description: "Encrypts the alarm topic",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // CloudWatch publishes alarm notifications itself, so it must be able to use the key.
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
    );
    const topic = new Topic(this, "AlarmTopic", {
      displayName: "Workflow webhooks alarms",
      masterKey: key,
      enforceSSL: true,
    });
    if (alarmEmail !== undefined) {
      topic.addSubscription(new EmailSubscription(alarmEmail));
    }
    return topic;
  }

  private createQueries(stackName: string, functions: readonly TeamFunction[]): QueryDefinition[] {
    const logGroups = functions.map((fn) => fn.logGroup);
    const query = (queryId: string, name: string, queryString: QueryString) =>
      new QueryDefinition(this, queryId, {
        queryDefinitionName: `${stackName}/${name}`,
        queryString,
        logGroups,
      });
    return [
      query(
        "FailedDeliveriesByWorkflow",
        "Failed deliveries by workflow",
        new QueryString({
          fields: ["@timestamp", "workflowId", "deliveryId", "statusCode"],
          filterStatements: ['message = "delivery attempt"', 'outcome = "failed"'],
          statsStatements: [
            "count(*) as failedDeliveries, latest(deliveryId) as lastDeliveryId by workflowId",
          ],
          sort: "failedDeliveries desc",
        }),
      ),
      query(
        "DeliveryStory",
        "One delivery's story (set the deliveryId)",
        new QueryString({
          fields: [
            "@timestamp",
            "service",
            "level",
            "message",
            "attempt",
            "outcome",
            "statusCode",
            "enrollmentId",
            "workflowId",
          ],
          filterStatements: ['deliveryId = "REPLACE-WITH-DELIVERY-ID"'],
          sort: "@timestamp asc",
          limit: 1000,
        }),
      ),
      query(
        "EnrollmentStory",
        "One enrollment's story (set the enrollmentId)",
        new QueryString({
          fields: [
            "@timestamp",
            "service",
            "level",
            "message",
            "deliveryId",
            "outcome",
            "workflowId",
          ],
          filterStatements: ['enrollmentId = "REPLACE-WITH-ENROLLMENT-ID"'],
          sort: "@timestamp asc",
          limit: 1000,
        }),
      ),
    ];
  }
}

type AlarmOptions = {
  readonly metric: IMetric;
  readonly threshold: number;
  readonly comparisonOperator: ComparisonOperator;
  readonly evaluationPeriods: number;
};

/** A custom metric of the system, as one function emits it. */
function serviceMetric(fn: TeamFunction, name: string, statistic: string): Metric {
  return new Metric({
    namespace: metrics.namespace,
    metricName: name,
    dimensionsMap: { [metrics.serviceDimension]: fn.serviceName },
    statistic,
    period: Duration.minutes(5),
  });
}

/** Work the sweeper resumed or failed within 5 minutes. */
function sweeperRepairs(sweep: TeamFunction): MathExpression {
  return new MathExpression({
    expression: "FILL(resumed, 0) + FILL(failed, 0)",
    usingMetrics: {
      resumed: serviceMetric(sweep, metrics.names.sweeperResumed, "Sum"),
      failed: serviceMetric(sweep, metrics.names.sweeperFailed, "Sum"),
    },
    label: "sweeper repairs",
    period: Duration.minutes(5),
  });
}

/**
 * Read and write throttle events of a table and of each of its indexes, summed per 5 minutes; an
 * index that cannot keep up throttles the table's writes too.
 */
function throttleEvents(table: StateTable): MathExpression {
  const sources = [
    { TableName: table.tableName },
    ...(table.definition.indexes ?? []).map((index) => ({
      TableName: table.tableName,
      GlobalSecondaryIndexName: index.name,
    })),
  ];
  // Ids are unique per graph, where several tables' expressions meet.
  const prefix = table.definition.name.toLowerCase().replace(/[^a-z0-9]/g, "");
  const usingMetrics: Record<string, IMetric> = {};
  sources.forEach((dimensionsMap, source) => {
    for (const kind of ["Read", "Write"]) {
      usingMetrics[`${prefix}${kind}${source}`] = new Metric({
        namespace: "AWS/DynamoDB",
        metricName: `${kind}ThrottleEvents`,
        dimensionsMap,
        statistic: "Sum",
        period: Duration.minutes(5),
      });
    }
  });
  return new MathExpression({
    expression: Object.keys(usingMetrics)
      .map((id) => `FILL(${id}, 0)`)
      .join(" + "),
    usingMetrics,
    label: `${table.definition.name} throttled requests`,
    period: Duration.minutes(5),
  });
}

function graph(title: string, left: IMetric[], width = 12): GraphWidget {
  return new GraphWidget({ title, left, width, height: 6 });
}

/** `webhook-lane DLQ` → `WebhookLaneDlq`. */
function pascal(words: string): string {
  return words
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== "")
    .map((word) => `${word.charAt(0).toUpperCase()}${word.slice(1).toLowerCase()}`)
    .join("");
}

function validateMonitoring(id: string, props: MonitoringProps): void {
  if (!props.functions.includes(props.deliverer)) {
    throw new Error(`${id}: the deliverer must be one of the monitored functions`);
  }
  if (props.lanes.length === 0) {
    throw new Error(`${id}: there must be at least one lane to watch`);
  }
  if (!Number.isInteger(props.failedDeliveriesThreshold) || props.failedDeliveriesThreshold < 0) {
    throw new Error(
      `${id}: failedDeliveriesThreshold must be a whole number of zero or more, got ${props.failedDeliveriesThreshold}`,
    );
  }
  if (props.laneAgeThreshold.toSeconds() < 60) {
    throw new Error(
      `${id}: laneAgeThreshold must be at least 60 seconds (SQS reports once a minute)`,
    );
  }
  if (props.alarmEmail !== undefined && !EMAIL.test(props.alarmEmail)) {
    throw new Error(`${id}: alarmEmail "${props.alarmEmail}" is not an email address`);
  }
  if (props.sweepFunction !== undefined && !props.functions.includes(props.sweepFunction)) {
    throw new Error(`${id}: the sweep function must be one of the monitored functions`);
  }
}
