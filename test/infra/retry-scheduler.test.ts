import { type CfnElement, Duration } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { Lane } from "#infra/constructs/lanes";
import { RetryScheduler } from "#infra/constructs/retry-scheduler";
import { TeamFunction } from "#infra/constructs/team-function";
import { type QueueDefinition, queues } from "#shared/contract";
import { scratchStack, synthesizeDefault } from "#test/synth";

const { stack, template } = synthesizeDefault();

describe("the retry scheduler", () => {
  it("has a schedule group named after the stack", () => {
    // Act
    const groups = Object.values(template.findResources("AWS::Scheduler::ScheduleGroup"));

    // Assess
    expect(groups).toEqual([
      expect.objectContaining({ Properties: { Name: "WorkflowWebhooks-webhook-retries" } }),
    ]);
  });

  it("has an encrypted dead-letter queue for schedules that could not fire, kept 14 days", () => {
    // Prepare
    const id = stack.getLogicalId(stack.retries.deadLetterQueue.node.defaultChild as CfnElement);
    const laneKey = stack.getLogicalId(
      stack.webhookLane.encryptionKey.node.defaultChild as CfnElement,
    );

    // Act
    const queue = template.findResources("AWS::SQS::Queue")[id];

    // Assess
    expect(queue?.Properties).toMatchObject({
      KmsMasterKeyId: { "Fn::GetAtt": [laneKey, "Arn"] },
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
  });

  describe("its constructor", () => {
    function webhookLane(definition: QueueDefinition = queues.webhookLane) {
      const scope = scratchStack();
      const consumer = new TeamFunction(scope, "Consumer", {
        entry: "functions/deliver/handler.ts",
        serviceName: "deliver",
        description: "consumer",
        timeout: Duration.seconds(definition.consumerTimeoutSeconds),
        logRetention: RetentionDays.ONE_WEEK,
        logLevel: "INFO",
        reservedConcurrency: 2,
      });
      const lane = new Lane(scope, "Lane", { definition, consumer, maxConcurrency: 2 });
      return { scope, lane };
    }

    it("refuses a lane whose definition names no ARN variable for the scheduling function", () => {
      // Prepare
      const { arnEnvVar: _omitted, ...withoutArn } = queues.webhookLane;
      const { scope, lane } = webhookLane(withoutArn);

      // Act
      const create = () => new RetryScheduler(scope, "Retries", { lane });

      // Assess
      expect(create).toThrow(/declares no arnEnvVar/);
    });

    it("refuses a group name EventBridge Scheduler would refuse", () => {
      // Prepare
      const { scope, lane } = webhookLane();

      // Act
      const create = () =>
        new RetryScheduler(scope, "Retries", { lane, groupName: "webhook retries" });

      // Assess
      expect(create).toThrow(/schedule group name "webhook retries"/);
    });
  });
});
