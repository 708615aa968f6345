/**
 * Brings DynamoDB Local to the speed it keeps. It is a Java process, and its code runs slowly
 * until the JVM has compiled it: measured on this kind of machine, a request costs about 3.5 ms
 * of its CPU in the first 6,000 and about 0.6 ms after 30,000. DynamoDB has no such warm-up,
 * so a section measured on a cold DynamoDB Local would be measuring the JVM's compiler.
 */
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";

/** Requests before DynamoDB Local's cost per request stops falling (see above). */
export const WARM_UP_REQUESTS = 30_000;
/** Requests in flight: as many as the lanes keep in flight under load. */
const CONCURRENCY = 16;
const TABLE = "bench-warm-up";
const INDEX = "byGroup";
/** Partitions of the index, so the warm-up queries read a few items each, as the handlers do. */
const GROUPS = 64;
/** About a stored delivery body: the size the handlers' writes have. */
const FILLER = "x".repeat(900);
/** Requests per item: put, conditional update, consistent get, index query, delete. */
const REQUESTS_PER_ITEM = 5;

/**
 * Runs about `requests` requests of the kinds the handlers make (conditional puts and updates,
 * consistent reads, index queries, deletes) against a table of its own, then deletes it.
 * Nothing of it is counted: it runs before the counters are reset.
 */
export async function warmUpDynamoDbLocal(requests = WARM_UP_REQUESTS): Promise<void> {
  const client = new DynamoDBClient({});
  const documents = DynamoDBDocumentClient.from(client);
  try {
    await client.send(
      new CreateTableCommand({
        TableName: TABLE,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
          { AttributeName: "group", AttributeType: "S" },
          { AttributeName: "at", AttributeType: "N" },
        ],
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: INDEX,
            KeySchema: [
              { AttributeName: "group", KeyType: "HASH" },
              { AttributeName: "at", KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "KEYS_ONLY" },
          },
        ],
      }),
    );
    await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: TABLE });
    const items = Math.ceil(requests / REQUESTS_PER_ITEM);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < items) {
          const index = next++;
          await cycle(documents, index);
        }
      }),
    );
  } finally {
    await client.send(new DeleteTableCommand({ TableName: TABLE })).catch(() => {});
    client.destroy();
  }
}

async function cycle(documents: DynamoDBDocumentClient, index: number): Promise<void> {
  const key = { pk: `item-${index}`, sk: "STATE" };
  const group = `group-${index % GROUPS}`;
  await documents.send(
    new PutCommand({
      TableName: TABLE,
      Item: { ...key, group, at: index, status: "pending", body: FILLER },
      ConditionExpression: "attribute_not_exists(pk)",
    }),
  );
  await documents.send(
    new UpdateCommand({
      TableName: TABLE,
      Key: key,
      UpdateExpression: "SET #status = :done, attempts = :one REMOVE body",
      ConditionExpression: "#status = :pending",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":done": "done", ":pending": "pending", ":one": 1 },
    }),
  );
  await documents.send(new GetCommand({ TableName: TABLE, Key: key, ConsistentRead: true }));
  await documents.send(
    new QueryCommand({
      TableName: TABLE,
      IndexName: INDEX,
      KeyConditionExpression: "#group = :group",
      ExpressionAttributeNames: { "#group": "group" },
      ExpressionAttributeValues: { ":group": group },
      ScanIndexForward: false,
      Limit: 10,
    }),
  );
  // Every other item stays, so the table grows as the real ones do.
  if (index % 2 === 0) await documents.send(new DeleteCommand({ TableName: TABLE, Key: key }));
}
