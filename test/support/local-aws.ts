import { randomBytes } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { inject } from "vitest";
import { localCredentials, localRegion } from "#infra/local/net";
import { createResources, type LocalResources } from "#infra/local/resources";
import { startSqsEmulator } from "#infra/local/sqs-emulator";
import type { QueueKey } from "#shared/contract";

/** Tables in the run's DynamoDB Local and queues in a fresh SQS emulator, for one test file. */
export interface LocalAws {
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly resources: LocalResources;
  /** The variables that point the functions at these tables, queues and endpoints. */
  readonly env: Record<string, string>;
  /** Receives (and deletes) every message now on a queue, parsed. */
  drain(queue: QueueKey): Promise<unknown[]>;
  stop(): Promise<void>;
}

export async function startLocalAws(
  options: { visibilityTimeoutSeconds?: number } = {},
): Promise<LocalAws> {
  const sqsEmulator = await startSqsEmulator();
  const dynamodb = new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: localRegion,
    credentials: localCredentials,
  });
  const sqs = new SQSClient({
    endpoint: sqsEmulator.endpoint,
    region: localRegion,
    credentials: localCredentials,
  });
  const resources = await createResources(
    { dynamodb, sqs },
    { namePrefix: `t${randomBytes(4).toString("hex")}-`, ...options },
  );
  const documents = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return {
    documents,
    sqs,
    resources,
    env: {
      ...resources.env,
      AWS_REGION: localRegion,
      AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: inject("dynamoEndpoint"),
      AWS_ENDPOINT_URL_SQS: sqsEmulator.endpoint,
    },
    async drain(queue) {
      const url = resources.queues[queue].url;
      const bodies: unknown[] = [];
      for (;;) {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        );
        if (!Messages?.length) return bodies;
        for (const message of Messages) {
          bodies.push(JSON.parse(message.Body ?? "null"));
          await sqs.send(
            new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }),
          );
        }
      }
    },
    async stop() {
      documents.destroy();
      sqs.destroy();
      await sqsEmulator.stop();
    },
  };
}
