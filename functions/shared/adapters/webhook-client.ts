/**
 * The HTTP delivery client: sends one webhook request over HTTPS and reports what happened,
 * never throwing. It is Node's own HTTPS client with a keep-alive pool whose every connection
 * comes from the checked connector (`checked-connector.ts`), which resolves the target, refuses
 * non-public addresses and dials exactly the address it checked.
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import type { Duplex } from "node:stream";
import {
  addressRefusal,
  ConnectFailureError,
  type ConnectFailureKind,
  type Connector,
  checkedConnector,
  type Resolve,
} from "#adapters/checked-connector";
import { secureContextTrusting } from "#adapters/trust-store";
import { ValidationError } from "#domain/errors";
import { isIpLiteral, parseTargetUrl, unbracket } from "#domain/target-url";
import type { OutgoingRequest } from "#domain/webhook-request";

export interface WebhookResponse {
  readonly statusCode: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /** At most `maxBodyBytes` of the body, decoded as UTF-8. */
  readonly body: string;
  readonly bodyTruncated: boolean;
}

/** How a send failed: the connector's kinds, and "other" for what is wrong with the request. */
export type WebhookErrorKind = ConnectFailureKind | "other";

export type WebhookResult =
  | { readonly ok: true; readonly response: WebhookResponse; readonly durationMs: number }
  | {
      readonly ok: false;
      readonly error: string;
      readonly errorKind: WebhookErrorKind;
      readonly durationMs: number;
    };

export interface WebhookClientOptions {
  readonly allowPrivateTargets: boolean;
  /** Resolves a host name to addresses; defaults to node:dns lookup with all: true. */
  readonly resolve?: Resolve;
  /** Resolving, TCP and TLS handshake together; default 3000. */
  readonly connectTimeoutMs?: number;
  /** From the request being written to the last byte of the body kept; default 30000. */
  readonly responseTimeoutMs?: number;
  /** Bytes of the response body kept; default 4096. */
  readonly maxBodyBytes?: number;
  /** Extra trusted CA certificates (PEM), e.g. a local receiver's. NODE_EXTRA_CA_CERTS also works. */
  readonly ca?: string | readonly string[];
}

/** Settings of one send that differ from the client's. */
export interface SendOptions {
  /** Bytes of the response body kept, instead of the client's `maxBodyBytes`. */
  readonly maxBodyBytes?: number;
}

export interface WebhookClient {
  send(request: OutgoingRequest, options?: SendOptions): Promise<WebhookResult>;
  /** Closes the pooled connections; waits for requests in flight. */
  close(): Promise<void>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BODY_BYTES = 4_096;
/**
 * How long a pooled connection may stay idle before the client closes it (less when the receiver
 * announces a shorter keep-alive): receivers close idle connections after a few seconds, and
 * reusing one they are closing fails the request.
 */
const IDLE_CONNECTION_MS = 4_000;

/** A failure the client finds itself, in the request or the response, rather than in connecting. */
class DeliveryFailureError extends Error {
  override name = "DeliveryFailureError";
  constructor(
    readonly kind: WebhookErrorKind,
    message: string,
  ) {
    super(message);
  }
}

interface SendSettings {
  readonly allowPrivateTargets: boolean;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly maxBodyBytes: number;
}

/** Creates a delivery client with one connection pool, kept alive between sends. */
export function createWebhookClient(options: WebhookClientOptions): WebhookClient {
  const settings: SendSettings = {
    allowPrivateTargets: options.allowPrivateTargets,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    responseTimeoutMs: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  };
  for (const [name, least] of [
    ["connectTimeoutMs", 1],
    ["responseTimeoutMs", 1],
    ["maxBodyBytes", 0],
  ] as const) {
    const value = settings[name];
    if (!Number.isSafeInteger(value) || value < least) {
      throw new RangeError(`${name} must be an integer of at least ${least}, got ${value}`);
    }
  }
  const agent = new CheckedAgent(
    checkedConnector({
      allowPrivateTargets: settings.allowPrivateTargets,
      connectTimeoutMs: settings.connectTimeoutMs,
      ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
      ...(options.ca === undefined ? {} : { secureContext: secureContextTrusting(options.ca) }),
    }),
  );

  return {
    send: (request, sendOptions) =>
      send(
        agent,
        request,
        sendOptions?.maxBodyBytes === undefined
          ? settings
          : { ...settings, maxBodyBytes: sendOptions.maxBodyBytes },
      ),
    close: () => agent.close(),
  };
}

/**
 * A keep-alive pool that opens connections only through the checked connector. Node's client
 * follows no redirects; a 3xx comes back as it is.
 */
class CheckedAgent extends Agent {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly connector: Connector) {
    super({ keepAlive: true, timeout: IDLE_CONNECTION_MS });
  }

  override createConnection(
    options: RequestOptions,
    callback?: (error: Error | null, socket: Duplex) => void,
  ): undefined {
    const target = { protocol: "https:", hostname: options.host ?? "", port: options.port ?? 443 };
    this.connector(target, (error, socket) => callback?.(error, socket as Duplex));
    return undefined;
  }

  /** Runs one request, so that `close` can wait for it. */
  track(sending: Promise<WebhookResult>): Promise<WebhookResult> {
    // Waited for, never failed: `sending` reaches its caller, which handles its outcome.
    const settled = sending.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return sending;
  }

  /** Waits for the requests in flight, then closes every pooled connection. */
  async close(): Promise<void> {
    await Promise.all(this.inFlight);
    this.destroy();
  }
}

function send(
  agent: CheckedAgent,
  request: OutgoingRequest,
  limits: SendSettings,
): Promise<WebhookResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const fail = (kind: WebhookErrorKind, error: string): WebhookResult => ({
    ok: false,
    error,
    errorKind: kind,
    durationMs: elapsed(),
  });
  const failWith = (error: unknown): WebhookResult => {
    const failure = failureOf(error);
    return fail(failure.kind, failure.message);
  };

  const invalid = invalidRequest(request, limits.allowPrivateTargets);
  if (invalid !== undefined) return Promise.resolve(fail(invalid.kind, invalid.message));
  const url = new URL(request.url);

  return agent.track(
    new Promise<WebhookResult>((resolve) => {
      let settled = false;
      let outgoing: ClientRequest | undefined;
      let responseTimer: NodeJS.Timeout | undefined;
      let response: IncomingMessage | undefined;
      const kept: Buffer[] = [];
      let keptBytes = 0;

      const settle = (result: WebhookResult, abortWith?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(backstop);
        clearTimeout(responseTimer);
        resolve(result);
        // Destroying the request destroys its socket: whatever the receiver still sends is never read.
        if (abortWith !== undefined) outgoing?.destroy(abortWith);
      };
      const respond = (bodyTruncated: boolean, abortWith?: Error) =>
        settle(
          {
            ok: true,
            response: {
              statusCode: response?.statusCode ?? 0,
              headers: flattenHeaders(response?.headersDistinct ?? {}),
              body: Buffer.concat(kept).subarray(0, limits.maxBodyBytes).toString("utf8"),
              bodyTruncated,
            },
            durationMs: elapsed(),
          },
          abortWith,
        );
      const timeOut = () =>
        settle(
          fail("timeout", `response timeout after ${limits.responseTimeoutMs} ms`),
          new DeliveryFailureError("timeout", "response timeout"),
        );
      // The connector keeps its own deadline; this one only guarantees that `send` always ends.
      const backstop = setTimeout(
        () => settle(fail("timeout", `timeout after ${elapsed()} ms`), new Error("deadline")),
        limits.connectTimeoutMs + limits.responseTimeoutMs + 1_000,
      );

      try {
        outgoing = httpsRequest(url, {
          agent,
          method: request.method,
          headers: { ...request.headers },
        });
      } catch (error) {
        settle(failWith(error));
        return;
      }
      // The response deadline runs from the moment the request has a connection to go out on.
      outgoing.once("socket", () => {
        responseTimer ??= setTimeout(timeOut, limits.responseTimeoutMs);
      });
      outgoing.on("error", (error) => settle(failWith(error)));
      outgoing.once("response", (incoming) => {
        response = incoming;
        incoming.on("data", (chunk: Buffer) => {
          if (settled) return;
          const room = limits.maxBodyBytes - keptBytes;
          if (chunk.length > room) {
            if (room > 0) kept.push(chunk.subarray(0, room));
            keptBytes += room;
            respond(true, new Error("response body bound reached"));
            return;
          }
          kept.push(chunk);
          keptBytes += chunk.length;
        });
        incoming.once("end", () => respond(false));
        incoming.on("error", (error) => settle(failWith(error)));
      });
      try {
        outgoing.end(request.method === "GET" ? undefined : (request.body ?? ""));
      } catch (error) {
        // Node refuses some requests only as they end (a Trailer header on a GET, for one).
        outgoing.destroy();
        settle(failWith(error));
      }
    }),
  );
}

/** Checks that need no network: the URL policy, the method, and IP-literal targets. */
function invalidRequest(
  request: OutgoingRequest,
  allowPrivateTargets: boolean,
): DeliveryFailureError | ConnectFailureError | undefined {
  let url: URL;
  try {
    url = parseTargetUrl(request.url);
  } catch (error) {
    const rule = error instanceof ValidationError ? error.message : "url: is not a valid URL";
    return new DeliveryFailureError("refused", `refused: ${rule}`);
  }
  if (request.method !== "GET" && request.method !== "POST") {
    return new DeliveryFailureError("other", `method ${String(request.method)} is not supported`);
  }
  if (request.method === "GET" && request.body !== undefined && request.body !== "") {
    return new DeliveryFailureError("other", "a GET request carries no body");
  }
  // The connector verifies the certificate against the URL's host; a Host header would
  // send the request to a different virtual host than the one verified.
  if (Object.keys(request.headers).some((name) => name.toLowerCase() === "host")) {
    return new DeliveryFailureError("other", "the host header is set from the url");
  }
  const host = unbracket(url.hostname);
  if (!allowPrivateTargets && isIpLiteral(host)) {
    return addressRefusal(host, host);
  }
  return undefined;
}

/** Turns whatever Node's client or the connector raised into a kind and a readable message. */
function failureOf(error: unknown): DeliveryFailureError | ConnectFailureError {
  if (error instanceof DeliveryFailureError || error instanceof ConnectFailureError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = messageOf(error);
  switch (code) {
    case "ECONNRESET":
    case "EPIPE":
    case "ERR_STREAM_PREMATURE_CLOSE":
      return new DeliveryFailureError("connect", `connection lost: ${message}`);
    default:
      return new DeliveryFailureError("other", message);
  }
}

/** Lower-cased names, each header's values joined with ", " as they came. */
function flattenHeaders(headers: NodeJS.Dict<string[]>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter((entry): entry is [string, string[]] => entry[1] !== undefined)
      .map(([name, values]) => [name.toLowerCase(), values.join(", ")]),
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
