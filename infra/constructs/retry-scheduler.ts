import { Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { Grant, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { ScheduleGroup } from "aws-cdk-lib/aws-scheduler";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { Lane } from "#infra/constructs/lanes";
import type { TeamFunction } from "#infra/constructs/team-function";
import { retryScheduler } from "#shared/contract";

const GROUP_NAME = /^[0-9a-zA-Z._-]{1,64}$/;

export interface RetrySchedulerProps {
  /** Where every retry goes: the webhook lane. Its definition must name an ARN variable. */
  readonly lane: Lane;
  /** @default `<stack name>-webhook-retries`, unique per stack within an account and region */
  readonly groupName?: string;
}

/**
 * EventBridge Scheduler for retries: a schedule group of one-time schedules, the role those
 * schedules fire with (it can only send to the webhook lane and to the scheduler's DLQ), and that
 * DLQ for schedules that could not fire.
 */
export class RetryScheduler extends Construct {
  readonly group: ScheduleGroup;
  /** The role every retry schedule fires with. */
  readonly executionRole: Role;
  /** Retries EventBridge Scheduler could not put on the lane. */
  readonly deadLetterQueue: Queue;
  readonly lane: Lane;
  readonly groupName: string;
  private readonly laneArnEnvVar: string;

  constructor(scope: Construct, id: string, props: RetrySchedulerProps) {
    const stack = Stack.of(scope);
    const groupName = props.groupName ?? `${stack.stackName}-${retryScheduler.defaultGroupName}`;
    if (!GROUP_NAME.test(groupName)) {
      throw new Error(
        `${id}: schedule group name "${groupName}" must be 1 to 64 letters, digits, '.', '_' or '-'`,
      );
    }
    const laneArnEnvVar = props.lane.definition.arnEnvVar;
    if (laneArnEnvVar === undefined) {
      throw new Error(
        `${id}: the ${props.lane.definition.name} lane declares no arnEnvVar, so the scheduling function could not name it as the target`,
      );
    }
    super(scope, id);
    this.laneArnEnvVar = laneArnEnvVar;
    this.lane = props.lane;
    this.groupName = groupName;

    this.group = new ScheduleGroup(this, "Group", {
      scheduleGroupName: groupName,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Dead-letter events describe lane messages, so the lane's key protects them too.
    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.lane.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is the dead-letter queue of the retry schedules (a schedule's DeadLetterConfig, which cdk-nag cannot see); a DLQ needs no DLQ of its own.",
    });

    this.executionRole = new Role(this, "ExecutionRole", {
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
      }),
      description: "Fires webhook retries: may only send to the webhook lane and the retry DLQ",
    });
    props.lane.grantSendMessages(this.executionRole);
    Grant.addToPrincipal({
      grantee: this.executionRole,
      actions: ["sqs:SendMessage"],
      resourceArns: [this.deadLetterQueue.queueArn],
    });
  }

  /**
   * Lets `fn` create and delete schedules in this group, firing with this role only, and
   * tells it the group, role, DLQ and target lane.
   */
  allowScheduling(fn: TeamFunction): void {
    const schedulesInGroup = this.schedulesInGroup();
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
        resources: [schedulesInGroup],
      }),
    );
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ["iam:PassRole"],
        resources: [this.executionRole.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } },
      }),
    );
    this.acknowledgeScheduleWildcard(fn);
    fn.addEnvironment(retryScheduler.groupEnvVar, this.group.scheduleGroupName);
    // The name is known at synthesis, so nothing else would make the group exist before the
    // function first schedules into it.
    fn.node.addDependency(this.group);
    fn.addEnvironment(retryScheduler.roleArnEnvVar, this.executionRole.roleArn);
    fn.addEnvironment(retryScheduler.deadLetterArnEnvVar, this.deadLetterQueue.queueArn);
    fn.addEnvironment(this.laneArnEnvVar, this.lane.queue.queueArn);
  }

  /**
   * Lets `fn` delete schedules in this group, and nothing more (no creating, no passing the
   * role): what cancelling a retry takes. Tells it the group only.
   */
  allowCancelling(fn: TeamFunction): void {
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ["scheduler:DeleteSchedule"],
        resources: [this.schedulesInGroup()],
      }),
    );
    this.acknowledgeScheduleWildcard(fn);
    fn.addEnvironment(retryScheduler.groupEnvVar, this.group.scheduleGroupName);
  }

  /** Every schedule of the group: retry schedules are named at run time. */
  private schedulesInGroup(): string {
    return Stack.of(this).formatArn({
      service: "scheduler",
      resource: "schedule",
      resourceName: `${this.groupName}/*`,
    });
  }

  private acknowledgeScheduleWildcard(fn: TeamFunction): void {
    Validations.of(fn.rolePolicy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.groupName}/*]`,
      reason:
        "Retry schedules are named per delivery attempt at run time; the wildcard is confined to this stack's retry group.",
    });
  }
}
