import { SQSClient } from "@aws-sdk/client-sqs";
import { tracer } from "#shared/observability";

/** The SQS client of a function, created once per process (see `dynamodb-client.ts`). */
export const sqs = tracer.captureAWSv3Client(new SQSClient({}));
