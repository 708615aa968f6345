import { SQSClient } from "@aws-sdk/client-sqs";

/** The SQS client of a function, created once per process (see `dynamodb-client.ts`). */
export const sqs = new SQSClient({});
