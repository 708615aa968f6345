import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** Errors injected into an SDK client, counted. */
export interface InjectedErrors {
  /** How many commands failed so far. */
  count(): number;
  remove(): void;
}

/**
 * Makes `client` fail its next `times` commands named `commandName` (such as `PutItemCommand`)
 * with the error `make` returns, before they leave the process, as the service would answer.
 */
export function injectErrors(
  client: DynamoDBClient,
  commandName: string,
  make: () => Error,
  times = Number.POSITIVE_INFINITY,
): InjectedErrors {
  const name = `inject-${commandName}-${Math.random().toString(36).slice(2)}`;
  let injected = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName || injected >= times) return next(args);
      injected += 1;
      throw make();
    },
    { step: "initialize", name },
  );
  return {
    count: () => injected,
    remove: () => {
      client.middlewareStack.remove(name);
    },
  };
}
