import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { newEnrollment } from "#domain/enrollment";
import { STEP_STALL_MS } from "#domain/open-work";
import { localCredentials, localRegion } from "#infra/local/net";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";
import { apiClient } from "#test/api-client";
import { eventually } from "#test/eventually";

/**
 * `npm start` runs the real sweep handler on a timer, as the stack's schedule runs it on AWS: an
 * enrollment whose step was lost long ago is resumed and completes, through the local lanes.
 */
describe("the local runtime's sweeper", () => {
  let runtime: LocalRuntime;
  let dynamodb: DynamoDBClient;

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: `sweep${randomUUID().slice(0, 8)}-`,
      logLevel: "SILENT",
      timeScale: 0.001,
      sweepIntervalMs: 200,
    });
    dynamodb = new DynamoDBClient({
      endpoint: runtime.dynamoEndpoint,
      region: localRegion,
      credentials: localCredentials,
    });
  });

  afterAll(async () => {
    dynamodb?.destroy();
    await runtime?.stop();
  });

  it("resumes an enrollment whose step was lost, which then completes", async () => {
    // Prepare: a contact, and an enrollment that became current longer ago than a step may take,
    // with no step message anywhere
    const call = apiClient(runtime.apiUrl);
    const objectId = randomUUID();
    await call("PUT", `/objects/contacts/${objectId}`, {
      properties: { email: "ada@example.com" },
    });
    const enrollments = new EnrollmentsTable(
      DynamoDBDocumentClient.from(dynamodb),
      runtime.resources.tables.enrollments,
    );
    const enrollment = newEnrollment({
      enrollmentId: randomUUID(),
      workflowId: randomUUID(),
      objectType: "contacts",
      objectId,
      definition: [{ id: randomUUID(), type: "setProperty", property: "swept", value: "yes" }],
      now: Date.now() - STEP_STALL_MS - 1_000,
    });
    await enrollments.create(enrollment);

    // Act
    const read = await eventually("the enrollment completed", async () => {
      const response = await call("GET", `/enrollments/${enrollment.enrollmentId}`);
      expect(response.body.status).toBe("completed");
      return response;
    });
    const record = await call("GET", `/objects/contacts/${objectId}`);

    // Assess
    expect(read.body.actions).toEqual([expect.objectContaining({ status: "succeeded" })]);
    expect(record.body.properties.swept.value).toBe("yes");
    expect(runtime.sweepRuns()).toBeGreaterThan(0);
  });
});
