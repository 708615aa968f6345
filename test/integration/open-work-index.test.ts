import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deliveryIdFor } from "#domain/delivery";
import {
  ATTEMPT_STALL_MS,
  RETRY_FIRE_SLACK_MS,
  STEP_STALL_MS,
  SWEEP_SHARDS,
  sweepShardOf,
} from "#domain/open-work";
import type { WorkflowAction } from "#domain/workflow";
import { openWorkIndex } from "#shared/contract";
import { type ClockedSystem, startClockedSystem } from "#test/clocked-system";

/**
 * The open-work index holds exactly the enrollments and deliveries that have not ended, each due
 * when it should have moved by, and its upkeep rides on the writes the code makes anyway: no
 * request is added, only the index's own write units, which DynamoDB Local reports.
 */
let system: ClockedSystem;

/** Per table: write requests, and the open-work index's write units DynamoDB reported. */
type Tally = Record<string, { requests: number; indexUnits: number }>;
let tally: Tally = {};

beforeAll(async () => {
  system = await startClockedSystem();
  const tableOf = new Map(
    Object.entries(system.aws.resources.tables).map(([key, name]) => [name, key]),
  );
  system.aws.documents.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      const table = tableOf.get(String(input.TableName)) ?? "other";
      const write = ["PutItemCommand", "UpdateItemCommand", "DeleteItemCommand"].includes(
        String(context.commandName),
      );
      const result = await next({
        ...args,
        input: { ...input, ReturnConsumedCapacity: "INDEXES" },
      });
      const consumed = (result.output as Record<string, unknown>).ConsumedCapacity as
        | {
            CapacityUnits?: number;
            GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
          }
        | undefined;
      const counted = tally[table] ?? { requests: 0, indexUnits: 0 };
      tally[table] = counted;
      if (write) {
        counted.requests += 1;
        counted.indexUnits +=
          consumed?.GlobalSecondaryIndexes?.[openWorkIndex.name]?.CapacityUnits ?? 0;
      }
      return result;
    },
    { step: "initialize", name: "indexUnits" },
  );
});

afterAll(async () => {
  await system?.stop();
});

beforeEach(async () => {
  await system.settle();
  system.answer = () => ({ status: 200, body: "ok" });
  tally = {};
});

const webhook = (path: string): WorkflowAction => system.webhook(path);

/** The raw item's place in the open-work index. */
async function placeOf(table: "enrollments" | "deliveries", pk: string) {
  const { Item } = await system.aws.documents.send(
    new GetCommand({
      TableName: system.aws.resources.tables[table],
      Key: { pk, sk: table === "enrollments" ? "ENROLLMENT" : "DELIVERY" },
    }),
  );
  return { sweepShard: Item?.sweepShard, sweepAt: Item?.sweepAt };
}

describe("the open-work index", () => {
  it("holds an enrollment while it runs, due when its current action should have moved by", async () => {
    // Prepare
    const enrollment = await system.enroll([
      { type: "setProperty", property: "stage", value: "lead" },
      { type: "delay", seconds: 60 },
      { type: "setProperty", property: "owner", value: "ada" },
    ]);
    const id = enrollment.enrollmentId;
    const shard = sweepShardOf(id);
    const started = system.clock.now;
    const places = [await placeOf("enrollments", id)];

    // Act: the steps one by one, reading the item's place after each
    const next = async () => {
      await system.settleOne();
      places.push(await placeOf("enrollments", id));
    };
    await next(); // setProperty ran: the delay is current
    const delayStartedAt = system.clock.now;
    await next(); // the delay started
    await next(); // the delay ended: the last setProperty is current
    const resumedAt = system.clock.now;
    await next(); // completed

    // Assess
    expect(places).toEqual([
      { sweepShard: shard, sweepAt: started + STEP_STALL_MS },
      { sweepShard: shard, sweepAt: started + STEP_STALL_MS },
      { sweepShard: shard, sweepAt: delayStartedAt + 60_000 + STEP_STALL_MS },
      { sweepShard: shard, sweepAt: resumedAt + STEP_STALL_MS },
      { sweepShard: undefined, sweepAt: undefined },
    ]);
  });

  it("holds a delivery once it retries, due when its retry should have been made, until it ends", async () => {
    // Prepare
    system.answer = (request) =>
      request.headers["x-delivery-attempt"] === "1" ? { status: 503 } : { status: 200 };
    const enrollment = await system.enroll([webhook("/retried")]);
    const deliveryId = deliveryIdFor(
      enrollment.enrollmentId,
      enrollment.actions[0]?.actionId ?? "",
    );
    const shard = sweepShardOf(deliveryId);

    // Act
    await system.settleOne(); // the webhook action built the delivery
    const created = system.clock.now;
    const pending = await placeOf("deliveries", deliveryId);
    const waiting = await placeOf("enrollments", enrollment.enrollmentId);
    await system.settleOne(); // attempt 1: 503, retry scheduled
    const afterFirst = system.clock.now;
    const retrying = await placeOf("deliveries", deliveryId);
    const firesAt = (await system.tables.deliveries.get(deliveryId))?.retryFiresAt ?? 0;
    await system.settle();
    const ended = await placeOf("deliveries", deliveryId);

    // Assess
    // Before its first retry, the enrollment waiting on it is what the sweeper watches.
    expect(pending).toEqual({ sweepShard: undefined, sweepAt: undefined });
    expect(waiting).toMatchObject({ sweepAt: created + STEP_STALL_MS });
    expect(retrying).toEqual({
      sweepShard: shard,
      sweepAt: afterFirst + (firesAt - afterFirst) + RETRY_FIRE_SLACK_MS + ATTEMPT_STALL_MS,
    });
    expect(firesAt).toBeGreaterThanOrEqual(afterFirst + 60_000);
    expect(ended).toEqual({ sweepShard: undefined, sweepAt: undefined });
  });

  it("adds no request, and 2 index write units to a delivery that succeeds at once", async () => {
    // Prepare
    await system.enroll([webhook("/at-once")]);
    const enrolled = structuredClone(tally);

    // Act
    await system.settle();

    // Assess: the deliveries table saw the body, the state, and the first attempt's outcome (the
    // attempt in the same update, and no lease), as before the index, and none touched it
    expect(tally.deliveries).toEqual({ requests: 2 + 1, indexUnits: 0 });
    // The enrollment enters the index when it starts and leaves it when it completes.
    expect(enrolled.enrollments?.indexUnits).toBe(1);
    expect(tally.enrollments?.indexUnits).toBe(2);
  });

  it("takes 2 index write units from an enrollment the API starts at its webhook, which never moves in it", async () => {
    // Prepare
    const started = system.clock.now;

    // Act
    const enrollmentId = await system.enrollThroughApi([webhook("/through-the-api")]);
    const enrolled = structuredClone(tally);
    const place = await placeOf("enrollments", enrollmentId);
    await system.settle();

    // Assess: the lock and the enrollment, which enters the index due when its first step would
    // be; then the lane's finish, which takes it out. No write in between moves it.
    expect(enrolled.enrollments).toEqual({ requests: 2, indexUnits: 1 });
    expect(place).toEqual({
      sweepShard: sweepShardOf(enrollmentId),
      sweepAt: started + STEP_STALL_MS,
    });
    expect(tally.enrollments).toEqual({ requests: 3, indexUnits: 2 });
    expect(await placeOf("enrollments", enrollmentId)).toEqual({
      sweepShard: undefined,
      sweepAt: undefined,
    });
  });

  it("adds 2 index write units to a delivery that retries, and 2 more per further retry", async () => {
    // Prepare: two failed attempts, then a success
    system.answer = (request) =>
      Number(request.headers["x-delivery-attempt"]) <= 2 ? { status: 503 } : { status: 200 };
    await system.enroll([webhook("/twice")]);

    // Act
    await system.settle();

    // Assess: it enters the index at its first retry, moves at its second, leaves at the end;
    // the first attempt takes no lease, and each one after it moves the one before it to its own
    // item
    expect(tally.deliveries).toEqual({ requests: 2 + 1 + 3 + 3, indexUnits: 1 + 2 + 1 });
    expect(tally.enrollments?.indexUnits).toBe(2);
  });

  it("is read by the sweeper one bounded page per shard and table, and never scanned", async () => {
    // Prepare
    const queries: Record<string, unknown>[] = [];
    const watch =
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: unknown) => {
        if (context.commandName === "ScanCommand") throw new Error("the sweeper scanned a table");
        if (context.commandName === "QueryCommand") {
          queries.push((args as { input: Record<string, unknown> }).input);
        }
        return next(args);
      };
    system.aws.documents.middlewareStack.add(watch as never, { step: "initialize", name: "watch" });

    // Act
    await system.sweep();
    system.aws.documents.middlewareStack.remove("watch");

    // Assess
    expect(queries).toHaveLength(2 * SWEEP_SHARDS);
    for (const query of queries) {
      expect(query).toMatchObject({
        IndexName: openWorkIndex.name,
        KeyConditionExpression: "sweepShard = :shard AND sweepAt <= :now",
        Limit: 25,
      });
    }
  });
});
