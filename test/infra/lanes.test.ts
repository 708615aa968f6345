import { type CfnElement, Duration, type Stack } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { Lane } from "#infra/constructs/lanes";
import { TeamFunction } from "#infra/constructs/team-function";
import { type QueueDefinition, queues, VISIBILITY_TIMEOUT_FACTOR } from "#shared/contract";
import { scratchStack, synthesize, synthesizeDefault } from "#test/synth";

const { stack, template } = synthesizeDefault();

function logicalId(construct: IConstruct, inStack: Stack = stack): string {
  return inStack.getLogicalId(construct.node.defaultChild as CfnElement);
}

function lanes(): Lane[] {
  return [stack.workflowSteps, stack.webhookLane];
}

describe("every queue", () => {
  it("refuses requests that do not use SSL", () => {
    // Prepare
    const queueIds = Object.keys(template.findResources("AWS::SQS::Queue"));

    // Act
    const sslOnly = Object.values(template.findResources("AWS::SQS::QueuePolicy"))
      .filter((policy) =>
        (policy.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>).some(
          (statement) =>
            statement.Effect === "Deny" &&
            statement.Action === "sqs:*" &&
            JSON.stringify(statement.Condition) ===
              JSON.stringify({ Bool: { "aws:SecureTransport": "false" } }),
        ),
      )
      .flatMap((policy) =>
        (policy.Properties.Queues as Array<{ Ref: string }>).map((ref) => ref.Ref),
      );

    // Assess
    expect(queueIds.length).toBe(6);
    expect(sslOnly.sort()).toEqual(queueIds.sort());
  });

  it("is encrypted with a customer managed key that rotates", () => {
    // Act
    const queueResources = Object.values(template.findResources("AWS::SQS::Queue"));
    const keys = template.findResources("AWS::KMS::Key");

    // Assess
    for (const queue of queueResources) {
      const keyId = queue.Properties.KmsMasterKeyId?.["Fn::GetAtt"]?.[0];
      expect(keys[keyId]?.Properties.EnableKeyRotation).toBe(true);
    }
  });
});

describe.each([
  ["workflow steps", () => stack.workflowSteps, queues.workflowSteps],
  ["webhook", () => stack.webhookLane, queues.webhookLane],
] as Array<[string, () => Lane, QueueDefinition]>)("the %s lane", (_name, laneOf, definition) => {
  it("sends messages that keep failing to its dead-letter queue, which keeps them 14 days", () => {
    // Prepare
    const lane = laneOf();

    // Act
    const queue = template.findResources("AWS::SQS::Queue")[logicalId(lane.queue)];
    const dlq = template.findResources("AWS::SQS::Queue")[logicalId(lane.deadLetterQueue)];

    // Assess
    expect(queue?.Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { "Fn::GetAtt": [logicalId(lane.deadLetterQueue), "Arn"] },
      maxReceiveCount: definition.maxReceiveCount,
    });
    expect(dlq?.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it("hides a message for at least six times its consumer's timeout, and sets retention and size", () => {
    // Prepare
    const lane = laneOf();

    // Act
    const queue = template.findResources("AWS::SQS::Queue")[logicalId(lane.queue)];
    const consumer = template.findResources("AWS::Lambda::Function")[logicalId(lane.consumer)];

    // Assess
    expect(consumer?.Properties.Timeout).toBe(definition.consumerTimeoutSeconds);
    expect(queue?.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
      VISIBILITY_TIMEOUT_FACTOR * consumer?.Properties.Timeout,
    );
    expect(queue?.Properties.MessageRetentionPeriod).toBe(definition.messageRetentionSeconds);
    expect(queue?.Properties.MaximumMessageSize).toBe(definition.maximumMessageSizeBytes);
  });

  it("feeds its consumer in batches with partial failures and a concurrency cap within its reservation", () => {
    // Prepare
    const lane = laneOf();

    // Act
    const mappings = Object.values(
      template.findResources("AWS::Lambda::EventSourceMapping"),
    ).filter(
      (mapping) =>
        JSON.stringify(mapping.Properties.EventSourceArn) ===
        JSON.stringify({ "Fn::GetAtt": [logicalId(lane.queue), "Arn"] }),
    );
    const consumer = template.findResources("AWS::Lambda::Function")[logicalId(lane.consumer)];

    // Assess
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.Properties).toMatchObject({
      FunctionName: { Ref: logicalId(lane.consumer) },
      BatchSize: definition.batchSize,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: lane.maxConcurrency },
    });
    expect(consumer?.Properties.ReservedConcurrentExecutions).toBeGreaterThanOrEqual(
      lane.maxConcurrency,
    );
  });
});

describe("lane concurrency", () => {
  it("follows cdk.json: 10 for the webhook lane, 5 for workflow steps", () => {
    // Act
    const concurrency = lanes().map((lane) => [lane.definition.name, lane.maxConcurrency]);

    // Assess
    expect(concurrency).toEqual([
      ["workflow-steps", 5],
      ["webhook-lane", 10],
    ]);
  });

  it("follows the context options, for the mapping and the reservation alike", () => {
    // Act
    const overridden = synthesize({
      webhookLaneMaxConcurrency: "25",
      workflowStepsMaxConcurrency: 3,
    });

    // Assess
    overridden.template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: logicalId(overridden.stack.deliverFunction, overridden.stack) },
      ScalingConfig: { MaximumConcurrency: 25 },
    });
    overridden.template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Makes webhook delivery attempts from the webhook lane",
      ReservedConcurrentExecutions: 25,
    });
    overridden.template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: logicalId(overridden.stack.engineFunction, overridden.stack) },
      ScalingConfig: { MaximumConcurrency: 3 },
    });
  });
});

describe("a lane's constructor", () => {
  function consumer(overrides: { timeout?: Duration; reservedConcurrency?: number } = {}) {
    const scope = scratchStack();
    const fn = new TeamFunction(scope, "Consumer", {
      entry: "functions/deliver/handler.ts",
      serviceName: "deliver",
      description: "consumer",
      timeout: overrides.timeout ?? Duration.seconds(queues.webhookLane.consumerTimeoutSeconds),
      logRetention: RetentionDays.ONE_WEEK,
      logLevel: "INFO",
      reservedConcurrency: "reservedConcurrency" in overrides ? overrides.reservedConcurrency : 10,
    });
    return { scope, fn };
  }

  it("accepts a consumer that fits the lane", () => {
    // Prepare
    const { scope, fn } = consumer();

    // Act
    const lane = new Lane(scope, "Lane", {
      definition: queues.webhookLane,
      consumer: fn,
      maxConcurrency: 10,
    });

    // Assess
    expect(lane.maxConcurrency).toBe(10);
  });

  it("refuses a consumer whose timeout outlasts a sixth of the visibility timeout", () => {
    // Prepare
    const { scope, fn } = consumer({
      timeout: Duration.seconds(queues.webhookLane.consumerTimeoutSeconds + 1),
    });

    // Act
    const create = () =>
      new Lane(scope, "Lane", { definition: queues.webhookLane, consumer: fn, maxConcurrency: 10 });

    // Assess
    expect(create).toThrow(/at least 6 times the function timeout/);
  });

  it("refuses a consumer without reserved concurrency", () => {
    // Prepare
    const { scope, fn } = consumer({ reservedConcurrency: undefined });

    // Act
    const create = () =>
      new Lane(scope, "Lane", { definition: queues.webhookLane, consumer: fn, maxConcurrency: 10 });

    // Assess
    expect(create).toThrow(/needs reserved concurrency/);
  });

  it("refuses a reservation below the mapping's concurrency cap", () => {
    // Prepare
    const { scope, fn } = consumer({ reservedConcurrency: 5 });

    // Act
    const create = () =>
      new Lane(scope, "Lane", { definition: queues.webhookLane, consumer: fn, maxConcurrency: 10 });

    // Assess
    expect(create).toThrow(/reserved concurrency \(5\) is below maxConcurrency \(10\)/);
  });

  it("refuses a concurrency cap Lambda does not accept", () => {
    // Prepare
    const { scope, fn } = consumer();

    // Act
    const create = () =>
      new Lane(scope, "Lane", { definition: queues.webhookLane, consumer: fn, maxConcurrency: 1 });

    // Assess
    expect(create).toThrow(/maxConcurrency must be a whole number from 2 to 1000/);
  });

  it("refuses messages that would outlive their dead letters", () => {
    // Prepare
    const { scope, fn } = consumer();
    const definition = { ...queues.webhookLane, messageRetentionSeconds: 14 * 24 * 3600 };

    // Act
    const create = () => new Lane(scope, "Lane", { definition, consumer: fn, maxConcurrency: 10 });

    // Assess
    expect(create).toThrow(/shorter than the dead-letter queue's 14 days/);
  });
});
