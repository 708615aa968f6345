import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localCredentials, localRegion } from "#infra/local/net";
import { type SqsEmulator, startSqsEmulator } from "#infra/local/sqs-emulator";

let emulator: SqsEmulator;
let sqs: SQSClient;
let queueUrl: string;

beforeAll(async () => {
  emulator = await startSqsEmulator();
  sqs = new SQSClient({
    endpoint: emulator.endpoint,
    region: localRegion,
    credentials: localCredentials,
  });
  ({ QueueUrl: queueUrl = "" } = await sqs.send(new CreateQueueCommand({ QueueName: "news" })));
});

afterAll(async () => {
  sqs?.destroy();
  await emulator?.stop();
});

describe("the local SQS emulator", () => {
  it("tells its listeners of each send once the message can be received, and of nothing else", async () => {
    // Prepare: a listener that receives as soon as it hears of a send
    const received: string[] = [];
    const heard: Promise<void>[] = [];
    const stop = emulator.onSend(() => {
      heard.push(
        sqs
          .send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }))
          .then(({ Messages }) => {
            for (const message of Messages ?? []) received.push(message.Body ?? "");
          }),
      );
    });

    // Act
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "one" }));
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: "a", MessageBody: "two" },
          { Id: "b", MessageBody: "three" },
        ],
      }),
    );
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 }));
    stop();
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "unheard" }));
    await Promise.all(heard);

    // Assess
    expect(heard).toHaveLength(2);
    expect(received.sort()).toEqual(["one", "three", "two"]);
  });
});
