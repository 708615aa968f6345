import { randomUUID } from "node:crypto";
import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  type DeleteScheduleCommandInput,
  ResourceNotFoundException,
  SchedulerClient,
} from "@aws-sdk/client-scheduler";
import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SendMessageCommandInput,
} from "@aws-sdk/client-sqs";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { AppsTable } from "#adapters/apps-table";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { WebhookLaneQueue, WorkflowStepsQueue } from "#adapters/lane-queues";
import { RecordsTable } from "#adapters/records-table";
import { RetrySchedules } from "#adapters/retry-schedules";
import { createWebhookClient, type WebhookClient } from "#adapters/webhook-client";
import { WorkflowsTable } from "#adapters/workflows-table";
import { type DeliveryAttemptsDeps, makeDeliveryAttempt } from "#app/delivery-attempts";
import { enroll } from "#app/enrollments";
import { type SweeperDeps, type SweepRun, sweepOpenWork } from "#app/sweeper";
import { runWorkflowStep, type WorkflowStepsDeps } from "#app/workflow-steps";
import { type Enrollment, newEnrollment } from "#domain/enrollment";
import { DEFAULT_HOST_ADMISSION, HostAdmission } from "#domain/host-admission";
import { parseDeliveryAttemptMessage, parseWorkflowStepMessage } from "#domain/messages";
import { OpenWorkDeadlines } from "#domain/open-work";
import { applyPropertyChanges } from "#domain/record";
import type { WorkflowAction } from "#domain/workflow";
import { type QueueKey, queues, visibilityTimeoutSeconds } from "#shared/contract";
import {
  makeTestCertificate,
  type ReceivedRequest,
  type ReceiverAnswer,
  startReceiver,
  type TestCertificate,
  type TestReceiver,
} from "#test/https-receiver";
import type { InjectedErrors } from "#test/injected-errors";
import { type LocalAws, startLocalAws } from "#test/local-aws";
import { storedContact } from "#test/stored-work";

/** The time every part of the system reads (epoch ms); tests move it. */
export interface Clock {
  now: number;
}

/** A message taken off the emulator, waiting to be handled when the clock reaches it. */
interface HeldMessage {
  readonly queue: QueueKey;
  readonly body: string;
  visibleAt: number;
  /** Receives so far, as SQS's ApproximateReceiveCount. */
  receives: number;
}

/** A retry schedule as the stand-in keeps it. */
interface HeldSchedule {
  readonly name: string;
  readonly fireAt: number;
  readonly input: string;
}

/** A message that failed on every receive, as the lane's dead-letter queue would hold it. */
export interface DeadLetter {
  readonly queue: QueueKey;
  readonly body: string;
}

/** The message attribute carrying a send's delay, on the controlled clock. */
const VISIBLE_AT = "clockedVisibleAt";

/**
 * The system's app code (workflow steps, delivery attempts, the sweeper) on DynamoDB Local, the
 * SQS emulator and a real HTTPS receiver, with one controlled clock instead of time passing:
 *
 * - Every message sent goes to the emulator, whose messages are then taken off and handed to the
 *   lane's app function when the clock reaches them (a send's delay counts on the clock). A
 *   message whose handling throws comes back after its queue's visibility timeout, and after
 *   `maxReceiveCount` receives it is dead-lettered, as the lanes' event source mappings and SQS
 *   do on AWS.
 * - EventBridge Scheduler is a stand-in on a mocked client (there is no emulator to drive by a
 *   clock): CreateSchedule keeps a schedule, which puts its input on the webhook lane when the
 *   clock reaches its time, and DeleteSchedule drops it.
 */
export interface ClockedSystem {
  readonly clock: Clock;
  readonly aws: LocalAws;
  readonly receiver: TestReceiver;
  /** The receiver's certificate, which the delivery client trusts. */
  readonly certificate: TestCertificate;
  readonly tables: {
    readonly apps: AppsTable;
    readonly records: RecordsTable;
    readonly enrollments: EnrollmentsTable;
    readonly deliveries: DeliveriesTable;
  };
  readonly steps: WorkflowStepsDeps;
  readonly deliver: DeliveryAttemptsDeps;
  readonly sweeper: SweeperDeps;
  /** Messages dead-lettered so far. */
  readonly deadLetters: DeadLetter[];
  /** The lane whose message is being handled, while one is. */
  currentLane(): QueueKey | undefined;
  /** Retry schedules waiting to fire. */
  pendingSchedules(): number;
  /** Loses every retry schedule waiting to fire, as a deleted group would; returns how many. */
  loseSchedules(): number;
  /** Makes the next `times` CreateSchedule calls fail with `make()`, counted. */
  failSchedules(make: () => Error, times: number): InjectedErrors;
  /** How the receiver answers a request; 200 unless set. */
  answer: (request: ReceivedRequest, previousOnPath: number) => ReceiverAnswer;
  /** A webhook action that POSTs the whole record to `path` on the receiver. */
  webhook(path: string): WorkflowAction;
  /** A contact, and an enrollment of it into a workflow of `actions`, whose first step is sent. */
  enroll(actions: WorkflowAction[]): Promise<Enrollment>;
  /**
   * A contact, a stored workflow of `actions`, and the contact enrolled into it as the API does
   * (`POST /workflows/{id}/enrollments`, which starts a first webhook itself); the enrollment's id.
   */
  enrollThroughApi(actions: WorkflowAction[]): Promise<string>;
  /** Handles messages and fires schedules, moving the clock, until none is left. */
  settle(): Promise<void>;
  /**
   * Handles the next message, firing the schedules due before it, and moves the clock to it;
   * false when nothing was left.
   */
  settleOne(): Promise<boolean>;
  /** One sweeper run at the clock's time. */
  sweep(): Promise<SweepRun>;
  /** Every enrollment and delivery that has not ended. */
  openWork(): Promise<{
    enrollments: Record<string, unknown>[];
    deliveries: Record<string, unknown>[];
  }>;
  stop(): Promise<void>;
}

/** Messages a settle handles at most; far more than any test's workflows need. */
const MAX_MESSAGES_PER_SETTLE = 2_000;

export async function startClockedSystem(): Promise<ClockedSystem> {
  const clock: Clock = { now: Date.now() };
  const now = () => clock.now;
  const aws = await startLocalAws();
  const certificate: TestCertificate = makeTestCertificate();
  const system = {} as { answer: ClockedSystem["answer"] };
  system.answer = () => ({ status: 200, body: "ok" });
  const receiver = await startReceiver(certificate, (request, previous) =>
    system.answer(request, previous),
  );
  const webhookClient: WebhookClient = createWebhookClient({
    allowPrivateTargets: true,
    ca: certificate.cert,
  });
  const deadlines = new OpenWorkDeadlines(1);
  const names = aws.resources.tables;
  const tables = {
    apps: new AppsTable(aws.documents, names.apps),
    records: new RecordsTable(aws.documents, names.records),
    enrollments: new EnrollmentsTable(aws.documents, names.enrollments, deadlines),
    deliveries: new DeliveriesTable(aws.documents, names.deliveries, deadlines),
  };
  const workflowSteps = new WorkflowStepsQueue(aws.sqs, aws.resources.queues.workflowSteps.url);
  const webhookLane = new WebhookLaneQueue(aws.sqs, aws.resources.queues.webhookLane.url);
  const workflows = new WorkflowsTable(aws.documents, names.workflows);

  // The retry scheduler's stand-in.
  const schedules = new Map<string, HeldSchedule>();
  let scheduleFaults: { make: () => Error; left: number; injected: number } | undefined;
  const scheduler = mockClient(SchedulerClient);
  scheduler.on(CreateScheduleCommand).callsFake((input: CreateScheduleCommandInput) => {
    if (scheduleFaults && scheduleFaults.left > 0) {
      scheduleFaults.left -= 1;
      scheduleFaults.injected += 1;
      throw scheduleFaults.make();
    }
    const name = String(input.Name);
    if (schedules.has(name)) {
      throw new ConflictException({
        message: `Schedule ${name} already exists.`,
        Message: `Schedule ${name} already exists.`,
        $metadata: {},
      });
    }
    const at = /^at\((.*)\)$/.exec(String(input.ScheduleExpression))?.[1];
    schedules.set(name, {
      name,
      fireAt: Date.parse(`${at}Z`),
      input: String(input.Target?.Input),
    });
    return { ScheduleArn: `arn:aws:scheduler:us-east-1:123456789012:schedule/retries/${name}` };
  });
  scheduler.on(DeleteScheduleCommand).callsFake((input: DeleteScheduleCommandInput) => {
    if (!schedules.delete(String(input.Name))) {
      throw new ResourceNotFoundException({
        message: "no such schedule",
        Message: "no such schedule",
        $metadata: {},
      });
    }
    return {};
  });

  const steps: WorkflowStepsDeps = {
    ...tables,
    workflowSteps,
    webhookLane,
    now,
    timeScale: 1,
    portalId: 1,
    stalledAfterMs: queues.workflowSteps.consumerTimeoutSeconds * 1000,
  };
  const deliver: DeliveryAttemptsDeps = {
    ...tables,
    workflowSteps,
    webhookLane,
    retrySchedules: new RetrySchedules(new SchedulerClient({ region: "us-east-1" }), {
      groupName: "webhook-retries",
      roleArn: "arn:aws:iam::123456789012:role/fire",
      laneQueueArn: aws.resources.queues.webhookLane.arn,
      deadLetterArn: undefined,
    }),
    webhookClient,
    admission: new HostAdmission(DEFAULT_HOST_ADMISSION, now),
    now,
    random: () => 0,
    leaseMs: (queues.webhookLane.consumerTimeoutSeconds + 30) * 1000,
  };
  const sweeper: SweeperDeps = { ...tables, workflowSteps, webhookLane, now, deadlines };

  // A send's delay becomes a time on the clock, carried by the message.
  aws.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "SendMessageCommand") return next(args);
      sent += 1;
      const input = args.input as SendMessageCommandInput;
      const visibleAt = clock.now + (input.DelaySeconds ?? 0) * 1000;
      return next({
        ...args,
        input: {
          ...input,
          DelaySeconds: 0,
          MessageAttributes: {
            ...input.MessageAttributes,
            [VISIBLE_AT]: { DataType: "Number", StringValue: String(visibleAt) },
          },
        },
      });
    },
    { step: "initialize", name: "clockedDelays" },
  );

  const held: HeldMessage[] = [];
  /** Messages sent so far, and how many of them a pull had a chance to see. */
  let sent = 0;
  let pulled = 0;
  const deadLetters: DeadLetter[] = [];
  let current: QueueKey | undefined;
  const handlers: Record<QueueKey, (body: string) => Promise<unknown>> = {
    workflowSteps: (body) => runWorkflowStep(steps, parseWorkflowStepMessage(body)),
    webhookLane: (body) => makeDeliveryAttempt(deliver, parseDeliveryAttemptMessage(body)),
  };

  const pull = async () => {
    // Nothing reaches the emulator but through the middleware above: no send, nothing to pull.
    if (pulled === sent) return;
    pulled = sent;
    for (const queue of Object.keys(queues) as QueueKey[]) {
      const url = aws.resources.queues[queue].url;
      for (;;) {
        const { Messages } = await aws.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            MessageAttributeNames: ["All"],
          }),
        );
        if (!Messages?.length) break;
        for (const message of Messages) {
          const at = Number(message.MessageAttributes?.[VISIBLE_AT]?.StringValue ?? clock.now);
          held.push({ queue, body: message.Body ?? "", visibleAt: at, receives: 0 });
          await aws.sqs.send(
            new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }),
          );
        }
      }
    }
  };

  /** Handles the soonest message, or fires the soonest schedule; false when neither is left. */
  const handleNext = async (): Promise<"message" | "schedule" | false> => {
    await pull();
    const message = held.reduce<HeldMessage | undefined>(
      (soonest, each) => (!soonest || each.visibleAt < soonest.visibleAt ? each : soonest),
      undefined,
    );
    const schedule = [...schedules.values()].reduce<HeldSchedule | undefined>(
      (soonest, each) => (!soonest || each.fireAt < soonest.fireAt ? each : soonest),
      undefined,
    );
    if (schedule && (!message || schedule.fireAt <= message.visibleAt)) {
      // The schedule fires: its input reaches the lane, and it deletes itself.
      clock.now = Math.max(clock.now, schedule.fireAt);
      schedules.delete(schedule.name);
      held.push({ queue: "webhookLane", body: schedule.input, visibleAt: clock.now, receives: 0 });
      return "schedule";
    }
    if (!message) return false;
    held.splice(held.indexOf(message), 1);
    clock.now = Math.max(clock.now, message.visibleAt);
    message.receives += 1;
    current = message.queue;
    try {
      await handlers[message.queue](message.body);
    } catch {
      const definition = queues[message.queue];
      if (message.receives >= definition.maxReceiveCount) {
        deadLetters.push({ queue: message.queue, body: message.body });
      } else {
        message.visibleAt = clock.now + visibilityTimeoutSeconds(definition) * 1000;
        held.push(message);
      }
    } finally {
      current = undefined;
    }
    return "message";
  };

  const settle = async () => {
    for (let handled = 0; handled < MAX_MESSAGES_PER_SETTLE; handled++) {
      if (!(await handleNext())) return;
    }
    throw new Error(`the lanes did not settle within ${MAX_MESSAGES_PER_SETTLE} messages`);
  };

  const settleOne = async () => {
    for (;;) {
      const handled = await handleNext();
      if (handled !== "schedule") return handled === "message";
    }
  };

  const scan = async (table: string, sk: string) => {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await aws.documents.send(
        new ScanCommand({ TableName: table, ExclusiveStartKey: startKey, ConsistentRead: true }),
      );
      items.push(...(page.Items ?? []).filter((item) => item.sk === sk));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  };

  return {
    clock,
    aws,
    receiver,
    certificate,
    tables,
    steps,
    deliver,
    sweeper,
    deadLetters,
    currentLane: () => current,
    pendingSchedules: () => schedules.size,
    loseSchedules() {
      const lost = schedules.size;
      schedules.clear();
      return lost;
    },
    failSchedules(make, times) {
      const faults = { make, left: times, injected: 0 };
      scheduleFaults = faults;
      return {
        count: () => faults.injected,
        remove: () => {
          if (scheduleFaults === faults) scheduleFaults = undefined;
        },
      };
    },
    get answer() {
      return system.answer;
    },
    set answer(answer) {
      system.answer = answer;
    },
    async enroll(actions) {
      const objectId = randomUUID();
      const key = { objectType: "contacts" as const, objectId };
      await tables.records.update(
        key,
        (current) =>
          applyPropertyChanges(
            current,
            key,
            { email: "ada@example.com" },
            { sourceType: "API", sourceId: null, sourceLabel: null, timestamp: clock.now },
          ).record,
      );
      const enrollment = newEnrollment({
        enrollmentId: randomUUID(),
        workflowId: randomUUID(),
        objectType: "contacts",
        objectId,
        definition: actions.map((action) => ({ ...action, id: randomUUID() })),
        now: clock.now,
      });
      await tables.enrollments.create(enrollment);
      await workflowSteps.send({
        type: "advance",
        enrollmentId: enrollment.enrollmentId,
        actionIndex: 0,
      });
      return enrollment;
    },
    webhook: (path) => ({
      type: "webhook",
      url: receiver.url(path),
      method: "POST",
      body: { type: "all" },
    }),
    async enrollThroughApi(actions) {
      const objectId = await storedContact(tables.records, { email: "ada@example.com" });
      const at = new Date(clock.now).toISOString();
      const workflow = {
        id: randomUUID(),
        name: "enrolled through the API",
        objectType: "contacts" as const,
        actions: actions.map((action) => ({ ...action, id: randomUUID() })),
        createdAt: at,
        updatedAt: at,
      };
      await workflows.create(workflow);
      const { enrollmentId } = await enroll(
        { ...tables, workflows, workflowSteps, webhookLane, now, newId: randomUUID, portalId: 1 },
        workflow.id,
        { objectId },
      );
      return enrollmentId;
    },
    settle,
    settleOne,
    sweep: () => sweepOpenWork(sweeper),
    async openWork() {
      const enrollments = await scan(names.enrollments, "ENROLLMENT");
      const deliveries = await scan(names.deliveries, "DELIVERY");
      return {
        enrollments: enrollments.filter((item) =>
          ["active", "waiting"].includes(String(item.status)),
        ),
        deliveries: deliveries.filter((item) =>
          ["pending", "retrying"].includes(String(item.status)),
        ),
      };
    },
    async stop() {
      scheduler.restore();
      await webhookClient.close();
      await receiver.close();
      certificate.remove();
      await aws.stop();
    },
  };
}
