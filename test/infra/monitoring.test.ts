import { type CfnElement, Duration } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { Monitoring, type MonitoringProps } from "#infra/constructs/monitoring";
import { metrics, tables } from "#shared/contract";
import { synthesize, synthesizeDefault } from "#test/synth";

const { stack, template } = synthesizeDefault();

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

type Alarm = { Properties: Record<string, unknown> };

function alarms(): Alarm[] {
  return Object.values(template.findResources("AWS::CloudWatch::Alarm")) as Alarm[];
}

function alarmOn(predicate: (properties: Record<string, unknown>) => boolean): Alarm[] {
  return alarms().filter((alarm) => predicate(alarm.Properties));
}

describe("the alarms", () => {
  it("all notify the alarm topic, when they fire and when they clear", () => {
    // Prepare
    const topic = { Ref: logicalId(stack.monitoring.alarmTopic) };

    // Act
    const found = alarms();

    // Assess
    expect(found.length).toBe(27);
    for (const alarm of found) {
      expect(alarm.Properties.TreatMissingData).toBe("notBreaching");
      expect(alarm.Properties.AlarmActions).toEqual([topic]);
      expect(alarm.Properties.OKActions).toEqual([topic]);
    }
  });

  it("fire on the first message in any dead-letter queue", () => {
    // Prepare
    const deadLetterQueues = [
      stack.workflowSteps.deadLetterQueue,
      stack.webhookLane.deadLetterQueue,
      stack.retries.deadLetterQueue,
    ];

    for (const queue of deadLetterQueues) {
      // Act
      const found = alarmOn(
        (properties) =>
          properties.MetricName === "ApproximateNumberOfMessagesVisible" &&
          JSON.stringify(properties.Dimensions).includes(logicalId(queue)),
      );

      // Assess
      expect(found).toHaveLength(1);
      expect(found[0]?.Properties).toMatchObject({
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        EvaluationPeriods: 1,
      });
    }
  });

  it("fire when more deliveries fail for good than the threshold allows", () => {
    // Act
    const found = alarmOn((properties) => properties.MetricName === metrics.names.deliveryFailed);

    // Assess
    expect(found).toHaveLength(1);
    expect(found[0]?.Properties).toMatchObject({
      Namespace: metrics.namespace,
      Dimensions: [{ Name: metrics.serviceDimension, Value: "deliver" }],
      Statistic: "Sum",
      Period: 300,
      Threshold: 10,
      ComparisonOperator: "GreaterThanThreshold",
    });
  });

  it("fire when a lane's oldest message waits too long", () => {
    for (const lane of [stack.workflowSteps, stack.webhookLane]) {
      // Act
      const found = alarmOn(
        (properties) =>
          properties.MetricName === "ApproximateAgeOfOldestMessage" &&
          JSON.stringify(properties.Dimensions).includes(logicalId(lane.queue)),
      );

      // Assess
      expect(found).toHaveLength(1);
      expect(found[0]?.Properties).toMatchObject({ Threshold: 300, EvaluationPeriods: 3 });
    }
  });

  it("fire on any error of any function", () => {
    for (const fn of [stack.apiFunction, stack.engineFunction, stack.deliverFunction]) {
      // Act
      const found = alarmOn(
        (properties) =>
          properties.MetricName === "Errors" &&
          JSON.stringify(properties.Dimensions) ===
            JSON.stringify([{ Name: "FunctionName", Value: { Ref: logicalId(fn) } }]),
      );

      // Assess
      expect(found).toHaveLength(1);
      expect(found[0]?.Properties).toMatchObject({ Threshold: 1, Statistic: "Sum" });
    }
  });

  it("follow the context options for the thresholds", () => {
    // Act
    const tuned = synthesize({ failedDeliveriesAlarmThreshold: "3", laneAgeAlarmSeconds: 900 });

    // Assess
    tuned.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: metrics.names.deliveryFailed,
      Threshold: 3,
    });
    expect(
      Object.values(tuned.template.findResources("AWS::CloudWatch::Alarm"))
        .filter((alarm) => alarm.Properties.MetricName === "ApproximateAgeOfOldestMessage")
        .map((alarm) => alarm.Properties.Threshold),
    ).toEqual([900, 900]);
  });
});

describe("the alarm topic", () => {
  it("is encrypted, refuses plain HTTP publishers, and lets CloudWatch use its key", () => {
    // Act
    const topic = template.findResources("AWS::SNS::Topic")[logicalId(stack.monitoring.alarmTopic)];
    const keyReference = topic?.Properties.KmsMasterKeyId as { "Fn::GetAtt": [string] } | undefined;
    const key = template.findResources("AWS::KMS::Key")[keyReference?.["Fn::GetAtt"][0] ?? ""];

    // Assess
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      Topics: [{ Ref: logicalId(stack.monitoring.alarmTopic) }],
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Effect: "Deny",
            Action: "sns:Publish",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ],
      },
    });
    expect(key?.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
      }),
    );
  });

  it("has no subscription unless alarmEmail is set, then an email one", () => {
    // Act
    const withEmail = synthesize({ alarmEmail: "oncall@example.com" });

    // Assess
    template.resourceCountIs("AWS::SNS::Subscription", 0);
    withEmail.template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "oncall@example.com",
    });
  });
});

describe("the dashboard", () => {
  it("shows deliveries, latency, lanes, dead letters, retries, functions and the API", () => {
    // Act
    const dashboards = Object.values(template.findResources("AWS::CloudWatch::Dashboard"));
    const body = JSON.stringify(dashboards[0]?.Properties.DashboardBody);

    // Assess
    expect(dashboards).toHaveLength(1);
    for (const shown of [
      metrics.names.deliverySucceeded,
      metrics.names.deliveryRetried,
      metrics.names.deliveryFailed,
      metrics.names.deliveryLatency,
      metrics.names.deliveryDeferred,
      metrics.names.deliveryPaused,
      metrics.names.retryScheduled,
      metrics.names.retryScheduleFailed,
      metrics.names.retryFired,
      metrics.names.enrollmentStarted,
      metrics.names.enrollmentCompleted,
      "ApproximateNumberOfMessagesVisible",
      "ApproximateAgeOfOldestMessage",
      "InvocationAttemptCount",
      "TargetErrorCount",
      "InvocationsSentToDeadLetterCount",
      "Errors",
      "Throttles",
      "Duration",
      "Latency",
      '\\"p50\\"',
      '\\"p95\\"',
      '\\"p99\\"',
    ]) {
      expect(body, shown).toContain(shown);
    }
  });

  it("reads the API's requests, errors and latency from its v1 stage, by the HTTP API's names", () => {
    // Prepare
    const dashboard = Object.values(template.findResources("AWS::CloudWatch::Dashboard"))[0];
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);
    const apiId = `{"Ref":"${logicalId(stack.api.httpApi)}"}`;

    for (const name of ["Count", "4xx", "5xx", "Latency"]) {
      // Act
      const shown = body.includes(
        `[\\"AWS/ApiGateway\\",\\"${name}\\",\\"ApiId\\",\\"",${apiId},"\\",\\"Stage\\",\\"v1\\",`,
      );

      // Assess
      expect(shown, name).toBe(true);
    }
  });
});

describe("the saved Logs Insights queries", () => {
  it("cover failed deliveries by workflow and one delivery's story, over every function's logs", () => {
    // Prepare
    const logGroups = [
      stack.apiFunction,
      stack.engineFunction,
      stack.deliverFunction,
      stack.enrollFunction,
      stack.sweepFunction,
    ].map((fn) => ({
      Ref: logicalId(fn.logGroup),
    }));

    // Act
    const queries = Object.values(template.findResources("AWS::Logs::QueryDefinition")).map(
      (query) => query.Properties,
    );
    const byName = (part: string) =>
      queries.find((query) => String(query.Name).includes(part))?.QueryString as string;

    // Assess
    for (const query of queries) expect(query.LogGroupNames).toEqual(logGroups);
    expect(byName("Failed deliveries by workflow")).toMatch(
      /filter message = "delivery attempt"[\s\S]*outcome = "failed"[\s\S]*by workflowId/,
    );
    expect(byName("One delivery's story")).toMatch(
      /filter deliveryId = [\s\S]*sort @timestamp asc/,
    );
  });
});

describe("the stack outputs", () => {
  it("give the API URL, the dashboard URL, and every queue and table name", () => {
    // Act
    const outputs = Object.keys(template.findOutputs("*"));

    // Assess
    expect(outputs).toEqual(
      expect.arrayContaining([
        "ApiUrl",
        "DashboardUrl",
        "AlarmTopicArn",
        "WorkflowStepsQueueName",
        "WorkflowStepsDeadLetterQueueName",
        "WebhookLaneQueueName",
        "WebhookLaneDeadLetterQueueName",
        "RetrySchedulerDeadLetterQueueName",
        ...Object.values(tables).map(
          (table) => `${table.name.charAt(0).toUpperCase()}${table.name.slice(1)}TableName`,
        ),
      ]),
    );
    expect(JSON.stringify(template.findOutputs("DashboardUrl"))).toContain(
      "#dashboards/dashboard/",
    );
  });
});

describe("the monitoring's constructor", () => {
  function props(overrides: Partial<MonitoringProps>): MonitoringProps {
    return {
      functions: [stack.apiFunction, stack.engineFunction, stack.deliverFunction],
      deliverer: stack.deliverFunction,
      lanes: [stack.workflowSteps, stack.webhookLane],
      retries: stack.retries,
      api: stack.api,
      failedDeliveriesThreshold: 10,
      laneAgeThreshold: Duration.minutes(5),
      ...overrides,
    };
  }

  it("refuses a deliverer it does not watch", () => {
    // Act
    const create = () =>
      new Monitoring(stack, "Misconfigured1", props({ functions: [stack.apiFunction] }));

    // Assess
    expect(create).toThrow(/deliverer must be one of the monitored functions/);
  });

  it("refuses a lane age threshold finer than SQS reports", () => {
    // Act
    const create = () =>
      new Monitoring(stack, "Misconfigured2", props({ laneAgeThreshold: Duration.seconds(30) }));

    // Assess
    expect(create).toThrow(/laneAgeThreshold must be at least 60 seconds/);
  });

  it("refuses an alarm email that is not an address", () => {
    // Act
    const create = () => new Monitoring(stack, "Misconfigured3", props({ alarmEmail: "oncall" }));

    // Assess
    expect(create).toThrow(/alarmEmail "oncall" is not an email address/);
  });
});
