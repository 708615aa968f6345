import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { tracer } from "#shared/observability";

/**
 * The AWS SDK clients, created once per process. Endpoints come from the standard
 * `AWS_ENDPOINT_URL_*` variables, so the same code talks to AWS or to the local emulators.
 * Every AWS call of the functions goes through these three clients.
 */
export const dynamoDocuments = DynamoDBDocumentClient.from(
  tracer.captureAWSv3Client(new DynamoDBClient({})),
  { marshallOptions: { removeUndefinedValues: true } },
);

export const sqs = tracer.captureAWSv3Client(new SQSClient({}));

export const scheduler = tracer.captureAWSv3Client(new SchedulerClient({}));
