import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  type SchedulerClient,
} from "@aws-sdk/client-scheduler";
import { retryScheduleName } from "#domain/delivery";
import type { DeliveryAttemptMessage } from "#domain/messages";
import type { RetryScheduleGroup, RetrySchedulerSettings } from "#shared/config";
import { retryScheduler } from "#shared/contract";

/**
 * The retry schedules in EventBridge Scheduler: one one-time `at(...)` schedule per retry, in the
 * retry group, whose target sends the attempt's message to the webhook lane and which deletes
 * itself after it fired. A function that only cancels retries knows the group alone
 * (`RetrySchedules<RetryScheduleGroup>`), and cannot schedule: that takes the full settings.
 */
export class RetrySchedules<Settings extends RetryScheduleGroup = RetrySchedulerSettings> {
  constructor(
    private readonly scheduler: SchedulerClient,
    private readonly settings: Settings,
  ) {}

  /**
   * Schedules `message` to reach the webhook lane at `fireAt`. Scheduling the same attempt twice
   * is harmless: the name is derived from the delivery and attempt, and a duplicate is a conflict.
   */
  async schedule(
    this: RetrySchedules<RetrySchedulerSettings>,
    message: DeliveryAttemptMessage,
    fireAt: Date,
  ): Promise<string> {
    const name = retryScheduleName(message.deliveryId, message.attempt);
    try {
      await this.scheduler.send(
        new CreateScheduleCommand({
          Name: name,
          GroupName: this.settings.groupName,
          ScheduleExpression: atExpression(fireAt),
          ScheduleExpressionTimezone: "UTC",
          FlexibleTimeWindow: { Mode: "OFF" },
          ActionAfterCompletion: "DELETE",
          Target: {
            Arn: this.settings.laneQueueArn,
            RoleArn: this.settings.roleArn,
            Input: JSON.stringify(message),
            RetryPolicy: {
              MaximumRetryAttempts: 10,
              MaximumEventAgeInSeconds: retryScheduler.targetMaximumEventAgeSeconds,
            },
            ...(this.settings.deadLetterArn
              ? { DeadLetterConfig: { Arn: this.settings.deadLetterArn } }
              : {}),
          },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConflictException)) throw error;
    }
    return name;
  }

  /** Deletes the schedule of an attempt that no longer needs firing; absent is fine. */
  async cancel(message: DeliveryAttemptMessage): Promise<void> {
    try {
      await this.scheduler.send(
        new DeleteScheduleCommand({
          Name: retryScheduleName(message.deliveryId, message.attempt),
          GroupName: this.settings.groupName,
        }),
      );
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }
}

/** `at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the second so it never fires early. */
function atExpression(fireAt: Date): string {
  const seconds = new Date(Math.ceil(fireAt.getTime() / 1000) * 1000);
  return `at(${seconds.toISOString().slice(0, 19)})`;
}
