/**
 * The HTTP delivery client: sends one webhook request over HTTPS and reports what happened,
 * never throwing. Every connection goes through the checked connector (`checked-connector.ts`),
 * which resolves the target, refuses non-public addresses and dials exactly the address it checked.
 */
import { Agent, type Dispatcher } from "undici";
import {
  addressRefusal,
  ConnectFailureError,
  type ConnectFailureKind,
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

export interface WebhookClient {
  send(request: OutgoingRequest): Promise<WebhookResult>;
  /** Closes the pooled connections; waits for requests in flight. */
  close(): Promise<void>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BODY_BYTES = 4_096;

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
  const connect = checkedConnector({
    allowPrivateTargets: settings.allowPrivateTargets,
    connectTimeoutMs: settings.connectTimeoutMs,
    ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
    ...(options.ca === undefined ? {} : { secureContext: secureContextTrusting(options.ca) }),
  });
  // undici follows no redirects unless a redirect interceptor is composed in, and none is.
  const agent = new Agent({
    connect,
    // Backstops only: `send` enforces the response deadline itself, headers and body together.
    headersTimeout: settings.responseTimeoutMs + 1_000,
    bodyTimeout: settings.responseTimeoutMs + 1_000,
  });

  return {
    send: (request) => send(agent, request, settings),
    close: () => agent.close(),
  };
}

function send(
  agent: Agent,
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
    const failure = failureOf(error, limits.responseTimeoutMs);
    return fail(failure.kind, failure.message);
  };

  const invalid = invalidRequest(request, limits.allowPrivateTargets);
  if (invalid !== undefined) return Promise.resolve(fail(invalid.kind, invalid.message));
  const url = new URL(request.url);

  return new Promise<WebhookResult>((resolve) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    let responseTimer: NodeJS.Timeout | undefined;
    let statusCode = 0;
    let headers: Record<string, string> = {};
    const kept: Buffer[] = [];
    let keptBytes = 0;

    const settle = (result: WebhookResult, abortWith?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(backstop);
      clearTimeout(responseTimer);
      resolve(result);
      // Aborting destroys the socket: whatever the receiver still sends is never read.
      if (abortWith !== undefined && controller !== undefined && !controller.aborted) {
        controller.abort(abortWith);
      }
    };
    const respond = (bodyTruncated: boolean, abortWith?: Error) =>
      settle(
        {
          ok: true,
          response: {
            statusCode,
            headers,
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

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(requestController) {
        controller = requestController;
        if (settled) {
          requestController.abort(new Error("already settled"));
          return;
        }
        responseTimer ??= setTimeout(timeOut, limits.responseTimeoutMs);
      },
      onResponseStart(_controller, code, responseHeaders) {
        statusCode = code;
        headers = flattenHeaders(responseHeaders);
      },
      onResponseData(_controller, chunk) {
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
      },
      onResponseEnd() {
        // undici frees the connection for the next request one event-loop turn after the
        // response (a setImmediate of its own); answering after that turn lets a send that
        // follows at once reuse this connection instead of opening another.
        setImmediate(() => setImmediate(() => respond(false)));
      },
      onResponseError(_controller, error) {
        settle(failWith(error));
      },
    };

    try {
      agent.dispatch(
        {
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: request.method,
          headers: { ...request.headers },
          body: request.method === "GET" ? null : (request.body ?? null),
        },
        handler,
      );
    } catch (error) {
      settle(failWith(error));
    }
  });
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

/** Turns whatever undici or the connector raised into a kind and a readable message. */
function failureOf(
  error: unknown,
  responseTimeoutMs: number,
): DeliveryFailureError | ConnectFailureError {
  if (error instanceof DeliveryFailureError || error instanceof ConnectFailureError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = messageOf(error);
  switch (code) {
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return new DeliveryFailureError("timeout", `response timeout after ${responseTimeoutMs} ms`);
    case "UND_ERR_SOCKET":
    case "ECONNRESET":
    case "EPIPE":
      return new DeliveryFailureError("connect", `connection lost: ${message}`);
    default:
      return new DeliveryFailureError("other", message);
  }
}

function flattenHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter((entry): entry is [string, string | string[]] => entry[1] !== undefined)
      .map(([name, value]) => [
        name.toLowerCase(),
        Array.isArray(value) ? value.join(", ") : value,
      ]),
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
