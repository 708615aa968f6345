import type { CfnElement } from "aws-cdk-lib";
import { Duration } from "aws-cdk-lib";
import { Key } from "aws-cdk-lib/aws-kms";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { EnrollmentStream } from "#infra/constructs/enrollment-stream";
import { StateTable } from "#infra/constructs/state-tables";
import { TeamFunction } from "#infra/constructs/team-function";
import { enrollmentStream, tables } from "#shared/contract";
import { scratchStack, synthesizeDefault } from "#test/synth";

const { stack, template } = synthesizeDefault();

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

describe("the records stream and the enroll function", () => {
  it("streams both images of the records table, and of no other table", () => {
    // Act
    const streamed = Object.entries(template.findResources("AWS::DynamoDB::Table"))
      .filter(([, table]) => table.Properties.StreamSpecification !== undefined)
      .map(([id, table]) => [id, table.Properties.StreamSpecification]);

    // Assess
    expect(streamed).toEqual([
      [logicalId(stack.state.tables.records), { StreamViewType: "NEW_AND_OLD_IMAGES" }],
    ]);
  });

  it("gives the workflows and enrollments tables the contract's indexes", () => {
    for (const key of ["workflows", "enrollments"] as const) {
      // Act
      const table =
        template.findResources("AWS::DynamoDB::Table")[logicalId(stack.state.tables[key])];
      const names = (table?.Properties.GlobalSecondaryIndexes ?? []).map(
        (index: { IndexName: string }) => index.IndexName,
      );

      // Assess
      expect(names).toEqual((tables[key].indexes ?? []).map((index) => index.name));
    }
  });

  it("feeds the enroll function in batches, with partial responses, bisecting, bounded retries and an on-failure queue", () => {
    // Act
    const mappings = Object.values(template.findResources("AWS::Lambda::EventSourceMapping"))
      .map((mapping) => mapping.Properties)
      .filter((properties) => properties.FunctionName.Ref === logicalId(stack.enrollFunction));

    // Assess
    expect(mappings).toHaveLength(1);
    expect(mappings[0]).toMatchObject({
      EventSourceArn: { "Fn::GetAtt": [logicalId(stack.state.tables.records), "StreamArn"] },
      StartingPosition: "TRIM_HORIZON",
      BatchSize: enrollmentStream.batchSize,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      MaximumRetryAttempts: enrollmentStream.retryAttempts,
      MaximumRecordAgeInSeconds: enrollmentStream.maxRecordAgeSeconds,
      DestinationConfig: {
        OnFailure: {
          Destination: {
            "Fn::GetAtt": [logicalId(stack.enrollments.onFailureQueue), "Arn"],
          },
        },
      },
      FilterCriteria: {
        Filters: [{ Pattern: JSON.stringify({ dynamodb: { Keys: { sk: { S: ["RECORD"] } } } }) }],
      },
    });
  });

  it("lets the enroll function read the records stream and send to its on-failure queue, and no other function", () => {
    // Prepare
    const statementsOf = (role: IConstruct) => {
      const roleId = logicalId(role);
      return Object.values(template.findResources("AWS::IAM::Policy"))
        .filter((policy) =>
          (policy.Properties.Roles as Array<{ Ref: string }>).some((ref) => ref.Ref === roleId),
        )
        .flatMap(
          (policy) =>
            policy.Properties.PolicyDocument.Statement as Array<{
              Action: string | string[];
              Resource: unknown;
            }>,
        );
    };
    const onStream = { "Fn::GetAtt": [logicalId(stack.state.tables.records), "StreamArn"] };
    const onFailureQueue = { "Fn::GetAtt": [logicalId(stack.enrollments.onFailureQueue), "Arn"] };
    const functions = [
      stack.apiFunction,
      stack.engineFunction,
      stack.deliverFunction,
      stack.enrollFunction,
    ];

    // Act
    const granted = functions.map((fn) => {
      const statements = statementsOf(fn.executionRole);
      const actionsOn = (resource: unknown) =>
        statements
          .filter((statement) =>
            JSON.stringify(statement.Resource).includes(JSON.stringify(resource)),
          )
          .flatMap((statement) =>
            Array.isArray(statement.Action) ? statement.Action : [statement.Action],
          )
          .sort();
      return [fn.serviceName, actionsOn(onStream), actionsOn(onFailureQueue)];
    });

    // Assess
    expect(granted).toEqual([
      ["api", [], []],
      ["engine", [], []],
      ["deliver", [], []],
      [
        "enroll",
        ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
        ["sqs:SendMessage"],
      ],
    ]);
  });

  it("alarms on the on-failure queue and on the function falling behind the stream", () => {
    // Act
    const names = Object.values(template.findResources("AWS::CloudWatch::Alarm")).map(
      (alarm) => alarm.Properties.AlarmName,
    );
    const iteratorAge = Object.values(template.findResources("AWS::CloudWatch::Alarm")).find(
      (alarm) => alarm.Properties.MetricName === "IteratorAge",
    );

    // Assess
    expect(names).toEqual(
      expect.arrayContaining([
        "WorkflowWebhooks-EnrollFailuresMessages",
        "WorkflowWebhooks-EnrollmentsBehind",
        "WorkflowWebhooks-EnrollFunctionErrors",
      ]),
    );
    expect(iteratorAge?.Properties.Dimensions).toEqual([
      { Name: "FunctionName", Value: { Ref: logicalId(stack.enrollFunction) } },
    ]);
  });

  it("shows triggered enrollments and the stream's iterator age on the dashboard", () => {
    // Act
    const body = JSON.stringify(
      Object.values(template.findResources("AWS::CloudWatch::Dashboard"))[0]?.Properties
        .DashboardBody,
    );

    // Assess
    expect(body).toContain("Triggered enrollments");
    expect(body).toContain("EnrollmentTriggered");
    expect(body).toContain("IteratorAge");
  });
});

describe("the enrollment stream construct", () => {
  function parts() {
    const scratch = scratchStack();
    const consumer = new TeamFunction(scratch, "Fn", {
      entry: "functions/enroll/handler.ts",
      serviceName: "enroll",
      description: "test",
      timeout: Duration.seconds(enrollmentStream.consumerTimeoutSeconds),
      logRetention: RetentionDays.ONE_DAY,
      logLevel: "INFO",
    });
    const records = new StateTable(scratch, "Records", {
      definition: tables.records,
      deletionProtection: false,
    });
    const apps = new StateTable(scratch, "Apps", {
      definition: tables.apps,
      deletionProtection: false,
    });
    return { scratch, consumer, records, apps, encryptionKey: new Key(scratch, "Key") };
  }

  it("refuses a table without a stream", () => {
    // Prepare
    const { scratch, consumer, apps, encryptionKey } = parts();

    // Act
    const build = () =>
      new EnrollmentStream(scratch, "Stream", {
        definition: { ...enrollmentStream, table: "apps" },
        table: apps,
        consumer,
        encryptionKey,
      });

    // Assess
    expect(build).toThrow(/the apps table has no stream/);
  });

  it("refuses unbounded retries", () => {
    // Prepare
    const { scratch, consumer, records, encryptionKey } = parts();

    // Act
    const build = () =>
      new EnrollmentStream(scratch, "Stream", {
        definition: { ...enrollmentStream, retryAttempts: -1 },
        table: records,
        consumer,
        encryptionKey,
      });

    // Assess
    expect(build).toThrow(/retryAttempts must be a whole number/);
  });
});
