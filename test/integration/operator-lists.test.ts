import { randomUUID } from "node:crypto";
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { batchGetItems, UnreadKeysError } from "#adapters/batch-reads";
import { DeliveriesTable, LIST_READ_BUDGET } from "#adapters/deliveries-table";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { encodePageToken } from "#adapters/page-tokens";
import { ReplaysTable } from "#adapters/replays-table";
import { WorkflowEnrollments } from "#adapters/workflow-enrollments";
import { WorkflowsTable } from "#adapters/workflows-table";
import { listDeliveries } from "#app/deliveries";
import { listWorkflows } from "#app/workflows";
import {
  type Delivery,
  type DeliveryStatus,
  deliveryListView,
  newDelivery,
} from "#domain/delivery";
import { newEnrollment } from "#domain/enrollment";
import { ValidationError } from "#domain/errors";
import { newReplay } from "#domain/replay";
import type { WebhookAction } from "#domain/workflow";
import { type LocalAws, startLocalAws } from "#test/local-aws";

let aws: LocalAws;
let deliveries: DeliveriesTable;
let workflows: WorkflowsTable;
let enrollments: EnrollmentsTable;
let workflowEnrollments: WorkflowEnrollments;

beforeAll(async () => {
  aws = await startLocalAws();
  deliveries = new DeliveriesTable(aws.documents, aws.resources.tables.deliveries);
  workflows = new WorkflowsTable(aws.documents, aws.resources.tables.workflows);
  enrollments = new EnrollmentsTable(aws.documents, aws.resources.tables.enrollments);
  workflowEnrollments = new WorkflowEnrollments(aws.documents, aws.resources.tables.enrollments);
});

afterAll(async () => {
  await aws?.stop();
});

const action: WebhookAction & { id: string } = {
  id: "a1",
  type: "webhook",
  url: "https://hooks.example.com/in",
  method: "POST",
  authentication: { type: "apiKey", name: "X-Key", location: "header", value: "secret-key" },
  body: { type: "all" },
};

/** A delivery of a workflow, created at `createdAt` and standing at `status`. */
function deliveryOf(workflowId: string, createdAt: number, status: DeliveryStatus): Delivery {
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId,
    objectType: "contacts",
    objectId: "1",
    definition: [action],
    now: createdAt,
  });
  const delivery = newDelivery({ enrollment, actionIndex: 0, action, body: "{}", now: createdAt });
  return status === "failed"
    ? {
        ...delivery,
        status,
        attemptCount: 1,
        nextAttempt: null,
        nextAttemptAt: null,
        failureReason: "410 Gone is not retried",
      }
    : { ...delivery, status };
}

async function store(...created: Delivery[]): Promise<Delivery[]> {
  for (const delivery of created) await deliveries.create(delivery);
  return created;
}

/** Writes the state items of many deliveries at once, without bodies, which a list never reads. */
async function storeMany(created: readonly Delivery[]): Promise<void> {
  for (let start = 0; start < created.length; start += 25) {
    await aws.documents.send(
      new BatchWriteCommand({
        RequestItems: {
          [aws.resources.tables.deliveries]: created
            .slice(start, start + 25)
            .map(({ body: _body, ...state }) => ({
              PutRequest: { Item: { pk: state.deliveryId, sk: "DELIVERY", ...state } },
            })),
        },
      }),
    );
  }
}

/**
 * Makes the next `times` BatchGetItem requests answer for their first key only and leave the
 * others unprocessed; counts the keys each request asked for.
 */
function leavingUnprocessed(times: number) {
  const name = `unprocessed-${randomUUID()}`;
  const asked: number[] = [];
  aws.documents.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "BatchGetItemCommand" || asked.length >= times) {
        return next(args);
      }
      const input = args.input as { RequestItems: Record<string, { Keys: unknown[] }> };
      const [table, request] = Object.entries(input.RequestItems)[0] ?? [];
      if (table === undefined || request === undefined) return next(args);
      asked.push(request.Keys.length);
      const [first, ...rest] = request.Keys;
      const result = await next({
        ...args,
        input: { ...input, RequestItems: { [table]: { ...request, Keys: [first] } } },
      });
      const output = result.output as { UnprocessedKeys?: Record<string, unknown> };
      output.UnprocessedKeys = rest.length > 0 ? { [table]: { ...request, Keys: rest } } : {};
      return result;
    },
    { step: "initialize", name },
  );
  return {
    keysAsked: () => asked,
    remove: () => {
      aws.documents.middlewareStack.remove(name);
    },
  };
}

/** Every page of a list, following nextToken to its end. */
async function allPages<Page extends { nextToken: string | null }>(
  list: (nextToken?: string) => Promise<Page>,
): Promise<Page[]> {
  const pages: Page[] = [];
  let nextToken: string | undefined;
  do {
    const page = await list(nextToken);
    pages.push(page);
    nextToken = page.nextToken ?? undefined;
  } while (nextToken !== undefined);
  return pages;
}

/** Every one of `outcomes` is a refusal (a 400) that names `field`. */
function expectRefusedNaming(field: string, outcomes: readonly PromiseSettledResult<unknown>[]) {
  for (const outcome of outcomes) {
    expect(outcome.status).toBe("rejected");
    const reason = (outcome as PromiseRejectedResult).reason;
    expect(reason).toBeInstanceOf(ValidationError);
    expect((reason as ValidationError).field).toBe(field);
  }
}

describe("listing a workflow's deliveries", () => {
  it("pages through them newest first by the index, each as a list shows it, and nothing else", async () => {
    // Prepare
    const workflowId = randomUUID();
    const mine = await store(
      ...Array.from({ length: 7 }, (_, i) => deliveryOf(workflowId, 1_000 + i, "succeeded")),
    );
    await store(deliveryOf(randomUUID(), 1_003, "succeeded"));
    await new ReplaysTable(aws.documents, aws.resources.tables.deliveries).create(
      newReplay({
        replayId: randomUUID(),
        selection: { workflowId, since: 0, until: 2_000 },
        now: 1_004,
      }),
    );

    // Act
    const pages = await allPages((nextToken) =>
      listDeliveries({ deliveries }, { workflowId, limit: 3, nextToken }),
    );

    // Assess
    expect(pages.map((page) => page.deliveries.length)).toEqual([3, 3, 1]);
    const listed = pages.flatMap((page) => page.deliveries);
    expect(listed).toEqual([...mine].reverse().map(deliveryListView));
    expect(JSON.stringify(listed)).not.toContain("secret-key");
    expect(pages.at(-1)?.nextToken).toBeNull();
  });

  it("filters by status and creation time, reading on until each page is full", async () => {
    // Prepare
    const workflowId = randomUUID();
    const statuses: DeliveryStatus[] = ["succeeded", "failed", "retrying", "failed", "pending"];
    const all = await store(
      ...Array.from({ length: 30 }, (_, i) =>
        deliveryOf(workflowId, 10_000 + i * 10, statuses[i % statuses.length] as DeliveryStatus),
      ),
    );
    const since = 10_050;
    const until = 10_250;

    // Act
    const pages = await allPages((nextToken) =>
      deliveries.listByWorkflow({
        workflowId,
        status: "failed",
        since,
        until,
        limit: 4,
        nextToken,
      }),
    );

    // Assess
    const expected = all
      .filter((d) => d.status === "failed" && d.createdAt >= since && d.createdAt <= until)
      .reverse()
      .map((d) => d.deliveryId);
    expect(expected).toHaveLength(8);
    expect(pages.map((page) => page.deliveries.length)).toEqual([4, 4]);
    expect(pages.flatMap((page) => page.deliveries.map((d) => d.deliveryId))).toEqual(expected);
  });

  it(`stops a filtered page after reading ${LIST_READ_BUDGET} deliveries, with a token to go on`, async () => {
    // Prepare
    const workflowId = randomUUID();
    const failed = [deliveryOf(workflowId, 1, "failed"), deliveryOf(workflowId, 2, "failed")];
    await storeMany([
      ...failed,
      ...Array.from({ length: LIST_READ_BUDGET + 50 }, (_, i) =>
        deliveryOf(workflowId, 100 + i, "succeeded"),
      ),
    ]);

    // Act
    const first = await deliveries.listByWorkflow({ workflowId, status: "failed", limit: 25 });
    const second = await deliveries.listByWorkflow({
      workflowId,
      status: "failed",
      limit: 25,
      nextToken: first.nextToken ?? undefined,
    });

    // Assess
    expect(first.deliveries).toEqual([]);
    expect(first.nextToken).not.toBeNull();
    expect(second.deliveries.map((d) => d.deliveryId)).toEqual(
      [...failed].reverse().map((d) => d.deliveryId),
    );
    expect(second.nextToken).toBeNull();
  });

  it("reads again, after a wait, the deliveries DynamoDB left unprocessed, and gives up after bounded rounds", async () => {
    // Prepare: the next two batch reads answer for their first key only, as a throttled
    // partition makes DynamoDB do
    const workflowId = randomUUID();
    const mine = await store(
      ...Array.from({ length: 5 }, (_, i) => deliveryOf(workflowId, 3_000 + i, "failed")),
    );
    const batches = leavingUnprocessed(2);
    onTestFinished(() => batches.remove());

    // Act
    const page = await deliveries.listByWorkflow({ workflowId, status: "failed", limit: 5 });
    const stubborn = leavingUnprocessed(Number.POSITIVE_INFINITY);
    const givenUp = batchGetItems(
      aws.documents,
      aws.resources.tables.deliveries,
      // More keys than rounds, so some stay unprocessed to the end.
      Array.from({ length: 20 }, () => ({ pk: randomUUID(), sk: "DELIVERY" })),
      { random: () => 0 },
    );
    await expect(givenUp).rejects.toBeInstanceOf(UnreadKeysError);
    stubborn.remove();

    // Assess
    expect(page.deliveries.map((d) => d.deliveryId)).toEqual(
      [...mine].reverse().map((d) => d.deliveryId),
    );
    expect(batches.keysAsked()).toEqual([5, 4]);
    expect(stubborn.keysAsked()).toHaveLength(8);
  });

  it("refuses a forged or foreign nextToken with a 400 naming it, whatever it holds", async () => {
    // Prepare
    const workflowId = randomUUID();
    await store(
      ...Array.from({ length: 3 }, (_, i) => deliveryOf(workflowId, 5_000 + i, "failed")),
    );
    const { nextToken } = await deliveries.listByWorkflow({ workflowId, limit: 1 });
    const genuine = JSON.parse(Buffer.from(nextToken ?? "", "base64url").toString("utf8"));
    const forged = [
      { ...genuine, workflowId: "another" },
      { ...genuine, createdAt: 4_000 },
      { ...genuine, createdAt: "5002" },
      { ...genuine, createdAt: 5_001.5 },
      { ...genuine, pk: "x".repeat(3000) },
      { ...genuine, pk: { S: "x" } },
      { ...genuine, sk: "ATTEMPT#0001" },
      { ...genuine, extra: 1 },
      { pk: genuine.pk, sk: genuine.sk },
    ].map((key) => encodePageToken(key) as string);

    // Act
    const outcomes = await Promise.allSettled(
      [...forged, "AAAA", "e30"].map((token) =>
        deliveries.listByWorkflow({ workflowId, since: 4_500, limit: 1, nextToken: token }),
      ),
    );
    const withGenuine = await deliveries.listByWorkflow({
      workflowId,
      limit: 1,
      nextToken: nextToken ?? "",
    });
    const elsewhere = deliveries.listByWorkflow({
      workflowId: randomUUID(),
      limit: 1,
      nextToken: nextToken ?? "",
    });

    // Assess
    expectRefusedNaming("nextToken", outcomes);
    expect(withGenuine.deliveries).toHaveLength(1);
    await expect(elsewhere).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("listing workflows", () => {
  it("pages through them oldest first, by the index of creation times", async () => {
    // Prepare
    const created = [];
    for (let i = 0; i < 5; i++) {
      const workflow = {
        id: randomUUID(),
        name: `w${i}`,
        objectType: "contacts" as const,
        actions: [{ id: randomUUID(), type: "delay" as const, seconds: 1 }],
        createdAt: new Date(Date.UTC(2030, 0, 1, 0, 0, i)).toISOString(),
        updatedAt: new Date(Date.UTC(2030, 0, 1, 0, 0, i)).toISOString(),
      };
      await workflows.create(workflow);
      created.push(workflow);
    }

    // Act
    const pages = await allPages((nextToken) =>
      listWorkflows({ workflows }, { limit: 2, nextToken }),
    );
    const forged = listWorkflows(
      { workflows },
      { limit: 2, nextToken: encodePageToken({ pk: "w", sk: "WORKFLOW", createdAt: 1 }) as string },
    );

    // Assess
    const names = pages.flatMap((page) => page.workflows.map((w) => w.name));
    expect(names.filter((name) => /^w\d$/.test(name))).toEqual(["w0", "w1", "w2", "w3", "w4"]);
    expect(pages.slice(0, -1).every((page) => page.nextToken !== null)).toBe(true);
    await expect(forged).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("listing workflows whose JSON is far larger than what DynamoDB stores of them", () => {
  it("ends a page before its JSON passes 4 MiB, and the next page goes on from there", async () => {
    // Prepare: 20 workflows of about 300 kB of JSON each, 50 kB stored (a control character is
    // one byte stored, six as JSON), after every other workflow of this file
    const created: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = randomUUID();
      await workflows.create({
        id,
        name: `large${String(i).padStart(2, "0")}`,
        objectType: "contacts",
        actions: [
          { id: randomUUID(), type: "setProperty", property: "p", value: "\u0001".repeat(49_950) },
        ],
        createdAt: new Date(Date.UTC(2050, 0, 1, 0, 0, i)).toISOString(),
        updatedAt: new Date(Date.UTC(2050, 0, 1, 0, 0, i)).toISOString(),
      });
      created.push(id);
    }

    // Act
    const pages = await allPages((nextToken) =>
      listWorkflows({ workflows }, { limit: 100, nextToken }),
    );

    // Assess
    const sizes = pages.map((page) => Buffer.byteLength(JSON.stringify(page), "utf8"));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4 * 1024 * 1024 + 1024);
    const listed = pages.flatMap((page) => page.workflows.map((workflow) => workflow.id));
    expect(listed.filter((id) => created.includes(id))).toEqual(created);
    expect(new Set(listed).size).toBe(listed.length);
  });
});

describe("listing a workflow's enrollments", () => {
  it("refuses a forged or foreign nextToken with a 400 naming it, whatever it holds", async () => {
    // Prepare
    const workflowId = randomUUID();
    for (let i = 0; i < 3; i++) {
      await enrollments.create(
        newEnrollment({
          enrollmentId: randomUUID(),
          workflowId,
          objectType: "contacts",
          objectId: `c${i}`,
          definition: [{ id: "a", type: "delay", seconds: 60 }],
          now: 5_000 + i,
        }),
      );
    }
    const { nextToken } = await workflowEnrollments.page({ workflowId, limit: 1 });
    const genuine = JSON.parse(Buffer.from(nextToken ?? "", "base64url").toString("utf8"));
    const forged = [
      ...[
        { ...genuine, workflowId: "another" },
        { ...genuine, pk: "" },
        { ...genuine, pk: "x".repeat(3000) },
        { ...genuine, createdAt: 1e300 },
        { ...genuine, createdAt: -1 },
        { ...genuine, createdAt: "5002" },
        { ...genuine, sk: "LOCK" },
        { ...genuine, extra: 1 },
      ].map((key) => encodePageToken(key) as string),
      // A number JSON can spell but not hold: it reads back as Infinity.
      Buffer.from(JSON.stringify(genuine).replace(/"createdAt":\d+/, '"createdAt":1e400')).toString(
        "base64url",
      ),
    ];

    // Act
    const outcomes = await Promise.allSettled(
      forged.map((token) => workflowEnrollments.page({ workflowId, limit: 1, nextToken: token })),
    );
    const withGenuine = await workflowEnrollments.page({
      workflowId,
      limit: 1,
      nextToken: nextToken ?? "",
    });
    const byRecord = workflowEnrollments.page({
      workflowId,
      objectId: "c1",
      limit: 1,
      nextToken: nextToken ?? "",
    });

    // Assess
    expectRefusedNaming("nextToken", outcomes);
    expect(withGenuine.enrollments.map((enrollment) => enrollment.objectId)).toEqual(["c1"]);
    await expect(byRecord).rejects.toBeInstanceOf(ValidationError);
  });
});
