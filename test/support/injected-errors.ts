import type { MiddlewareStack } from "@smithy/types";

/** Errors injected into an SDK client, counted. */
export interface InjectedErrors {
  /** How many commands failed so far. */
  count(): number;
  remove(): void;
}

/** An AWS SDK client (or DynamoDB document client), whose middleware stack takes the injection. */
export interface InjectableClient {
  /** Any client's stack, whatever its input and output types. */
  readonly middlewareStack: MiddlewareStack<any, any>;
}

/**
 * Makes `client` fail its next `times` commands named `commandName` (such as `PutItemCommand`)
 * with the error `make` returns, before they leave the process, as the service would answer.
 * `when` narrows the commands to those whose input it accepts (the input as the caller gave it).
 */
export function injectErrors(
  client: InjectableClient,
  commandName: string,
  make: () => Error,
  times = Number.POSITIVE_INFINITY,
  when: (input: Record<string, unknown>) => boolean = () => true,
): InjectedErrors {
  const name = `inject-${commandName}-${Math.random().toString(36).slice(2)}`;
  let injected = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName || injected >= times) return next(args);
      if (!when(args.input as Record<string, unknown>)) return next(args);
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

/**
 * A fault as the service answers it: a server error (503), which no condition explains, so the
 * code under test cannot take it for a lost race. `service` names it in the message.
 */
export function serviceUnavailable(service?: string): () => Error {
  return () =>
    Object.assign(new Error(`injected: ${service ? `${service} is ` : ""}unavailable`), {
      name: "ServiceUnavailable",
      $fault: "server",
      $metadata: { httpStatusCode: 503 },
    });
}
