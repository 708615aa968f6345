import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { sqsConsumer } from "#shared/sqs-consumer";

const context = { functionName: "lane-consumer", awsRequestId: "request-1" } as Context;

function batchOf(...ids: string[]): SQSEvent {
  return { Records: ids.map((messageId) => ({ messageId, body: messageId }) as SQSRecord) };
}

describe("a lane's partial batch responses", () => {
  it("process every record and report only those that threw, by message id", async () => {
    // Prepare
    const processed: string[] = [];
    const handler = sqsConsumer(async (record) => {
      if (record.body === "bad") throw new Error("malformed");
      processed.push(record.body);
    });

    // Act
    const response = await handler(batchOf("first", "bad", "last"), context);

    // Assess
    expect(processed.sort()).toEqual(["first", "last"]);
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "bad" }] });
  });

  it("report a batch that fails whole rather than throw, and an empty list when all went well", async () => {
    // Prepare
    const failing = sqsConsumer(async () => {
      throw new Error("table unavailable");
    });
    const passing = sqsConsumer(async () => {});

    // Act
    const failed = await failing(batchOf("one", "two"), context);
    const passed = await passing(batchOf("one", "two"), context);

    // Assess
    expect(failed).toEqual({
      batchItemFailures: [{ itemIdentifier: "one" }, { itemIdentifier: "two" }],
    });
    expect(passed).toEqual({ batchItemFailures: [] });
  });
});
