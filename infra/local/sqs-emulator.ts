import { createServer } from "node:http";
import { createRequestHandler } from "local-aws-sqs";
import { close, httpUrl, listen, localAccountId, localRegion, loopback } from "./net.ts";

export interface SqsEmulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

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
  const server = createServer(requestHandler);
  const port = await listen(server, options.port ?? 0, host);
  // Queue URLs are built from the service's port, which is only known once bound.
  service.PORT = port;
  return {
    endpoint: httpUrl(host, port),
    async stop() {
      await close(server);
      // Drops every message with its visibility and retention timers.
      service.resetAll();
    },
  };
}
