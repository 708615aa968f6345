import { type CfnElement, Duration } from "aws-cdk-lib";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { Monitoring } from "#infra/constructs/monitoring";
import { metrics, openWorkIndex } from "#shared/contract";
import { synthesizeDefault } from "#test/synth";

/**
 * The alarms on what goes wrong without a delivery failing outright: each exists once, fires on
 * the first occurrence in 5 minutes, and notifies the alarm topic (the topic and missing data are
 * checked for every alarm in monitoring.test.ts).
 */
const { stack, template } = synthesizeDefault();

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

type Properties = Record<string, unknown>;

function alarm(name: string): Properties {
  const found = Object.values(template.findResources("AWS::CloudWatch::Alarm"))
    .map((resource) => resource.Properties as Properties)
    .filter((properties) => properties.AlarmName === `${stack.stackName}-${name}`);
  expect(found, name).toHaveLength(1);
  return found[0] as Properties;
}

const ANY_IN_FIVE_MINUTES = {
  Threshold: 1,
  ComparisonOperator: "GreaterThanOrEqualToThreshold",
  EvaluationPeriods: 1,
};

/** The metrics a metric-math alarm reads, by id, and its expression. */
function mathOf(properties: Properties) {
  const queries = properties.Metrics as Array<{
    Id: string;
    Expression?: string;
    MetricStat?: {
      Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] };
      Period: number;
      Stat: string;
    };
  }>;
  const expression = queries.find((query) => query.Expression)?.Expression;
  const read = queries.flatMap((query) => (query.MetricStat ? [query.MetricStat] : []));
  return { expression, read };
}

describe("the failure alarms", () => {
  it("fire on a 5xx from the API's v1 stage", () => {
    // Act
    const found = alarm("ApiServerErrors");

    // Assess
    expect(found).toMatchObject({
      ...ANY_IN_FIVE_MINUTES,
      Namespace: "AWS/ApiGateway",
      MetricName: "5xx",
      Statistic: "Sum",
      Period: 300,
      Dimensions: expect.arrayContaining([
        { Name: "ApiId", Value: { Ref: logicalId(stack.api.httpApi) } },
        { Name: "Stage", Value: "v1" },
      ]),
    });
  });

  it("fire when Lambda throttles any function, the sweeper's included", () => {
    for (const fn of [
      stack.apiFunction,
      stack.engineFunction,
      stack.deliverFunction,
      stack.sweepFunction,
    ]) {
      // Act
      const name = `${fn.serviceName.charAt(0).toUpperCase()}${fn.serviceName.slice(1)}FunctionThrottles`;
      const found = alarm(name);

      // Assess
      expect(found).toMatchObject({
        ...ANY_IN_FIVE_MINUTES,
        Namespace: "AWS/Lambda",
        MetricName: "Throttles",
        Statistic: "Sum",
        Period: 300,
        Dimensions: [{ Name: "FunctionName", Value: { Ref: logicalId(fn) } }],
      });
    }
  });

  it("fire on any error of the sweep function", () => {
    // Act
    const found = alarm("SweepFunctionErrors");

    // Assess
    expect(found).toMatchObject({
      Threshold: 1,
      MetricName: "Errors",
      Dimensions: [{ Name: "FunctionName", Value: { Ref: logicalId(stack.sweepFunction) } }],
    });
  });

  it("fire when the deliver function could not schedule a retry, by the metric it emits", () => {
    // Act
    const found = alarm("RetrySchedulingFailing");

    // Assess
    expect(found).toMatchObject({
      ...ANY_IN_FIVE_MINUTES,
      Namespace: metrics.namespace,
      MetricName: metrics.names.retryScheduleFailed,
      Dimensions: [{ Name: metrics.serviceDimension, Value: "deliver" }],
      Statistic: "Sum",
      Period: 300,
    });
  });

  it("fire when EventBridge Scheduler could not put a fired retry on the lane", () => {
    // Act
    const found = alarm("RetryScheduleTargetErrors");

    // Assess
    expect(found).toMatchObject({
      ...ANY_IN_FIVE_MINUTES,
      Namespace: "AWS/Scheduler",
      MetricName: "TargetErrorCount",
      Statistic: "Sum",
      Period: 300,
    });
    expect(JSON.stringify(found.Dimensions)).toContain("ScheduleGroup");
    // Its dead-letter queue has an alarm of its own, from before.
    alarm("RetrySchedulesDlqMessages");
  });

  it("fire when DynamoDB throttles any table or any of its indexes", () => {
    for (const [key, table] of Object.entries(stack.state.tables)) {
      // Act
      const name = `${key.charAt(0).toUpperCase()}${key.slice(1)}TableThrottled`;
      const found = alarm(name);
      const { expression, read } = mathOf(found);

      // Assess
      expect(found).toMatchObject(ANY_IN_FIVE_MINUTES);
      const indexes = table.definition.indexes ?? [];
      expect(read).toHaveLength(2 + 2 * indexes.length);
      for (const stat of read) {
        expect(stat).toMatchObject({ Period: 300, Stat: "Sum" });
        expect(stat.Metric.Namespace).toBe("AWS/DynamoDB");
        expect(["ReadThrottleEvents", "WriteThrottleEvents"]).toContain(stat.Metric.MetricName);
        expect(stat.Metric.Dimensions).toContainEqual({
          Name: "TableName",
          Value: { Ref: logicalId(table) },
        });
      }
      expect(
        read.filter((stat) =>
          JSON.stringify(stat.Metric.Dimensions).includes(`"Value":"${openWorkIndex.name}"`),
        ),
      ).toHaveLength(indexes.includes(openWorkIndex) ? 2 : 0);
      expect(expression?.split(" + ")).toHaveLength(read.length);
    }
  });

  it("fire when the sweeper resumed or failed any work, which means something failed silently before", () => {
    // Act
    const found = alarm("SweeperRepairs");
    const { expression, read } = mathOf(found);

    // Assess
    expect(found).toMatchObject(ANY_IN_FIVE_MINUTES);
    expect(expression).toBe("FILL(resumed, 0) + FILL(failed, 0)");
    expect(read.map((stat) => stat.Metric.MetricName).sort()).toEqual([
      metrics.names.sweeperFailed,
      metrics.names.sweeperResumed,
    ]);
    for (const stat of read) {
      expect(stat).toMatchObject({ Period: 300, Stat: "Sum" });
      expect(stat.Metric.Dimensions).toEqual([{ Name: metrics.serviceDimension, Value: "sweep" }]);
    }
  });
});

describe("the sweeper on the dashboard", () => {
  it("shows what the sweeper looked at and repaired, and DynamoDB's throttling", () => {
    // Act
    const dashboard = Object.values(template.findResources("AWS::CloudWatch::Dashboard"))[0];
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);

    // Assess
    for (const shown of [
      "Sweeper (per 5 minutes)",
      metrics.names.sweeperExamined,
      metrics.names.sweeperResumed,
      metrics.names.sweeperFailed,
      "DynamoDB throttled requests",
      "WriteThrottleEvents",
      "ReadThrottleEvents",
    ]) {
      expect(body, shown).toContain(shown);
    }
  });

  it("is refused for a sweep function the monitoring does not watch", () => {
    // Act
    const create = () =>
      new Monitoring(stack, "Misconfigured4", {
        functions: [stack.apiFunction, stack.engineFunction, stack.deliverFunction],
        deliverer: stack.deliverFunction,
        lanes: [stack.workflowSteps, stack.webhookLane],
        retries: stack.retries,
        api: stack.api,
        failedDeliveriesThreshold: 10,
        laneAgeThreshold: Duration.minutes(5),
        sweepFunction: stack.sweepFunction,
      });

    // Assess
    expect(create).toThrow(/the sweep function must be one of the monitored functions/);
  });
});
