import type { TestProject } from "vitest/node";
import { type DynamoDbLocal, startDynamoDbLocal } from "#infra/local/dynamodb-local";

declare module "vitest" {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    /** Where that DynamoDB Local accepts connections. */
    dynamoListensOn: string;
  }
}

interface SharedDynamoDbLocal {
  readonly started: Promise<DynamoDbLocal>;
  users: number;
}

/**
 * Vitest runs a project's global setup in its own module graph, so a module variable would not
 * be seen by the next project: the one DynamoDB Local of the run is kept on the main process.
 */
const SHARED = Symbol.for("workflow-webhooks.test.dynamoDbLocal");
const registry = globalThis as typeof globalThis & { [SHARED]?: SharedDynamoDbLocal };

/**
 * One DynamoDB Local for the whole run, shared by every project that lists this setup (the
 * integration and end-to-end tests) and stopped, by its process id, after the last of them.
 * Each test file makes tables with its own prefix.
 */
export default async function setup(project: TestProject) {
  registry[SHARED] ??= { started: startDynamoDbLocal(), users: 0 };
  const shared = registry[SHARED];
  shared.users++;
  const dynamo = await shared.started;
  project.provide("dynamoEndpoint", dynamo.endpoint);
  project.provide("dynamoListensOn", dynamo.listensOn);
  return async () => {
    shared.users--;
    if (shared.users > 0) return;
    delete registry[SHARED];
    await dynamo.stop();
  };
}
