import { randomUUID } from "node:crypto";
import { ConditionalCheckFailedException, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { RecordsTable } from "#adapters/records-table";
import { putRecord } from "#app/records";
import { StaleStateError } from "#domain/errors";
import { localCredentials, localRegion } from "#infra/local/net";
import { injectErrors } from "#test/injected-errors";
import { type LocalAws, startLocalAws } from "#test/local-aws";
import { replyForError } from "../../functions/api/http.ts";

/**
 * Writes that lose a race to another request are retried, and answered 409 when they keep losing,
 * never 500. Lost races are injected where DynamoDB Local would make them rare.
 */
let aws: LocalAws;
let dynamodb: DynamoDBClient;
let records: RecordsTable;

beforeAll(async () => {
  aws = await startLocalAws();
  dynamodb = new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: localRegion,
    credentials: localCredentials,
  });
  const documents = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  records = new RecordsTable(documents, aws.resources.tables.records);
});

afterAll(async () => {
  dynamodb?.destroy();
  await aws?.stop();
});

const lostRace = () =>
  new ConditionalCheckFailedException({
    message: "The conditional request failed",
    $metadata: { httpStatusCode: 400 },
  });

describe("a record write that loses races", () => {
  it("tries again after a lost race and keeps the change", async () => {
    // Prepare
    const objectId = randomUUID();
    const deps = { records, now: Date.now, portalId: 1 };
    await putRecord(deps, "contacts", objectId, { properties: { n: "first" } });
    const races = injectErrors(dynamodb, "PutItemCommand", lostRace, 3);

    // Act
    const written = await putRecord(deps, "contacts", objectId, { properties: { n: "second" } });
    races.remove();

    // Assess
    expect(races.count()).toBe(3);
    expect(written.created).toBe(false);
    const stored = await records.get({ objectType: "contacts", objectId });
    expect(stored?.properties.n?.map((version) => version.value)).toEqual(["second", "first"]);
  });

  it("gives up after a bounded time when it keeps losing, and the API answers 409", async () => {
    // Prepare
    const races = injectErrors(dynamodb, "PutItemCommand", lostRace);
    const started = performance.now();

    // Act
    const failure = await putRecord(
      { records, now: Date.now, portalId: 1 },
      "contacts",
      randomUUID(),
      { properties: { n: "lost" } },
    ).catch((error: unknown) => error);
    races.remove();

    // Assess
    expect(failure).toBeInstanceOf(StaleStateError);
    expect(races.count()).toBe(8);
    expect(performance.now() - started).toBeLessThan(5_000);
    const { reply, expected } = replyForError(failure);
    expect(expected).toBe(true);
    expect(reply).toEqual({
      statusCode: 409,
      body: {
        error: {
          code: "conflict",
          message: expect.stringMatching(/kept changing while being written; .* try again$/),
        },
      },
    });
  });
});
