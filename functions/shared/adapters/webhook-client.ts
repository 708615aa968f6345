/**
 * The HTTP delivery client: sends one webhook request over HTTPS and reports what happened,
 * never throwing. Every connection goes through a connector that resolves the target, refuses
 * non-public addresses and dials exactly the address it checked, so DNS rebinding cannot slip a
 * private address in between the check and the connection.
 */
import { ADDRCONFIG } from "node:dns";
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { isIP, type Socket } from "node:net";
import tls, { type SecureContext } from "node:tls";
import { Agent, buildConnector, type Dispatcher } from "undici";
import { ValidationError } from "#domain/errors";
import { classifyAddress, isIpLiteral, parseTargetUrl, unbracket } from "#domain/target-url";
import type { OutgoingRequest } from "#domain/webhook-request";

export interface WebhookResponse {
  readonly statusCode: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /** At most `maxBodyBytes` of the body, decoded as UTF-8. */
  readonly body: string;
  readonly bodyTruncated: boolean;
}

export type WebhookErrorKind = "refused" | "dns" | "connect" | "tls" | "timeout" | "other";

export type WebhookResult =
  | { readonly ok: true; readonly response: WebhookResponse; readonly durationMs: number }
  | {
      readonly ok: false;
      readonly error: string;
      readonly errorKind: WebhookErrorKind;
      readonly durationMs: number;
    };

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export interface WebhookClientOptions {
  readonly allowPrivateTargets: boolean;
  /** Resolves a host name to addresses; defaults to node:dns lookup with all: true. */
  readonly resolve?: (hostname: string) => Promise<Array<ResolvedAddress>>;
  /** Resolving, TCP and TLS handshake together; default 3000. */
  readonly connectTimeoutMs?: number;
  /** From the request being written to the last byte of the body kept; default 30000. */
  readonly responseTimeoutMs?: number;
  /** Bytes of the response body kept; default 4096. */
  readonly maxBodyBytes?: number;
  /** Extra trusted CA certificates (PEM), e.g. a local receiver's. NODE_EXTRA_CA_CERTS also works. */
  readonly ca?: string | readonly string[];
  /** Test seam: called with the address about to be dialled; throw to refuse. */
  readonly beforeConnect?: (address: string, port: number) => void;
}

export interface WebhookClient {
  send(request: OutgoingRequest): Promise<WebhookResult>;
  /** Closes the pooled connections; waits for requests in flight. */
  close(): Promise<void>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BODY_BYTES = 4_096;

/** A failure with the kind the delivery records; raised inside the connector, read in `send`. */
class DeliveryFailureError extends Error {
  override name = "DeliveryFailureError";
  constructor(
    readonly kind: WebhookErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Socket errors after which the next resolved address is worth a try. */
const NEXT_ADDRESS_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "EAFNOSUPPORT",
]);

interface ConnectorSettings {
  readonly allowPrivateTargets: boolean;
  readonly resolve: (hostname: string) => Promise<Array<ResolvedAddress>>;
  readonly connectTimeoutMs: number;
  readonly secureContext: SecureContext | undefined;
  readonly beforeConnect: ((address: string, port: number) => void) | undefined;
}

/** Creates a delivery client with one connection pool, kept alive between sends. */
export function createWebhookClient(options: WebhookClientOptions): WebhookClient {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const responseTimeoutMs = options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  for (const [name, value, least] of [
    ["connectTimeoutMs", connectTimeoutMs, 1],
    ["responseTimeoutMs", responseTimeoutMs, 1],
    ["maxBodyBytes", maxBodyBytes, 0],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < least) {
      throw new RangeError(`${name} must be an integer of at least ${least}, got ${value}`);
    }
  }
  const settings: ConnectorSettings = {
    allowPrivateTargets: options.allowPrivateTargets,
    resolve: options.resolve ?? resolveWithSystemDns,
    connectTimeoutMs,
    secureContext: options.ca === undefined ? undefined : secureContextTrusting(options.ca),
    beforeConnect: options.beforeConnect,
  };
  // undici follows no redirects unless a redirect interceptor is composed in, and none is.
  const agent = new Agent({
    connect: checkedConnector(settings),
    // Backstops only: `send` enforces the response deadline itself, headers and body together.
    headersTimeout: responseTimeoutMs + 1_000,
    bodyTimeout: responseTimeoutMs + 1_000,
  });

  return {
    send: (request) =>
      send(agent, request, { connectTimeoutMs, responseTimeoutMs, maxBodyBytes, settings }),
    close: () => agent.close(),
  };
}

interface SendSettings {
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly settings: ConnectorSettings;
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

  const invalid = invalidRequest(request, limits.settings.allowPrivateTargets);
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
): DeliveryFailureError | undefined {
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
    return refusal(host, host);
  }
  return undefined;
}

/** A refusal error when the address may not be dialled, otherwise undefined. */
function refusal(host: string, address: string): DeliveryFailureError | undefined {
  const verdict = classifyAddress(address);
  if (verdict.public) return undefined;
  const subject = host === address ? address : `${host} resolves to ${address}, which`;
  return new DeliveryFailureError("refused", `refused: ${subject} is ${verdict.range}`);
}

/**
 * undici connector that resolves the host itself, refuses the whole host when any of its
 * addresses is non-public (a rebinding name often mixes public and private answers), and dials
 * the checked addresses in order, with SNI and certificate verification for the original name.
 */
function checkedConnector(settings: ConnectorSettings): buildConnector.connector {
  const dial = buildConnector({
    timeout: settings.connectTimeoutMs,
    ...(settings.secureContext === undefined ? {} : { secureContext: settings.secureContext }),
  });

  return (options, callback) => {
    let done = false;
    let socket: Socket | undefined;
    const finish = (error: Error | null, connected?: Socket) => {
      if (done) {
        connected?.destroy();
        return;
      }
      done = true;
      clearTimeout(deadline);
      if (error !== null || connected === undefined) {
        socket?.destroy();
        callback(error ?? new DeliveryFailureError("connect", "no connection"), null);
      } else {
        callback(null, connected);
      }
    };
    const deadline = setTimeout(
      () =>
        finish(
          new DeliveryFailureError(
            "timeout",
            `connect timeout after ${settings.connectTimeoutMs} ms`,
          ),
        ),
      settings.connectTimeoutMs,
    );

    const host = unbracket(options.hostname);
    const port = Number(options.port) || 443;
    const attempt = async () => {
      if (options.protocol !== "https:") {
        throw new DeliveryFailureError("refused", "refused: only https:// targets are allowed");
      }
      const addresses = await addressesOf(host, settings.resolve);
      if (!settings.allowPrivateTargets) {
        for (const { address } of addresses) {
          const refused = refusal(host, address);
          if (refused !== undefined) throw refused;
        }
      }
      // SNI carries names only; for an IP literal the certificate is checked against the IP.
      const servername = isIpLiteral(host) ? undefined : host.replace(/\.$/, "");
      let lastError: Error | undefined;
      for (const { address } of addresses) {
        if (done) return;
        try {
          settings.beforeConnect?.(address, port);
        } catch (error) {
          throw new DeliveryFailureError("refused", `refused: ${messageOf(error)}`);
        }
        try {
          return finish(null, await dialOnce(address));
        } catch (error) {
          lastError = error instanceof Error ? error : new Error(String(error));
          const code = (error as { code?: unknown }).code;
          if (!(typeof code === "string" && NEXT_ADDRESS_CODES.has(code))) break;
        }
      }
      throw (
        lastError ?? new DeliveryFailureError("connect", `no address to connect to for ${host}`)
      );

      function dialOnce(address: string): Promise<Socket> {
        return new Promise((resolveSocket, rejectSocket) => {
          let tcpConnected = false;
          socket = dial(
            { ...options, hostname: address, port: String(port), servername },
            (error, connected) => {
              if (error === null) resolveSocket(connected);
              else rejectSocket(connectFailure(error, tcpConnected, address, port, settings));
            },
          ) as unknown as Socket | undefined;
          socket?.once("connect", () => {
            tcpConnected = true;
          });
        });
      }
    };
    attempt().catch((error: unknown) =>
      finish(error instanceof Error ? error : new Error(String(error))),
    );
  };
}

async function addressesOf(
  host: string,
  resolve: (hostname: string) => Promise<Array<ResolvedAddress>>,
): Promise<Array<ResolvedAddress>> {
  if (isIpLiteral(host)) return [{ address: host, family: host.includes(":") ? 6 : 4 }];
  let found: Array<ResolvedAddress>;
  try {
    found = await resolve(host);
  } catch (error) {
    throw new DeliveryFailureError("dns", `dns: cannot resolve ${host}: ${messageOf(error)}`);
  }
  if (!Array.isArray(found) || found.length === 0) {
    throw new DeliveryFailureError("dns", `dns: ${host} has no address`);
  }
  const malformed = found.find((entry) => isIP(entry?.address ?? "") === 0);
  if (malformed !== undefined) {
    throw new DeliveryFailureError(
      "dns",
      `dns: ${host} resolved to ${JSON.stringify(malformed?.address)}, which is no IP address`,
    );
  }
  return found;
}

async function resolveWithSystemDns(hostname: string): Promise<Array<ResolvedAddress>> {
  // ADDRCONFIG skips IPv6 answers on hosts without IPv6 (Lambda outside a dual-stack VPC).
  const found = await lookup(hostname, { all: true, hints: ADDRCONFIG });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}

/** A dial failure is a TLS failure once TCP is up, a connect failure before. */
function connectFailure(
  error: Error,
  tcpConnected: boolean,
  address: string,
  port: number,
  settings: ConnectorSettings,
): DeliveryFailureError {
  const code = (error as { code?: unknown }).code;
  if (code === "UND_ERR_CONNECT_TIMEOUT") {
    return new DeliveryFailureError(
      "timeout",
      `connect timeout after ${settings.connectTimeoutMs} ms`,
    );
  }
  const message = messageOf(error);
  const where = `${address.includes(":") ? `[${address}]` : address}:${port}`;
  const detail = message.includes(address) ? message : `${message} (${where})`;
  if (tcpConnected) return new DeliveryFailureError("tls", `tls: ${detail}`);
  return Object.assign(new DeliveryFailureError("connect", `connection failed: ${detail}`), {
    code,
  });
}

/** Trusts the default roots plus the given PEM certificates; built once per client. */
function secureContextTrusting(ca: string | readonly string[]): SecureContext {
  const extra = typeof ca === "string" ? [ca] : [...ca];
  // Passing `ca` replaces the default trust store, so the defaults are added back explicitly.
  const getCACertificates = (tls as { getCACertificates?: (type: "default") => string[] })
    .getCACertificates;
  const defaults = getCACertificates ? getCACertificates("default") : fallbackDefaults();
  return tls.createSecureContext({ ca: [...defaults, ...extra] });
}

/** Before Node 22.15 the default store is not readable: rebuild it from its two sources. */
function fallbackDefaults(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [...tls.rootCertificates];
  try {
    return [...tls.rootCertificates, readFileSync(file, "utf8")];
  } catch {
    return [...tls.rootCertificates];
  }
}

/** Turns whatever undici or the connector raised into a kind and a readable message. */
function failureOf(error: unknown, responseTimeoutMs: number): DeliveryFailureError {
  if (error instanceof DeliveryFailureError) return error;
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
