import { randomUUID } from "node:crypto";
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { DeliveriesTable, MAX_INLINE_ATTEMPT_TEXT_BYTES } from "#adapters/deliveries-table";
import {
  type Attempt,
  type AttemptVerdict,
  type Delivery,
  deliveryView,
  newDelivery,
} from "#domain/delivery";
import { newEnrollment } from "#domain/enrollment";
import type { WebhookAction } from "#domain/workflow";
import { injectErrors } from "#test/injected-errors";
import { type LocalAws, startLocalAws } from "#test/local-aws";

let aws: LocalAws;
let deliveries: DeliveriesTable;

beforeAll(async () => {
  aws = await startLocalAws();
  deliveries = new DeliveriesTable(aws.documents, aws.resources.tables.deliveries);
});

afterAll(async () => {
  await aws?.stop();
});

const action: WebhookAction & { id: string } = {
  id: "a1",
  type: "webhook",
  url: "https://hooks.example.com/in",
  method: "POST",
  body: { type: "all" },
};

/** A webhook as most are set up: signed, to a URL with a path and a query. */
const signedAction: WebhookAction & { id: string } = {
  id: randomUUID(),
  type: "webhook",
  url: "https://crm.example.com/hooks/workflows/lead-created?source=workflows&region=eu",
  method: "POST",
  authentication: { type: "signature", appId: randomUUID() },
  body: { type: "all" },
};

const LEASE_MS = 90_000;

function delivery(body: string, webhook = action) {
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId: randomUUID(),
    objectType: "contacts",
    objectId: "1",
    definition: [webhook],
    now: 1_000,
  });
  return newDelivery({ enrollment, actionIndex: 0, action: webhook, body, now: 1_000 });
}

/** Attempt `number`, answered with `status` and a response body of `text`. */
function attemptOf(number: number, status: number, text: string): Attempt {
  const sentAt = Date.now();
  return {
    number,
    scheduledAt: sentAt - 5,
    sentAt,
    statusCode: status,
    error: null,
    durationMs: 1234,
    responseBody: text,
  };
}

/** The verdict of a failed attempt `number`, retried `number` minutes later. */
function retrying(number: number): AttemptVerdict {
  const now = Date.now();
  return {
    status: "retrying",
    nextAttempt: number + 1,
    nextAttemptAt: now + number * 60_000,
    delayMs: number * 60_000,
    firstFailedAt: now - 1,
    firesAt: now + number * 60_000,
  };
}

/** Takes the lease on the delivery's next attempt and records `attempt` with `verdict`. */
async function record(deliveryId: string, attempt: Attempt, verdict: AttemptVerdict) {
  const read = (await deliveries.get(deliveryId)) as Delivery;
  expect(await deliveries.claimAttempt(deliveryId, attempt.number, Date.now(), LEASE_MS)).toBe(
    true,
  );
  await deliveries.recordAttempt(read, attempt, verdict, Date.now());
}

/** The sort keys of a delivery's items. */
async function itemKeys(deliveryId: string): Promise<string[]> {
  const { Items } = await aws.documents.send(
    new QueryCommand({
      TableName: aws.resources.tables.deliveries,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": deliveryId },
    }),
  );
  return (Items ?? []).map((item) => String(item.sk));
}

/** Counts the write units each UpdateItem takes on the table itself, its indexes left out. */
function updateUnits() {
  const name = `units-${randomUUID()}`;
  const units: number[] = [];
  aws.documents.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "UpdateItemCommand") return next(args);
      const input = args.input as Record<string, unknown>;
      const result = await next({
        ...args,
        input: { ...input, ReturnConsumedCapacity: "INDEXES" },
      });
      const consumed = (
        result.output as { ConsumedCapacity?: { Table?: { CapacityUnits?: number } } }
      ).ConsumedCapacity;
      units.push(consumed?.Table?.CapacityUnits ?? Number.NaN);
      return result;
    },
    { step: "initialize", name },
  );
  onTestFinished(() => {
    aws.documents.middlewareStack.remove(name);
  });
  return units;
}

describe("the deliveries table", () => {
  it("keeps the body apart from the state that every attempt updates", async () => {
    // Prepare
    const large = JSON.stringify({ notes: "x".repeat(50_000), n: Math.random() });
    const created = delivery(large);

    // Act
    await deliveries.create(created);
    const { Item: state } = await aws.documents.send(
      new GetCommand({
        TableName: aws.resources.tables.deliveries,
        Key: { pk: created.deliveryId, sk: "DELIVERY" },
      }),
    );

    // Assess
    expect(JSON.stringify(state).length).toBeLessThan(1_024);
    expect(state).not.toHaveProperty("body");
    expect(state).not.toHaveProperty("bodyGzip");
    expect((await deliveries.get(created.deliveryId))?.body).toBe(large);
  });

  it("never replaces the body of a delivery that exists, when its action runs again", async () => {
    // Prepare
    const first = delivery('{"version":1}');
    await deliveries.create(first);

    // Act
    const again = await deliveries.create({ ...first, body: '{"version":2}' });

    // Assess
    expect(again).toBe(false);
    expect((await deliveries.get(first.deliveryId))?.body).toBe('{"version":1}');
  });

  it("stores a delivery without a body, for a GET webhook", async () => {
    const created = { ...delivery(""), body: undefined };

    expect(await deliveries.create(created)).toBe(true);
    const read = await deliveries.get(created.deliveryId);

    expect(read).toMatchObject({ deliveryId: created.deliveryId, status: "pending" });
    expect(read).not.toHaveProperty("body");
  });

  it("keeps the last attempt in the state and moves it to its own item when the next is recorded, showing every attempt as before", async () => {
    // Prepare
    const created = delivery("{}");
    await deliveries.create(created);
    const first = attemptOf(1, 503, "Service Unavailable");
    const second = attemptOf(2, 500, "");
    const third = attemptOf(3, 200, '{"ok":true}');

    // Act
    await record(created.deliveryId, first, retrying(1));
    const afterFirst = await itemKeys(created.deliveryId);
    await record(created.deliveryId, second, retrying(2));
    const afterSecond = await itemKeys(created.deliveryId);
    await record(created.deliveryId, third, { status: "succeeded" });
    const afterThird = await itemKeys(created.deliveryId);
    const stored = await deliveries.getWithAttempts(created.deliveryId);
    const { Item: moved } = await aws.documents.send(
      new GetCommand({
        TableName: aws.resources.tables.deliveries,
        Key: { pk: created.deliveryId, sk: "ATTEMPT#0002" },
      }),
    );

    // Assess
    expect(afterFirst).toEqual(["DELIVERY", "DELIVERY#BODY"]);
    expect(afterSecond).toEqual(["ATTEMPT#0001", "DELIVERY", "DELIVERY#BODY"]);
    expect(afterThird).toEqual(["ATTEMPT#0001", "ATTEMPT#0002", "DELIVERY", "DELIVERY#BODY"]);
    expect(stored?.attempts).toEqual([first, second, third]);
    expect(stored?.delivery).toMatchObject({ status: "succeeded", lastAttempt: third });
    expect(deliveryView(stored?.delivery as Delivery, stored?.attempts ?? []).attempts).toEqual(
      [first, second, third].map((attempt) => ({
        number: attempt.number,
        scheduledAt: new Date(attempt.scheduledAt).toISOString(),
        sentAt: new Date(attempt.sentAt).toISOString(),
        statusCode: attempt.statusCode,
        error: null,
        durationMs: 1234,
        responseBody: attempt.responseBody,
      })),
    );
    expect(moved?.expiresAt).toBe(Math.floor(second.sentAt / 1000) + 30 * 86_400);
  });

  it("writes a large attempt to its own item at once, and shows it in its place", async () => {
    // Prepare
    const created = delivery("{}");
    await deliveries.create(created);
    const large = attemptOf(1, 502, "<html>".padEnd(4_096, "x"));
    const small = attemptOf(2, 200, "ok");

    // Act
    await record(created.deliveryId, large, retrying(1));
    const afterLarge = await itemKeys(created.deliveryId);
    await record(created.deliveryId, small, { status: "succeeded" });
    const stored = await deliveries.getWithAttempts(created.deliveryId);

    // Assess
    expect(afterLarge).toEqual(["ATTEMPT#0001", "DELIVERY", "DELIVERY#BODY"]);
    expect(stored?.attempts).toEqual([large, small]);
  });

  it("shows an attempt once when a recording stopped after moving it out, and the next holder records it all", async () => {
    // Prepare: attempt 2's recording moved attempt 1 out, then lost its lease
    const created = delivery("{}");
    await deliveries.create(created);
    const first = attemptOf(1, 503, "");
    await record(created.deliveryId, first, retrying(1));
    const read = (await deliveries.get(created.deliveryId)) as Delivery;
    await deliveries.claimAttempt(created.deliveryId, 2, Date.now(), LEASE_MS);
    const failing = injectErrors(aws.documents, "UpdateItemCommand", () => new Error("gone"), 1);
    const stopped = deliveries.recordAttempt(read, attemptOf(2, 500, ""), retrying(2), Date.now());
    await expect(stopped).rejects.toThrow("gone");
    failing.remove();
    const halfway = await deliveries.getWithAttempts(created.deliveryId);

    // Act: the lease's next holder makes the attempt again
    await deliveries.claimAttempt(created.deliveryId, 2, Date.now() + LEASE_MS + 1, LEASE_MS);
    const second = attemptOf(2, 200, "ok");
    await deliveries.recordAttempt(read, second, { status: "succeeded" }, Date.now());
    const stored = await deliveries.getWithAttempts(created.deliveryId);

    // Assess
    expect(await itemKeys(created.deliveryId)).toContain("ATTEMPT#0001");
    expect(halfway?.attempts).toEqual([first]);
    expect(halfway?.delivery.lastAttempt).toEqual(first);
    expect(stored?.attempts).toEqual([first, second]);
  });

  it(`keeps a signed webhook's state under 1 KB with an attempt of ${MAX_INLINE_ATTEMPT_TEXT_BYTES} bytes of response, retried and re-fired`, async () => {
    // Prepare: a delivery with every mark a state carries: retried, re-fired by a replay, swept
    const created = delivery("{}", signedAction);
    await deliveries.create(created);
    await record(created.deliveryId, attemptOf(1, 410, "gone"), {
      status: "failed",
      reason: "410 Gone is not retried",
    });
    const failed = (await deliveries.get(created.deliveryId)) as Delivery;
    await deliveries.requestReplay(failed, randomUUID(), Date.now());
    const units = updateUnits();
    const largest = attemptOf(2, 503, "x".repeat(MAX_INLINE_ATTEMPT_TEXT_BYTES));

    // Act
    await record(created.deliveryId, largest, retrying(2));
    const { Item: state } = await aws.documents.send(
      new GetCommand({
        TableName: aws.resources.tables.deliveries,
        Key: { pk: created.deliveryId, sk: "DELIVERY" },
      }),
    );

    // Assess: the lease and the recording each cost one write unit
    expect(state).toMatchObject({ lastAttempt: largest, replayedBy: expect.any(String) });
    expect(state).toHaveProperty("sweepAt");
    expect(units).toEqual([1, 1]);
  });
});
