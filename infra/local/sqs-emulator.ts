import { createServer } from "node:http";
import { createRequestHandler } from "local-aws-sqs";
import { close, httpUrl, listen, localAccountId, localRegion, loopback } from "./net.ts";

export interface SqsEmulator {
  readonly endpoint: string;
  /**
   * Calls `listener` after every send to any queue, once the message is stored: the local
   * pollers wait on it instead of polling an idle queue, as Lambda's long polling answers as
   * soon as a message arrives. Returns how to stop listening.
   */
  onSend(listener: () => void): () => void;
  stop(): Promise<void>;
}

/** The JSON protocol names the action in this header, e.g. `AmazonSQS.SendMessageBatch`. */
const SEND_ACTION = /\.SendMessage(Batch)?$/;

/** Starts the in-process SQS emulator on loopback; port 0 (the default) picks a free one. */
export async function startSqsEmulator(
  options: { port?: number; host?: string } = {},
): Promise<SqsEmulator> {
  const host = options.host ?? loopback;
  const { service, requestHandler } = createRequestHandler({
    port: options.port ?? 0,
    hostname: host.includes(":") ? `[${host}]` : host,
    region: localRegion,
    accountId: localAccountId,
    // Runtimes are short-lived: re-creating a queue must not wait AWS's 60 seconds.
    emulateQueueCreationLifecycle: false,
  });
  const listeners = new Set<() => void>();
  const server = createServer((request, response) => {
    const target = request.headers["x-amz-target"];
    if (typeof target === "string" && SEND_ACTION.test(target)) {
      response.once("finish", () => {
        for (const listener of listeners) listener();
      });
    }
    requestHandler(request, response);
  });
  const port = await listen(server, options.port ?? 0, host);
  // Queue URLs are built from the service's port, which is only known once bound.
  service.PORT = port;
  return {
    endpoint: httpUrl(host, port),
    onSend(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      listeners.clear();
      await close(server);
      // Drops every message with its visibility and retention timers.
      service.resetAll();
    },
  };
}
