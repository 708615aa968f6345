import type { CfnElement } from "aws-cdk-lib";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import type { TeamFunction } from "#infra/constructs/team-function";
import {
  ENROLLMENTS_BY_WORKFLOW,
  ENROLLMENTS_BY_WORKFLOW_RECORD,
  indexes,
  queues,
  retryScheduler,
  type TableKey,
  tables,
  WORKFLOWS_BY_TRIGGER_TYPE,
} from "#shared/contract";
import { synthesizeDefault } from "#test/synth";

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const READ_ACTIONS = [
  "dynamodb:BatchGetItem",
  "dynamodb:ConditionCheckItem",
  "dynamodb:DescribeTable",
  "dynamodb:GetItem",
  "dynamodb:GetRecords",
  "dynamodb:GetShardIterator",
  "dynamodb:Query",
  "dynamodb:Scan",
];
/** What the enroll function's event source mapping needs on the records table's stream. */
const STREAM_READ_ACTIONS = [
  "dynamodb:DescribeStream",
  "dynamodb:GetRecords",
  "dynamodb:GetShardIterator",
];
const WRITE_ACTIONS = [
  "dynamodb:BatchWriteItem",
  "dynamodb:DeleteItem",
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
];

const { stack, template } = synthesizeDefault();

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** Every statement of every policy attached to the role. */
function statementsOf(role: IConstruct): Statement[] {
  const roleId = logicalId(role);
  return Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((policy) =>
      (policy.Properties.Roles as Array<{ Ref: string }>).some((ref) => ref.Ref === roleId),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

function resourcesOf(statement: Statement): unknown[] {
  return Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
}

/**
 * The actions `role` is allowed on the resource with the given logical id (any ARN form); for a
 * table, on its items, or with `index`, on that index of it.
 */
function actionsOn(role: IConstruct, resource: IConstruct, index?: string): string[] {
  const id = logicalId(resource);
  const names = (arn: unknown) => {
    const text = JSON.stringify(arn);
    if (!text.includes(`"${id}"`)) return false;
    return index === undefined ? !text.includes("/index/") : text.includes(`"/index/${index}"`);
  };
  return statementsOf(role)
    .filter((statement) => resourcesOf(statement).some(names))
    .flatMap(actionsOf)
    .sort();
}

function environmentOf(fn: TeamFunction): Record<string, unknown> {
  const resource = template.findResources("AWS::Lambda::Function")[logicalId(fn)];
  return resource?.Properties.Environment.Variables ?? {};
}

const tableKeys = Object.keys(tables) as TableKey[];

describe("table access", () => {
  const expected: Record<
    "api" | "engine" | "deliver" | "enroll",
    Partial<Record<TableKey, "read" | "readWrite" | "readAndStream">>
  > = {
    api: {
      apps: "readWrite",
      workflows: "readWrite",
      records: "readWrite",
      enrollments: "readWrite",
      deliveries: "readWrite",
    },
    engine: { records: "readWrite", enrollments: "readWrite", deliveries: "readWrite" },
    deliver: {
      apps: "read",
      records: "readWrite",
      deliveries: "readWrite",
      enrollments: "readWrite",
    },
    enroll: {
      workflows: "read",
      records: "readAndStream",
      enrollments: "readWrite",
      deliveries: "readWrite",
    },
  };

  for (const service of ["api", "engine", "deliver", "enroll"] as const) {
    it(`gives the ${service} function exactly its tables, and tells it only of those`, () => {
      // Prepare
      const fn = {
        api: stack.apiFunction,
        engine: stack.engineFunction,
        deliver: stack.deliverFunction,
        enroll: stack.enrollFunction,
      }[service];
      const environment = environmentOf(fn);

      for (const key of tableKeys) {
        // Act
        const table = stack.state.tables[key];
        const actions = actionsOn(fn.executionRole, table);
        const access = expected[service][key];

        // Assess
        const wanted =
          access === undefined
            ? []
            : access === "read"
              ? READ_ACTIONS
              : access === "readAndStream"
                ? [...READ_ACTIONS, ...STREAM_READ_ACTIONS].sort()
                : [...READ_ACTIONS, ...WRITE_ACTIONS].sort();
        expect(actions, `${service} on ${key}`).toEqual(wanted);
        expect(Object.hasOwn(environment, tables[key].envVar), `${service} told of ${key}`).toBe(
          access !== undefined,
        );
      }
    });
  }

  it("lets the api and engine functions query the indexes they list through, by name, and no one else any", () => {
    // Prepare
    const { deliveries, workflows, enrollments } = stack.state.tables;
    const byWorkflow = indexes.deliveriesByWorkflow.name;
    const byCreation = indexes.workflowsByCreation.name;
    const enrollmentsByWorkflow = ENROLLMENTS_BY_WORKFLOW.name;
    const enrollmentsByRecord = ENROLLMENTS_BY_WORKFLOW_RECORD.name;
    const byTrigger = WORKFLOWS_BY_TRIGGER_TYPE.name;
    const expected = [
      [stack.apiFunction, deliveries, byWorkflow, ["dynamodb:Query"]],
      [stack.apiFunction, workflows, byCreation, ["dynamodb:Query"]],
      [stack.apiFunction, enrollments, enrollmentsByWorkflow, ["dynamodb:Query"]],
      [stack.apiFunction, enrollments, enrollmentsByRecord, ["dynamodb:Query"]],
      [stack.apiFunction, workflows, byTrigger, []],
      [stack.enrollFunction, workflows, byTrigger, ["dynamodb:Query"]],
      [stack.enrollFunction, workflows, byCreation, []],
      [stack.enrollFunction, enrollments, enrollmentsByWorkflow, []],
      [stack.engineFunction, deliveries, byWorkflow, ["dynamodb:Query"]],
      [stack.engineFunction, workflows, byCreation, []],
      [stack.deliverFunction, deliveries, byWorkflow, []],
      [stack.deliverFunction, workflows, byCreation, []],
      [stack.deliverFunction, enrollments, enrollmentsByWorkflow, []],
    ] as const;
    const policies = JSON.stringify(template.findResources("AWS::IAM::Policy"));

    for (const [fn, table, index, actions] of expected) {
      // Act
      const granted = actionsOn(fn.executionRole, table, index);

      // Assess
      expect(granted, `${fn.serviceName} on ${index}`).toEqual(actions);
    }
    expect(policies).not.toContain("/index/*");
  });

  it("lets the api and engine functions read the deliveries a keys-only index names, in batches", () => {
    // Prepare
    const { deliveries } = stack.state.tables;

    for (const fn of [stack.apiFunction, stack.engineFunction]) {
      // Act
      const onItems = actionsOn(fn.executionRole, deliveries);

      // Assess
      expect(onItems, fn.serviceName).toContain("dynamodb:BatchGetItem");
      expect(onItems, fn.serviceName).toContain("dynamodb:Query");
    }
  });

  it("keeps the deliver function from workflows, and from writing apps", () => {
    // Prepare
    const role = stack.deliverFunction.executionRole;
    const { workflows, apps } = stack.state.tables;

    // Act
    const forbidden = actionsOn(role, workflows);
    const onApps = actionsOn(role, apps);

    // Assess
    expect(forbidden).toEqual([]);
    expect(onApps.filter((action) => WRITE_ACTIONS.includes(action))).toEqual([]);
  });
});

describe("lane access", () => {
  it("lets every function send to both lanes, with the lane's key and the queue URL variable", () => {
    for (const fn of [
      stack.apiFunction,
      stack.engineFunction,
      stack.deliverFunction,
      stack.enrollFunction,
    ]) {
      for (const lane of [stack.workflowSteps, stack.webhookLane]) {
        // Act
        const onQueue = actionsOn(fn.executionRole, lane.queue);
        const onKey = actionsOn(fn.executionRole, lane.encryptionKey);

        // Assess
        expect(onQueue).toContain("sqs:SendMessage");
        expect(onKey).toEqual(expect.arrayContaining(["kms:GenerateDataKey", "kms:Decrypt"]));
        expect(onKey.every((action) => !action.includes("*"))).toBe(true);
        expect(environmentOf(fn)[lane.definition.urlEnvVar]).toEqual({
          Ref: logicalId(lane.queue),
        });
      }
    }
  });

  it("lets only a lane's consumer receive and delete its messages", () => {
    const consuming = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"];
    for (const lane of [stack.workflowSteps, stack.webhookLane]) {
      for (const fn of [
        stack.apiFunction,
        stack.engineFunction,
        stack.deliverFunction,
        stack.enrollFunction,
      ]) {
        // Act
        const actions = actionsOn(fn.executionRole, lane.queue);

        // Assess
        const isConsumer = fn === lane.consumer;
        for (const action of consuming) {
          expect(
            actions.includes(action),
            `${fn.serviceName} ${action} on ${lane.definition.name}`,
          ).toBe(isConsumer);
        }
      }
    }
  });
});

describe("retry scheduling", () => {
  it("lets the deliver function create and delete schedules only in the retry group", () => {
    // Prepare
    const statements = statementsOf(stack.deliverFunction.executionRole);

    // Act
    const scheduling = statements.filter((statement) =>
      actionsOf(statement).some((action) => action.startsWith("scheduler:")),
    );

    // Assess
    expect(scheduling).toHaveLength(1);
    expect(actionsOf(scheduling[0] as Statement).sort()).toEqual([
      "scheduler:CreateSchedule",
      "scheduler:DeleteSchedule",
    ]);
    expect(JSON.stringify(scheduling[0]?.Resource)).toContain(
      `:schedule/${stack.retries.groupName}/*`,
    );
  });

  it("lets the deliver function pass only the scheduler's role, and only to EventBridge Scheduler", () => {
    // Prepare
    const statements = statementsOf(stack.deliverFunction.executionRole);

    // Act
    const passRole = statements.filter((statement) =>
      actionsOf(statement).includes("iam:PassRole"),
    );

    // Assess
    expect(passRole).toEqual([
      {
        Effect: "Allow",
        Action: "iam:PassRole",
        Resource: { "Fn::GetAtt": [logicalId(stack.retries.executionRole), "Arn"] },
        Condition: { StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } },
      },
    ]);
  });

  it("lets the api function only delete schedules of the retry group, and the engine none", () => {
    // Act
    const scheduling = (fn: TeamFunction) =>
      statementsOf(fn.executionRole).filter((statement) =>
        actionsOf(statement).some(
          (action) => action.startsWith("scheduler:") || action.startsWith("iam:"),
        ),
      );
    const api = scheduling(stack.apiFunction);
    const engine = scheduling(stack.engineFunction);

    // Assess
    expect(api).toHaveLength(1);
    expect(actionsOf(api[0] as Statement)).toEqual(["scheduler:DeleteSchedule"]);
    expect(JSON.stringify(api[0]?.Resource)).toContain(`:schedule/${stack.retries.groupName}/*`);
    expect(engine).toEqual([]);
  });

  it("lets the scheduler's role send to the webhook lane and the scheduler DLQ, and nothing else", () => {
    // Prepare
    const { executionRole, deadLetterQueue } = stack.retries;
    const lane = stack.webhookLane;

    // Act
    const statements = statementsOf(executionRole);
    const resources = statements.map((statement) => JSON.stringify(statement.Resource)).join(" ");

    // Assess
    expect(statements.flatMap(actionsOf).sort()).toEqual([
      "kms:Decrypt",
      "kms:GenerateDataKey",
      "sqs:SendMessage",
    ]);
    expect(actionsOn(executionRole, lane.queue)).toEqual(["sqs:SendMessage"]);
    expect(actionsOn(executionRole, deadLetterQueue)).toEqual(["sqs:SendMessage"]);
    expect(actionsOn(executionRole, lane.encryptionKey)).toEqual([
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]);
    expect(resources).not.toContain(logicalId(stack.workflowSteps.queue));
    expect(resources).not.toContain('"*"');
  });

  it("lets only EventBridge Scheduler of this account assume the scheduler's role", () => {
    // Act
    const role = template.findResources("AWS::IAM::Role")[logicalId(stack.retries.executionRole)];

    // Assess
    expect(role?.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: "sts:AssumeRole",
        Effect: "Allow",
        Principal: { Service: "scheduler.amazonaws.com" },
        Condition: { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } },
      },
    ]);
  });

  it("tells only the deliver function where and how to schedule retries, and the api function the group", () => {
    // Prepare
    const names = [
      retryScheduler.groupEnvVar,
      retryScheduler.roleArnEnvVar,
      retryScheduler.deadLetterArnEnvVar,
      queues.webhookLane.arnEnvVar,
    ];

    // Act
    const deliver = environmentOf(stack.deliverFunction);
    const api = environmentOf(stack.apiFunction);
    const engine = environmentOf(stack.engineFunction);

    // Assess
    expect(deliver[retryScheduler.groupEnvVar]).toBe(stack.retries.groupName);
    expect(deliver[retryScheduler.roleArnEnvVar]).toEqual({
      "Fn::GetAtt": [logicalId(stack.retries.executionRole), "Arn"],
    });
    expect(deliver[retryScheduler.deadLetterArnEnvVar]).toEqual({
      "Fn::GetAtt": [logicalId(stack.retries.deadLetterQueue), "Arn"],
    });
    expect(deliver[queues.webhookLane.arnEnvVar]).toEqual({
      "Fn::GetAtt": [logicalId(stack.webhookLane.queue), "Arn"],
    });
    expect(names.filter((name) => Object.hasOwn(api, name))).toEqual([retryScheduler.groupEnvVar]);
    expect(api[retryScheduler.groupEnvVar]).toBe(stack.retries.groupName);
    expect(names.filter((name) => Object.hasOwn(engine, name))).toEqual([]);
  });
});

describe("every role", () => {
  it("allows no wildcard action and no wildcard resource except X-Ray's", () => {
    // Act
    const statements = Object.values(template.findResources("AWS::IAM::Policy")).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
    );

    // Assess
    for (const statement of statements) {
      expect(actionsOf(statement).filter((action) => action.includes("*"))).toEqual([]);
      if (statement.Resource === "*") {
        // The enroll function's stream mapping also needs ListStreams, which takes no resource.
        expect(
          actionsOf(statement)
            .filter((action) => action !== "dynamodb:ListStreams")
            .sort(),
        ).toEqual(["xray:PutTelemetryRecords", "xray:PutTraceSegments"]);
      }
    }
  });

  it("lets each function write only to its own log group", () => {
    for (const fn of [
      stack.apiFunction,
      stack.engineFunction,
      stack.deliverFunction,
      stack.enrollFunction,
    ]) {
      // Act
      const logging = statementsOf(fn.executionRole).filter((statement) =>
        actionsOf(statement).some((action) => action.startsWith("logs:")),
      );

      // Assess
      expect(logging).toEqual([
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: { "Fn::GetAtt": [logicalId(fn.logGroup), "Arn"] },
        },
      ]);
    }
  });
});
