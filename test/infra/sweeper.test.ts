import { type CfnElement, Duration } from "aws-cdk-lib";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { Sweeper } from "#infra/constructs/sweeper";
import { openWorkIndex, sweeper, tables } from "#shared/contract";
import { scratchStack, synthesizeDefault } from "#test/synth";

const { stack, template } = synthesizeDefault();

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

function statementsOf(role: IConstruct): Statement[] {
  const roleId = logicalId(role);
  return Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((policy) =>
      (policy.Properties.Roles as Array<{ Ref: string }>).some((ref) => ref.Ref === roleId),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

const actionsOf = (statement: Statement) =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

describe("the sweeper's schedule", () => {
  it("runs the sweep function every five minutes, and never retries a run the next one replaces", () => {
    // Prepare
    const fn = { "Fn::GetAtt": [logicalId(stack.sweepFunction), "Arn"] };

    // Act
    const rules = Object.values(template.findResources("AWS::Events::Rule"));
    const asyncConfig = Object.values(
      template.findResources("AWS::Lambda::EventInvokeConfig"),
    ).filter(
      (config) =>
        JSON.stringify(config.Properties.FunctionName) ===
        JSON.stringify({ Ref: logicalId(stack.sweepFunction) }),
    );

    // Assess
    expect(rules).toHaveLength(1);
    expect(rules[0]?.Properties).toMatchObject({
      ScheduleExpression: `rate(${sweeper.intervalSeconds / 60} minutes)`,
      State: "ENABLED",
      Targets: [
        expect.objectContaining({
          Arn: fn,
          RetryPolicy: {
            MaximumEventAgeInSeconds: sweeper.intervalSeconds,
            MaximumRetryAttempts: 2,
          },
        }),
      ],
    });
    expect(asyncConfig.map((config) => config.Properties)).toEqual([
      expect.objectContaining({
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: sweeper.intervalSeconds,
      }),
    ]);
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      FunctionName: fn,
      Principal: "events.amazonaws.com",
      SourceArn: { "Fn::GetAtt": [logicalId(stack.sweeper.rule), "Arn"] },
    });
  });

  it("gives the function a minute, well within the interval", () => {
    // Act
    const resource =
      template.findResources("AWS::Lambda::Function")[logicalId(stack.sweepFunction)];

    // Assess
    expect(resource?.Properties.Timeout).toBe(sweeper.timeoutSeconds);
    expect(sweeper.timeoutSeconds).toBeLessThan(sweeper.intervalSeconds);
  });

  it("refuses an interval EventBridge cannot keep, or a timeout that outlasts it", () => {
    // Prepare
    const fn = stack.sweepFunction;

    // Act
    const tooOften = () =>
      new Sweeper(scratchStack(), "S", { sweepFunction: fn, interval: Duration.seconds(30) });
    const tooLong = () =>
      new Sweeper(scratchStack(), "S", { sweepFunction: fn, interval: Duration.minutes(1) });

    // Assess
    expect(tooOften).toThrow(/the interval must be from a minute/);
    expect(tooLong).toThrow(/timeout must be shorter than the interval/);
  });
});

describe("the sweep function's permissions", () => {
  it("reads and writes the records, enrollments and deliveries tables, queries the open-work index of the last two by name, and touches no other table", () => {
    // Prepare
    const statements = statementsOf(stack.sweepFunction.executionRole);
    const environment = template.findResources("AWS::Lambda::Function")[
      logicalId(stack.sweepFunction)
    ]?.Properties.Environment.Variables as Record<string, unknown>;

    for (const key of Object.keys(tables) as Array<keyof typeof tables>) {
      // Act
      const id = logicalId(stack.state.tables[key]);
      const onTable = statements.filter((statement) =>
        JSON.stringify(statement.Resource).includes(`"${id}"`),
      );

      // Assess
      // The records table takes the outputs of a webhook whose action the sweeper finishes.
      const used = key === "enrollments" || key === "deliveries" || key === "records";
      expect(onTable.length > 0, key).toBe(used);
      expect(Object.hasOwn(environment, tables[key].envVar), key).toBe(used);
      if (used) {
        expect(onTable.flatMap(actionsOf)).toEqual(
          expect.arrayContaining(["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"]),
        );
      }
      const onIndexes = onTable.filter((statement) =>
        JSON.stringify(statement.Resource).includes("/index/"),
      );
      expect(JSON.stringify(onIndexes), key).not.toContain("/index/*");
      expect(onIndexes.length > 0, key).toBe(key === "enrollments" || key === "deliveries");
      for (const statement of onIndexes) {
        expect(JSON.stringify(statement.Resource)).toContain(`/index/${openWorkIndex.name}`);
        expect(actionsOf(statement)).toEqual(["dynamodb:Query"]);
      }
    }
  });

  it("sends to both lanes, consumes neither, and may not touch retry schedules", () => {
    // Act
    const statements = statementsOf(stack.sweepFunction.executionRole);
    const actions = statements.flatMap(actionsOf);

    // Assess
    for (const lane of [stack.workflowSteps, stack.webhookLane]) {
      const onQueue = statements
        .filter((statement) => JSON.stringify(statement.Resource).includes(logicalId(lane.queue)))
        .flatMap(actionsOf);
      expect(onQueue).toEqual(["sqs:SendMessage"]);
    }
    expect(actions.filter((action) => /^(scheduler|iam):/.test(action))).toEqual([]);
  });
});

describe("the open-work index", () => {
  it("is on the enrollments and deliveries tables, keys only, and on no other", () => {
    for (const [key, table] of Object.entries(stack.state.tables)) {
      // Act
      const resource = template.findResources("AWS::DynamoDB::Table")[logicalId(table)];
      const indexes = resource?.Properties.GlobalSecondaryIndexes ?? [];

      // Assess
      if (key === "enrollments" || key === "deliveries") {
        expect(indexes).toContainEqual({
          IndexName: openWorkIndex.name,
          KeySchema: [
            { AttributeName: "sweepShard", KeyType: "HASH" },
            { AttributeName: "sweepAt", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "KEYS_ONLY" },
        });
        expect(resource?.Properties.AttributeDefinitions).toEqual(
          expect.arrayContaining([
            { AttributeName: "sweepShard", AttributeType: "N" },
            { AttributeName: "sweepAt", AttributeType: "N" },
          ]),
        );
      } else {
        expect(
          indexes.map((index: { IndexName: string }) => index.IndexName),
          key,
        ).not.toContain(openWorkIndex.name);
      }
    }
  });
});
