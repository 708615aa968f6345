import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookLaneQueue } from "#adapters/lane-queues";
import { localCredentials, localRegion } from "#infra/local/net";
import { metrics } from "#shared/contract";
import { eventually } from "#test/eventually";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

/** The first retry, a minute after a failure, comes 3 s later here: time enough to cancel first. */
const TIME_SCALE = 0.05;
const FIRST_RETRY_MS = 60_000 * TIME_SCALE;

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];
let sqs: SQSClient;

let stopCounting: () => void = () => {};

beforeAll(async () => {
  stopCounting = countMetrics();
  system = await startLocalSystem({ timeScale: TIME_SCALE, metricsEnabled: true });
  ({ call, receiver, answers } = system);
  sqs = new SQSClient({
    endpoint: system.runtime.env.AWS_ENDPOINT_URL_SQS,
    region: localRegion,
    credentials: localCredentials,
  });
});

afterAll(async () => {
  sqs?.destroy();
  await system?.stop();
  stopCounting();
});

let contacts = 0;
async function contact(): Promise<string> {
  contacts += 1;
  const id = `ops-${Date.now()}-${contacts}`;
  await call("PUT", `/objects/contacts/${id}`, { properties: { email: `${id}@example.com` } });
  return id;
}

/** A workflow: a webhook to `path` on the receiver, then a setProperty that shows it went on. */
async function webhookWorkflow(path: string): Promise<string> {
  const created = await call("POST", "/workflows", {
    name: `ops ${path}`,
    objectType: "contacts",
    actions: [
      { type: "webhook", url: receiver.url(path) },
      { type: "setProperty", property: "went_on", value: "yes" },
    ],
  });
  expect(created.status).toBe(201);
  return created.body.id;
}

async function enroll(workflowId: string, objectId: string): Promise<string> {
  const enrolled = await call("POST", `/workflows/${workflowId}/enrollments`, { objectId });
  expect(enrolled.status).toBe(202);
  return enrolled.body.enrollmentId;
}

/** What the functions counted so far, by metric, from the EMF lines they print. */
const counted = new Map<string, number>();

/**
 * Takes the functions' metric lines (CloudWatch embedded metric format) off stdout and adds them
 * up; other output goes through. Returns how to stop.
 */
function countMetrics(): () => void {
  const original = process.stdout.write;
  let pending = "";
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    pending += typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    const passed = [];
    for (const line of lines) {
      if (!line.startsWith('{"_aws"')) {
        passed.push(line);
        continue;
      }
      const emf = JSON.parse(line) as Record<string, unknown> & {
        _aws: { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> };
      };
      for (const { Name } of emf._aws.CloudWatchMetrics.flatMap((set) => set.Metrics)) {
        const values = ([] as number[]).concat(emf[Name] as number | number[]);
        counted.set(Name, (counted.get(Name) ?? 0) + values.reduce((x, y) => x + y, 0));
      }
    }
    if (passed.length === 0) return true;
    return original.call(process.stdout, `${passed.join("\n")}\n`, ...(rest as []));
  }) as typeof process.stdout.write;
  return () => {
    process.stdout.write = original;
  };
}

describe("cancelling an enrollment through the API", () => {
  it("stops its retrying webhook: the delivery fails, its retry is gone, and a retry that fires anyway sends nothing", async () => {
    // Prepare: the receiver answers 503, so the delivery waits for its retry
    answers.set("/cancel-me", () => ({ status: 503 }));
    const workflowId = await webhookWorkflow("/cancel-me");
    const objectId = await contact();
    const enrollmentId = await enroll(workflowId, objectId);
    const deliveryId = await eventually("the delivery to wait for its retry", async () => {
      const { body } = await call("GET", `/enrollments/${enrollmentId}`);
      expect(body.deliveries[0]?.status).toBe("retrying");
      return body.deliveries[0].deliveryId as string;
    });
    const url = receiver.url("/cancel-me");

    // Act
    const cancelled = await call("DELETE", `/enrollments/${enrollmentId}`);
    // EventBridge Scheduler may fire a schedule whose deletion raced it: put attempt 2 on the lane.
    await new WebhookLaneQueue(sqs, system.runtime.resources.queues.webhookLane.url).send({
      deliveryId,
      attempt: 2,
      host: new URL(url).host,
    });
    await new Promise((resolve) => setTimeout(resolve, FIRST_RETRY_MS + 1_000));
    const again = await call("DELETE", `/enrollments/${enrollmentId}`);
    const reenrolled = await call("POST", `/workflows/${workflowId}/enrollments`, { objectId });

    // Assess
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({
      enrollmentId,
      status: "cancelled",
      currentActionId: null,
    });
    expect(cancelled.body.deliveries[0]).toMatchObject({
      deliveryId,
      status: "failed",
      failureReason: "enrollment cancelled",
      nextAttemptAt: null,
    });
    expect(
      system.runtime.scheduler.pendingSchedules().filter((s) => s.name.startsWith(deliveryId)),
    ).toEqual([]);
    expect(receiver.requestsTo("/cancel-me")).toHaveLength(1);
    expect((await call("GET", `/deliveries/${deliveryId}`)).body.status).toBe("failed");
    expect((await call("GET", `/objects/contacts/${objectId}`)).body.properties.went_on).toBe(
      undefined,
    );
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("conflict");
    expect(reenrolled.status).toBe(202);
    expect((await call("DELETE", "/enrollments/nx-unknown")).status).toBe(404);
  });
});

describe("listing a workflow's deliveries through the API", () => {
  it("finds the failed ones, newest first, a page at a time, and refuses a bad query with a 400 naming it", async () => {
    // Prepare: three deliveries fail for good (410), one succeeds
    answers.set("/list-gone", (_previous, request) =>
      request.body.includes("keep-me") ? { status: 200 } : { status: 410 },
    );
    const workflowId = await webhookWorkflow("/list-gone");
    const failing = [await contact(), await contact(), await contact()];
    const enrollments = [];
    for (const objectId of failing) enrollments.push(await enroll(workflowId, objectId));
    const kept = `keep-me-${Date.now()}`;
    await call("PUT", `/objects/contacts/${kept}`, { properties: { email: "k@example.com" } });
    await enroll(workflowId, kept);
    await eventually("every delivery to end", async () => {
      const { body } = await call("GET", `/deliveries?workflowId=${workflowId}&limit=100`);
      expect(body.deliveries).toHaveLength(4);
      expect(
        body.deliveries.every((d: { status: string }) =>
          ["failed", "succeeded"].includes(d.status),
        ),
      ).toBe(true);
    });

    // Act
    const first = await call("GET", `/deliveries?workflowId=${workflowId}&status=failed&limit=2`);
    const second = await call(
      "GET",
      `/deliveries?workflowId=${workflowId}&status=failed&limit=2&nextToken=${first.body.nextToken}`,
    );
    const future = await call(
      "GET",
      `/deliveries?workflowId=${workflowId}&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    const refused = await Promise.all(
      [
        "/deliveries",
        `/deliveries?workflowId=${workflowId}&status=lost`,
        `/deliveries?workflowId=${workflowId}&limit=500`,
        `/deliveries?workflowId=${workflowId}&since=yesterday`,
        `/deliveries?workflowId=${workflowId}&nextToken=${Buffer.from('{"pk":"x"}').toString("base64url")}`,
        `/deliveries?workflowId=other&nextToken=${first.body.nextToken}`,
        `/deliveries?workflowId=${workflowId}&limit=5&limit=10`,
      ].map((path) => call("GET", path)),
    );

    // Assess
    const listed = [...first.body.deliveries, ...second.body.deliveries];
    expect(listed.map((d: { enrollmentId: string }) => d.enrollmentId)).toEqual(
      [...enrollments].reverse(),
    );
    expect(listed[0]).toMatchObject({ workflowId, status: "failed", nextAttemptAt: null });
    expect(listed[0].failureReason).toMatch(/410/);
    expect(listed[0]).not.toHaveProperty("attempts");
    expect(second.body.nextToken).toBeNull();
    expect(future.body).toEqual({ deliveries: [], nextToken: null });
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400, 400]);
    expect(refused.map((r) => r.body.error.message.split(":")[0])).toEqual([
      "workflowId",
      "status",
      "limit",
      "since",
      "nextToken",
      "nextToken",
      "limit",
    ]);
    expect(refused[6]?.body.error.message).toBe("limit: is given more than once; give it once");
  });
});

describe("replaying failed deliveries through the API", () => {
  it("re-fires each delivery that failed in the window once, paced, after the receiver is fixed, and counts them", async () => {
    // Prepare: 30 deliveries fail for good while the receiver answers 410
    let fixed = false;
    answers.set("/replay-me", () => (fixed ? { status: 200 } : { status: 410 }));
    const workflowId = await webhookWorkflow("/replay-me");
    const since = new Date().toISOString();
    const objectIds = await Promise.all(Array.from({ length: 30 }, () => contact()));
    for (const objectId of objectIds) await enroll(workflowId, objectId);
    await eventually("every delivery to fail for good", async () => {
      const { body } = await call(
        "GET",
        `/deliveries?workflowId=${workflowId}&status=failed&limit=100`,
      );
      expect(body.deliveries).toHaveLength(30);
    });
    fixed = true;

    // Act
    const replayedBefore = counted.get(metrics.names.deliveryReplayed) ?? 0;
    const askedAt = Date.now();
    const started = await call("POST", "/deliveries/replay", { workflowId, since });
    const replayId = started.body.replayId;
    await eventually(
      "the replay to complete and every delivery to succeed",
      async () => {
        const { body } = await call("GET", `/deliveries?workflowId=${workflowId}&limit=100`);
        expect(body.deliveries.map((d: { status: string }) => d.status)).toEqual(
          Array(30).fill("succeeded"),
        );
        expect((await call("GET", `/replays/${replayId}`)).body.status).toBe("completed");
      },
      { timeoutMs: 30_000 },
    );
    const replay = await call("GET", `/replays/${replayId}`);
    const second = await call("POST", "/deliveries/replay", { workflowId, since });
    const secondReplay = await eventually("the second replay to complete", async () => {
      const { body } = await call("GET", `/replays/${second.body.replayId}`);
      expect(body.status).toBe("completed");
      return body;
    });

    // Assess
    expect(replay.body).toMatchObject({
      workflowId,
      status: "completed",
      matched: 30,
      replayed: 30,
    });
    expect(started.status).toBe(202);
    expect((counted.get(metrics.names.deliveryReplayed) ?? 0) - replayedBefore).toBe(30);
    const requests = receiver.requestsTo("/replay-me");
    expect(requests).toHaveLength(60);
    const replayed = requests.filter((r) => r.headers["x-delivery-attempt"] === "2");
    expect(new Set(replayed.map((r) => r.headers["x-delivery-id"])).size).toBe(30);
    // 20 a second: the last ten wait a second on the lane. Measured from the request, which a
    // busy machine can only lengthen; from the first arrival, a late first twenty shortened it.
    const last = Math.max(...replayed.map((r) => r.receivedAt));
    expect(last - askedAt).toBeGreaterThanOrEqual(1000);
    expect(secondReplay).toMatchObject({ matched: 0, replayed: 0 });
    expect((await call("GET", "/replays/nx-unknown")).status).toBe(404);
    expect((await call("POST", "/deliveries/replay", { workflowId })).status).toBe(400);
    expect(
      (
        await call("POST", "/deliveries/replay", {
          workflowId,
          since,
          until: "2000-01-01T00:00:00Z",
        })
      ).body.error.message,
    ).toBe("until: must not be before since");
  });
});

describe("listing workflows through the API", () => {
  it("pages them oldest first, and still answers a client that ignores paging with every one", async () => {
    // Prepare
    for (let i = 0; i < 3; i++) await webhookWorkflow(`/paged-${i}`);

    // Act
    const everything = await call("GET", "/workflows");
    const pages = [];
    let nextToken: string | null = null;
    do {
      const page: { body: { workflows: Array<{ id: string }>; nextToken: string | null } } =
        await call("GET", `/workflows?limit=2${nextToken ? `&nextToken=${nextToken}` : ""}`);
      pages.push(page.body);
      nextToken = page.body.nextToken;
    } while (nextToken !== null);
    const refused = await call("GET", "/workflows?limit=0");

    // Assess
    expect(everything.body.nextToken).toBeNull();
    expect(pages.flatMap((page) => page.workflows.map((w) => w.id))).toEqual(
      everything.body.workflows.map((w: { id: string }) => w.id),
    );
    expect(pages.slice(0, -1).every((page) => page.workflows.length === 2)).toBe(true);
    const created = everything.body.workflows.map((w: { createdAt: string }) => w.createdAt);
    expect(created).toEqual([...created].sort());
    expect(refused.status).toBe(400);
  });
});
