import { randomUUID } from "node:crypto";
import type { Context } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { newEnrollment } from "#domain/enrollment";
import { STEP_STALL_MS } from "#domain/open-work";
import { metrics } from "#shared/contract";
import { injectErrors } from "#test/injected-errors";
import { type LocalAws, startLocalAws } from "#test/local-aws";

/**
 * The sweep function as Lambda runs it: each repair is a structured log line with the ids of the
 * work it concerns, the run's counts are metrics under the `sweep` service, and a run in which
 * some work could not be looked at fails, after logging and counting.
 */
type SweepHandler = (event: unknown, context: Context) => Promise<Record<string, unknown>>;

let aws: LocalAws;
let handler: SweepHandler;
let output: string[] = [];
const context = {
  functionName: "sweep",
  awsRequestId: "r-1",
  getRemainingTimeInMillis: () => 60_000,
} as Context;

beforeAll(async () => {
  aws = await startLocalAws();
  // The handler reads its configuration once, when imported.
  Object.assign(process.env, aws.env, {
    POWERTOOLS_SERVICE_NAME: "sweep",
    POWERTOOLS_LOG_LEVEL: "INFO",
    POWERTOOLS_METRICS_DISABLED: "false",
  });
  handler = (await import("../../functions/sweep/handler.ts")).handler as SweepHandler;
  // Logs and metrics go to stdout and stderr, as on Lambda, where CloudWatch reads both.
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, "write").mockImplementation((chunk) => {
      output.push(String(chunk));
      return true;
    });
  }
});

afterEach(() => {
  output = [];
});

afterAll(async () => {
  vi.restoreAllMocks();
  await aws?.stop();
});

/** An enrollment whose step was lost longer ago than a step may take. */
async function stuckEnrollment() {
  const enrollment = newEnrollment({
    enrollmentId: randomUUID(),
    workflowId: randomUUID(),
    objectType: "contacts",
    objectId: randomUUID(),
    definition: [{ id: randomUUID(), type: "setProperty", property: "a", value: "1" }],
    now: Date.now() - STEP_STALL_MS - 1_000,
  });
  await new EnrollmentsTable(aws.documents, aws.resources.tables.enrollments).create(enrollment);
  return enrollment;
}

/** The JSON lines written. */
function lines(): Record<string, unknown>[] {
  return output
    .flatMap((chunk) => chunk.split("\n"))
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("the sweep function", () => {
  it("logs each repair with the work's ids, and counts the run in its metrics", async () => {
    // Prepare
    const enrollment = await stuckEnrollment();

    // Act
    const summary = await handler({}, context);
    const sent = await aws.drain("workflowSteps");

    // Assess
    expect(summary).toEqual({
      resumed: 1,
      failed: 0,
      postponed: 0,
      cleared: 0,
      skipped: 0,
      error: 0,
      complete: true,
    });
    expect(sent).toEqual([
      { type: "advance", enrollmentId: enrollment.enrollmentId, actionIndex: 0 },
    ]);
    const written = lines();
    expect(written.filter((line) => line.message === "sweeper repair")).toEqual([
      expect.objectContaining({
        level: "WARN",
        service: "sweep",
        repair: "resumed",
        work: "enrollment",
        enrollmentId: enrollment.enrollmentId,
        workflowId: enrollment.workflowId,
        actionIndex: 0,
        sent: "advance",
        reason: "setProperty action 0 was pending with no step to move it",
      }),
    ]);
    const emf = written.find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({
      [metrics.names.sweeperResumed]: 1,
      [metrics.names.sweeperExamined]: 1,
      [metrics.serviceDimension]: "sweep",
      _aws: {
        CloudWatchMetrics: [
          expect.objectContaining({
            Namespace: metrics.namespace,
            Dimensions: [[metrics.serviceDimension]],
          }),
        ],
      },
    });
    expect(emf).not.toHaveProperty(metrics.names.sweeperFailed);
  });

  it("fails a run in which some work could not be looked at, after logging and counting", async () => {
    // Prepare: the sweep function's own DynamoDB client fails the first read of an item
    const { dynamoDocuments } = await import("#adapters/dynamodb-client");
    const enrollment = await stuckEnrollment();
    const outage = injectErrors(
      dynamoDocuments,
      "GetItemCommand",
      () => new Error("injected: DynamoDB is unavailable"),
      1,
    );

    // Act
    const run = await handler({}, context).catch((error: unknown) => error);
    outage.remove();
    const next = await handler({}, context);

    // Assess
    expect(run).toMatchObject({
      name: "SweepIncompleteError",
      message: "1 overdue items could not be looked at; the next run tries again",
    });
    expect(
      lines().find((line) => line.message === "sweeper could not look at overdue work"),
    ).toMatchObject({ level: "ERROR", enrollmentId: enrollment.enrollmentId });
    expect(next).toMatchObject({ resumed: 1, error: 0 });
  });
});
