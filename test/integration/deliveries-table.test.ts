import { randomUUID } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveriesTable } from "#adapters/deliveries-table";
import { newDelivery } from "#domain/delivery";
import { newEnrollment } from "#domain/enrollment";
import type { WebhookAction } from "#domain/workflow";
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

function delivery(body: string) {
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId: "w",
    objectType: "contacts",
    objectId: "1",
    definition: [action],
    now: 1_000,
  });
  return newDelivery({ enrollment, actionIndex: 0, action, body, now: 1_000 });
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
});
