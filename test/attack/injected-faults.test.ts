import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliveryIdFor } from "#domain/delivery";
import type { Enrollment } from "#domain/enrollment";
import type { WorkflowAction } from "#domain/workflow";
import type { QueueKey } from "#shared/contract";
import { type ClockedSystem, startClockedSystem } from "#test/clocked-system";
import { type InjectedErrors, injectErrors, serviceUnavailable } from "#test/injected-errors";
import { reportFigures } from "#test/reliability-figures";

/**
 * An unlucky operator's day: DynamoDB, SQS or EventBridge Scheduler fails five times in a row at
 * one point of the engine or the deliver path, which is more than a lane's retries outlast (its
 * message is dead-lettered after five receives). Whatever was lost, once the sweeper has run no
 * delivery is left pending or retrying and no enrollment active or waiting: every one ends as it
 * would have without the fault. The app code runs on DynamoDB Local, the SQS emulator and a real
 * receiver, on a controlled clock (test/support/clocked-system.ts), and the sweeper's app function
 * is run as its schedule would run it.
 */

/** Faults in a row at each point: one more than a lane message's receives before the DLQ. */
const FAULTS_IN_A_ROW = 5;
/**
 * Between two sweeper runs of a scenario: longer than any overdue time (a lost retry is overdue
 * at most 96 minutes after it should have fired; a resumed item is looked at again within 35).
 */
const BETWEEN_SWEEPS_MS = 3 * 3600_000;
/** Sweeper runs a scenario may take; one is enough for every point below. */
const MAX_SWEEPS = 4;

/** The ids of the scenario's work, for points that must hit only it. */
interface Work {
  readonly enrollmentId: string;
  readonly deliveryId: string;
}

type Input = Record<string, unknown>;

interface InjectionPoint {
  /** Which lane's consumer makes the call, and what the call does. */
  readonly lane: QueueKey;
  readonly what: string;
  readonly service: "DynamoDB" | "SQS" | "Scheduler";
  /** The SDK command that fails (DynamoDB and SQS). */
  readonly command?: string;
  readonly when?: (input: Input, work: Work) => boolean;
  /**
   * Whether the lane's own retries cannot get past the fault: the work stays where it is, with no
   * message or schedule that will move it, until the sweeper comes.
   */
  readonly stuckUntilSwept: boolean;
}

/** A key attribute of a DynamoDB request, whether the document client marshalled it yet or not. */
function keyOf(input: Input, attribute: "pk" | "sk"): string | undefined {
  const key = (input.Key ?? input.Item) as Record<string, unknown> | undefined;
  const value = key?.[attribute];
  return typeof value === "string" ? value : (value as { S?: string } | undefined)?.S;
}

const expression = (input: Input) => String(input.UpdateExpression ?? "");
const toQueue = (input: Input, name: string) => String(input.QueueUrl).endsWith(name);
const body = (input: Input) => JSON.parse(String(input.MessageBody)) as Record<string, unknown>;

const POINTS: readonly InjectionPoint[] = [
  {
    lane: "workflowSteps",
    what: "reads the enrollment",
    service: "DynamoDB",
    command: "GetItemCommand",
    when: (input, work) => keyOf(input, "pk") === work.enrollmentId,
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "writes the record of a setProperty step",
    service: "DynamoDB",
    command: "PutItemCommand",
    when: (input) => keyOf(input, "sk") === "RECORD",
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "finishes the setProperty action",
    service: "DynamoDB",
    command: "UpdateItemCommand",
    when: (input, work) =>
      keyOf(input, "pk") === work.enrollmentId &&
      expression(input).includes("currentIndex = :next"),
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "sends the next step",
    service: "SQS",
    command: "SendMessageCommand",
    when: (input) => toQueue(input, "workflow-steps") && body(input).type === "advance",
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "sends a delay's first hop",
    service: "SQS",
    command: "SendMessageCommand",
    when: (input) => toQueue(input, "workflow-steps") && body(input).type === "resume",
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "marks the delay started (its hop already sent)",
    service: "DynamoDB",
    command: "UpdateItemCommand",
    when: (input, work) =>
      keyOf(input, "pk") === work.enrollmentId &&
      expression(input).includes("#status = :waiting") &&
      !expression(input).includes("deliveryId"),
    stuckUntilSwept: false,
  },
  {
    lane: "workflowSteps",
    what: "stores the delivery of the webhook action",
    service: "DynamoDB",
    command: "PutItemCommand",
    when: (input, work) =>
      keyOf(input, "pk") === work.deliveryId && keyOf(input, "sk") === "DELIVERY",
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "hands attempt 1 to the webhook lane",
    service: "SQS",
    command: "SendMessageCommand",
    when: (input) => toQueue(input, "webhook-lane"),
    stuckUntilSwept: true,
  },
  {
    lane: "workflowSteps",
    what: "marks the webhook action started (attempt 1 already sent)",
    service: "DynamoDB",
    command: "UpdateItemCommand",
    when: (input, work) =>
      keyOf(input, "pk") === work.enrollmentId && expression(input).includes("deliveryId"),
    stuckUntilSwept: false,
  },
  {
    lane: "webhookLane",
    what: "reads the delivery",
    service: "DynamoDB",
    command: "QueryCommand",
    when: (input, work) =>
      (input.ExpressionAttributeValues as Input | undefined)?.[":pk"] === work.deliveryId,
    stuckUntilSwept: true,
  },
  {
    lane: "webhookLane",
    what: "takes the attempt's lease",
    service: "DynamoDB",
    command: "UpdateItemCommand",
    when: (input) => expression(input).includes("leaseUntil = :until"),
    stuckUntilSwept: true,
  },
  {
    lane: "webhookLane",
    what: "logs the attempt it sent",
    service: "DynamoDB",
    command: "PutItemCommand",
    when: (input) => keyOf(input, "sk")?.startsWith("ATTEMPT#") ?? false,
    stuckUntilSwept: true,
  },
  {
    lane: "webhookLane",
    what: "records the attempt's outcome",
    service: "DynamoDB",
    command: "UpdateItemCommand",
    when: (input) => expression(input).includes("attemptCount = :attempt"),
    stuckUntilSwept: true,
  },
  {
    lane: "webhookLane",
    what: "schedules the retry after a 503",
    service: "Scheduler",
    stuckUntilSwept: false,
  },
  {
    lane: "webhookLane",
    what: "reads the enrollment once the delivery ended",
    service: "DynamoDB",
    command: "GetItemCommand",
    when: (input, work) => keyOf(input, "pk") === work.enrollmentId,
    stuckUntilSwept: true,
  },
  {
    lane: "webhookLane",
    what: "moves the enrollment past the webhook action",
    service: "DynamoDB",
    command: "UpdateItemCommand",
    when: (input, work) =>
      keyOf(input, "pk") === work.enrollmentId &&
      expression(input).includes("currentIndex = :next"),
    stuckUntilSwept: true,
  },
  {
    lane: "webhookLane",
    what: "sends the step after the webhook action",
    service: "SQS",
    command: "SendMessageCommand",
    when: (input) => toQueue(input, "workflow-steps"),
    stuckUntilSwept: true,
  },
];

/**
 * Points of the API's start of a first webhook action (the enrollment is stored with that action
 * running, then the API creates the delivery and hands attempt 1 to the webhook lane): the fault
 * hits the API, then the step it sends instead, which finishes the start.
 */
interface ApiInjectionPoint {
  readonly what: string;
  readonly service: "DynamoDB" | "SQS";
  readonly command: string;
  readonly when: (input: Input) => boolean;
  /** Faults in a row, when more than `FAULTS_IN_A_ROW`. */
  readonly faults?: number;
  readonly stuckUntilSwept: boolean;
}

const API_POINTS: readonly ApiInjectionPoint[] = [
  {
    what: "stores the delivery's body",
    service: "DynamoDB",
    command: "PutItemCommand",
    when: (input) => keyOf(input, "sk") === "DELIVERY#BODY",
    // The API's fault and four receives of its step: the fifth receive creates the delivery.
    stuckUntilSwept: false,
  },
  {
    what: "stores the delivery",
    service: "DynamoDB",
    command: "PutItemCommand",
    when: (input) => keyOf(input, "sk") === "DELIVERY",
    stuckUntilSwept: false,
  },
  {
    what: "hands attempt 1 to the webhook lane",
    service: "SQS",
    command: "SendMessageCommand",
    when: (input) => toQueue(input, "webhook-lane"),
    stuckUntilSwept: false,
  },
  {
    what: "stores the delivery, and so does every receive of the step it sends instead",
    service: "DynamoDB",
    command: "PutItemCommand",
    when: (input) => keyOf(input, "sk") === "DELIVERY",
    // The step is dead-lettered: the enrollment waits at a running webhook with no delivery
    // until the sweeper has the step sent again.
    faults: FAULTS_IN_A_ROW + 1,
    stuckUntilSwept: true,
  },
];

let system: ClockedSystem;
const figures = { injected: 0, survived: 0, stuck: 0, stuckBeforeSweep: 0, duplicates: 0 };

beforeAll(async () => {
  system = await startClockedSystem();
  // Attempt 1 of every delivery fails with a 503, so each scenario has a retry to schedule.
  system.answer = (request) =>
    request.headers["x-delivery-attempt"] === "1" ? { status: 503 } : { status: 200 };
});

afterAll(async () => {
  reportFigures({
    suite: `AWS faults: 5 in a row (6 at one) at each of ${POINTS.length + API_POINTS.length} points of the API's start of a first webhook, the engine and the deliver path`,
    inputs: POINTS.length + API_POINTS.length,
    faultsInjected: figures.injected,
    faultsSurvived: figures.survived,
    stuck: figures.stuck,
    duplicates: figures.duplicates,
    notes: `${figures.stuckBeforeSweep} points left work stuck until the sweeper resumed it; duplicates are attempts re-sent after a fault between sending and recording them (at least once)`,
  });
  await system?.stop();
});

/** Arms the point's faults for this scenario's work, on the consumer of its lane only. */
function arm(point: InjectionPoint, work: Work): InjectedErrors {
  const make = serviceUnavailable(point.service);
  if (point.service === "Scheduler") return system.failSchedules(make, FAULTS_IN_A_ROW);
  const client = point.service === "DynamoDB" ? system.aws.documents : system.aws.sqs;
  return injectErrors(
    client,
    point.command ?? "",
    make,
    FAULTS_IN_A_ROW,
    (input) => system.currentLane() === point.lane && (point.when?.(input, work) ?? true),
  );
}

/**
 * Lets the system settle, then sweeps, a few minutes apart on its clock, while `work` is still
 * open (at most `MAX_SWEEPS` times); what stood open before the first sweep.
 */
async function settleAndSweep(work: Work): Promise<string[]> {
  await system.settle();
  const stuckBeforeSweep = await openWorkOf(work);
  let sweeps = 0;
  while ((await openWorkOf(work)).length > 0 && sweeps < MAX_SWEEPS) {
    system.clock.now += BETWEEN_SWEEPS_MS;
    await system.sweep();
    await system.settle();
    sweeps += 1;
  }
  return stuckBeforeSweep;
}

/** This scenario's work that has not ended. */
async function openWorkOf(work: Work): Promise<string[]> {
  const enrollment = await system.tables.enrollments.get(work.enrollmentId);
  const delivery = await system.tables.deliveries.readState(work.deliveryId);
  return [
    ...(enrollment && ["active", "waiting"].includes(enrollment.status) ? ["enrollment"] : []),
    ...(delivery && ["pending", "retrying"].includes(delivery.delivery.status) ? ["delivery"] : []),
  ];
}

const workflow = (): WorkflowAction[] => [
  { type: "setProperty", property: "stage", value: "lead" },
  { type: "delay", seconds: 60 },
  { type: "webhook", url: system.receiver.url("/faults"), method: "POST", body: { type: "all" } },
  { type: "setProperty", property: "synced", value: "yes" },
];

describe("five faults in a row at one point of the engine or the deliver path", () => {
  it.each(
    POINTS.map(
      (point) =>
        [`${point.service}, when the ${point.lane} consumer ${point.what}`, point] as const,
    ),
  )("%s: nothing is left stuck once the sweeper has run", async (_name, point) => {
    // Prepare
    const enrollment: Enrollment = await system.enroll(workflow());
    const work: Work = {
      enrollmentId: enrollment.enrollmentId,
      deliveryId: deliveryIdFor(enrollment.enrollmentId, enrollment.actions[2]?.actionId ?? ""),
    };
    const faults = arm(point, work);

    // Act
    const stuckBeforeSweep = await settleAndSweep(work);
    const injected = faults.count();
    faults.remove();

    // Assess
    const stuck = await openWorkOf(work);
    const stored = await system.tables.enrollments.get(work.enrollmentId);
    const delivery = await system.tables.deliveries.get(work.deliveryId);
    const record = await system.tables.records.get({
      objectType: "contacts",
      objectId: enrollment.objectId,
    });
    const attempts = system.receiver.requests
      .filter((request) => request.headers["x-delivery-id"] === work.deliveryId)
      .map((request) => Number(request.headers["x-delivery-attempt"]));
    figures.injected += injected;
    figures.stuck += stuck.length;
    figures.stuckBeforeSweep += stuckBeforeSweep.length > 0 ? 1 : 0;
    figures.duplicates += attempts.length - new Set(attempts).size;
    expect(injected).toBeGreaterThan(0);
    expect(stuckBeforeSweep.length > 0, "stuck before the sweeper ran").toBe(point.stuckUntilSwept);
    expect(stuck).toEqual([]);
    expect(stored?.status).toBe("completed");
    expect(stored?.actions.map((action) => action.status)).toEqual([
      "succeeded",
      "succeeded",
      "succeeded",
      "succeeded",
    ]);
    expect(delivery?.status).toBe("succeeded");
    expect(record?.properties.stage?.[0]?.value).toBe("lead");
    expect(record?.properties.synced?.[0]?.value).toBe("yes");
    expect([...new Set(attempts)]).toEqual([1, 2]);
    figures.survived += injected;
  });
});

describe("faults in a row at one point of the API's start of a first webhook action", () => {
  it.each(
    API_POINTS.map((point) => [`${point.service}, when the API ${point.what}`, point] as const),
  )("%s: nothing is left stuck once the sweeper has run", async (_name, point) => {
    // Prepare
    const make = serviceUnavailable(point.service);
    const client = point.service === "DynamoDB" ? system.aws.documents : system.aws.sqs;
    const times = point.faults ?? FAULTS_IN_A_ROW;
    const faults = injectErrors(client, point.command, make, times, point.when);

    // Act
    const enrollmentId = await system.enrollThroughApi([
      {
        type: "webhook",
        url: system.receiver.url("/api-faults"),
        method: "POST",
        body: { type: "all" },
      },
      { type: "setProperty", property: "synced", value: "yes" },
    ]);
    const started = await system.tables.enrollments.get(enrollmentId);
    const work: Work = {
      enrollmentId,
      deliveryId: deliveryIdFor(enrollmentId, started?.actions[0]?.actionId ?? ""),
    };
    const stuckBeforeSweep = await settleAndSweep(work);
    const injected = faults.count();
    faults.remove();

    // Assess
    const stuck = await openWorkOf(work);
    const stored = await system.tables.enrollments.get(enrollmentId);
    const delivery = await system.tables.deliveries.get(work.deliveryId);
    const attempts = system.receiver.requests
      .filter((request) => request.headers["x-delivery-id"] === work.deliveryId)
      .map((request) => Number(request.headers["x-delivery-attempt"]));
    figures.injected += injected;
    figures.stuck += stuck.length;
    figures.stuckBeforeSweep += stuckBeforeSweep.length > 0 ? 1 : 0;
    figures.duplicates += attempts.length - new Set(attempts).size;
    expect(injected).toBe(times);
    expect(stuckBeforeSweep.length > 0, "stuck before the sweeper ran").toBe(point.stuckUntilSwept);
    expect(stuck).toEqual([]);
    expect(stored?.status).toBe("completed");
    expect(stored?.actions.map((action) => action.status)).toEqual(["succeeded", "succeeded"]);
    expect(delivery?.status).toBe("succeeded");
    expect([...new Set(attempts)]).toEqual([1, 2]);
    figures.survived += injected;
  });
});
