import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, type TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";

/**
 * The DynamoDB client of a function, created once per process. Each AWS client has a module of its
 * own, so a function's bundle carries only the clients its handler imports. Endpoints come from
 * the standard `AWS_ENDPOINT_URL_*` variables, so the same code talks to AWS or to the local
 * emulators.
 */
export const dynamoDocuments = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});

/** One write of a transaction, which a table can hand to another that runs the transaction. */
export type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];
