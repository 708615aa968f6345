import { randomUUID } from "node:crypto";
import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  ValidationException,
} from "@aws-sdk/client-scheduler";
import { ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { localCredentials, localRegion, sleep } from "#infra/local/net";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";
import { retryScheduler } from "#shared/contract";
import { eventually } from "#test/eventually";

const TIME_SCALE = 0.01;

describe("local EventBridge Scheduler", () => {
  let runtime: LocalRuntime;
  let scheduler: SchedulerClient;
  let sqs: SQSClient;
  /** When each webhook-lane message body arrived, in epoch milliseconds. */
  const arrivals = new Map<string, number>();

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: "local-scheduler-",
      logLevel: "SILENT",
      timeScale: TIME_SCALE,
      handlers: {
        api: async () => ({ statusCode: 200, body: "{}" }),
        engine: async () => ({ batchItemFailures: [] }),
        deliver: async (event: SQSEvent): Promise<SQSBatchResponse> => {
          for (const record of event.Records) arrivals.set(record.body, Date.now());
          return { batchItemFailures: [] };
        },
      },
    });
    const config = { region: localRegion, credentials: localCredentials };
    scheduler = new SchedulerClient({
      ...config,
      endpoint: runtime.env.AWS_ENDPOINT_URL_SCHEDULER,
    });
    sqs = new SQSClient({ ...config, endpoint: runtime.env.AWS_ENDPOINT_URL_SQS });
  });

  afterAll(async () => {
    scheduler?.destroy();
    sqs?.destroy();
    await runtime?.stop();
  });

  /** A retry as the deliver handler schedules it: `delayMs` from now, rounded up to the second. */
  function retrySchedule(body: string, delayMs: number): CreateScheduleCommandInput {
    const at = new Date(Math.ceil((Date.now() + delayMs) / 1000) * 1000);
    return {
      Name: `retry-${randomUUID()}`,
      GroupName: runtime.env[retryScheduler.groupEnvVar],
      ScheduleExpression: `at(${at.toISOString().slice(0, 19)})`,
      ScheduleExpressionTimezone: "UTC",
      FlexibleTimeWindow: { Mode: "OFF" },
      ActionAfterCompletion: "DELETE",
      Target: {
        Arn: runtime.env.WEBHOOK_LANE_QUEUE_ARN,
        RoleArn: runtime.env[retryScheduler.roleArnEnvVar],
        Input: body,
      },
    };
  }

  it("sends the input to the target queue at the scaled time, then deletes the schedule", async () => {
    // Prepare
    const body = JSON.stringify({ deliveryId: randomUUID(), attempt: 2 });
    const input = retrySchedule(body, 60_000);
    const firedBefore = runtime.scheduler.firedCount();

    // Act
    const createdAt = Date.now();
    const { ScheduleArn } = await scheduler.send(new CreateScheduleCommand(input));
    const pending = runtime.scheduler.pendingSchedules().find((item) => item.name === input.Name);
    await eventually("the schedule to fire", () => expect(arrivals.has(body)).toBe(true), {
      timeoutMs: 5_000,
    });

    // Assess
    expect(ScheduleArn).toContain(`schedule/${input.GroupName}/${input.Name}`);
    const dueAt = Date.parse(`${input.ScheduleExpression?.slice(3, -1)}Z`);
    const expectedFire = createdAt + (dueAt - createdAt) * TIME_SCALE;
    expect(pending?.dueAt.getTime()).toBe(dueAt);
    expect(pending?.firesAt.getTime()).toBeGreaterThanOrEqual(expectedFire - 50);
    const arrivedAt = arrivals.get(body) as number;
    expect(arrivedAt).toBeGreaterThanOrEqual(expectedFire - 50);
    expect(arrivedAt).toBeLessThan(expectedFire + 1_000);
    expect(runtime.scheduler.firedCount()).toBe(firedBefore + 1);
    expect(runtime.scheduler.pendingSchedules().some((item) => item.name === input.Name)).toBe(
      false,
    );
    await expect(
      scheduler.send(new DeleteScheduleCommand({ Name: input.Name, GroupName: input.GroupName })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("fires at once when the at() time is already past", async () => {
    // Prepare
    const body = JSON.stringify({ deliveryId: randomUUID(), attempt: 3 });

    // Act
    const createdAt = Date.now();
    await scheduler.send(new CreateScheduleCommand(retrySchedule(body, -10_000)));
    await eventually("the schedule to fire", () => expect(arrivals.has(body)).toBe(true), {
      timeoutMs: 5_000,
    });

    // Assess
    expect((arrivals.get(body) as number) - createdAt).toBeLessThan(1_000);
  });

  it("refuses a second schedule of the same name in the group with ConflictException", async () => {
    // Prepare
    const input = retrySchedule("{}", 3_600_000);
    await scheduler.send(new CreateScheduleCommand(input));

    // Act
    const second = scheduler.send(new CreateScheduleCommand(input));

    // Assess
    await expect(second).rejects.toBeInstanceOf(ConflictException);
    await expect(second).rejects.toMatchObject({
      $metadata: { httpStatusCode: 409 },
      message: expect.stringContaining(input.Name as string),
    });
  });

  it("cancels a schedule with DeleteSchedule", async () => {
    // Prepare
    const body = JSON.stringify({ deliveryId: randomUUID(), attempt: 4 });
    const input = retrySchedule(body, 30_000);
    await scheduler.send(new CreateScheduleCommand(input));
    const firesAt = runtime.scheduler
      .pendingSchedules()
      .find((item) => item.name === input.Name)
      ?.firesAt.getTime();

    // Act
    await scheduler.send(
      new DeleteScheduleCommand({ Name: input.Name, GroupName: input.GroupName }),
    );
    await sleep(Math.max(0, (firesAt ?? Date.now()) - Date.now()) + 300);

    // Assess
    expect(firesAt).toBeDefined();
    expect(arrivals.has(body)).toBe(false);
    expect(runtime.scheduler.pendingSchedules().some((item) => item.name === input.Name)).toBe(
      false,
    );
  });

  it("answers ResourceNotFoundException for an unknown schedule or group", async () => {
    // Prepare
    const group = runtime.env[retryScheduler.groupEnvVar];

    // Act
    const deleting = scheduler.send(
      new DeleteScheduleCommand({ Name: "no-such", GroupName: group }),
    );
    const inUnknownGroup = scheduler.send(
      new CreateScheduleCommand({ ...retrySchedule("{}", 60_000), GroupName: "no-such-group" }),
    );

    // Assess
    await expect(deleting).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(inUnknownGroup).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("answers ValidationException for what one-time SQS schedules cannot be", async () => {
    // Prepare
    const recurring = { ...retrySchedule("{}", 60_000), ScheduleExpression: "rate(5 minutes)" };
    const tooLongName = { ...retrySchedule("{}", 60_000), Name: "n".repeat(65) };

    // Act
    const creatingRecurring = scheduler.send(new CreateScheduleCommand(recurring));
    const creatingTooLong = scheduler.send(new CreateScheduleCommand(tooLongName));

    // Assess
    await expect(creatingRecurring).rejects.toBeInstanceOf(ValidationException);
    await expect(creatingTooLong).rejects.toBeInstanceOf(ValidationException);
  });

  it("sends the input to the dead-letter queue when the target cannot be reached", async () => {
    // Prepare
    const body = JSON.stringify({ deliveryId: randomUUID(), attempt: 5 });
    const deadLetter = runtime.resources.queues.webhookLane.deadLetterArn;
    const input = retrySchedule(body, 0);
    const missingQueueArn = `${input.Target?.Arn?.split(":").slice(0, -1).join(":")}:no-such-queue`;
    const failedBefore = runtime.scheduler.failedCount();

    // Act
    await scheduler.send(
      new CreateScheduleCommand({
        ...input,
        Target: { ...input.Target, Arn: missingQueueArn, DeadLetterConfig: { Arn: deadLetter } },
      } as CreateScheduleCommandInput),
    );
    const received = await eventually(
      "the schedule's input on the dead-letter queue",
      async () => {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: runtime.resources.queues.webhookLane.deadLetterUrl,
            MessageAttributeNames: ["All"],
            WaitTimeSeconds: 0,
          }),
        );
        const [message] = Messages ?? [];
        if (!message) throw new Error("nothing dead-lettered yet");
        return {
          body: message.Body,
          errorCode: message.MessageAttributes?.ERROR_CODE?.StringValue,
        };
      },
      { timeoutMs: 5_000 },
    );

    // Assess
    expect(received.body).toBe(body);
    expect(received.errorCode).toBeTruthy();
    expect(runtime.scheduler.failedCount()).toBe(failedBefore + 1);
    expect(arrivals.has(body)).toBe(false);
  });
});
