/**
 * The address check of webhook delivery, and its whole SSRF boundary: a connector that resolves
 * the target's name itself, refuses the host when any of its addresses is non-public (a rebinding
 * name often mixes public and private answers), and dials exactly the addresses it checked, with
 * SNI and certificate verification for the original name. DNS rebinding cannot slip a private
 * address in between the check and the connection, because nothing resolves again. The delivery
 * client's connection pool opens every connection through it.
 */
import { ADDRCONFIG } from "node:dns";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import tls, { type SecureContext, type TLSSocket } from "node:tls";
import { classifyAddress, isIpLiteral, unbracket } from "#domain/target-url";

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** How the connector learns a host's addresses. */
export type Resolve = (hostname: string) => Promise<Array<ResolvedAddress>>;

export interface CheckedConnectorOptions {
  readonly allowPrivateTargets: boolean;
  /** Defaults to node:dns lookup of every address the host has. */
  readonly resolve?: Resolve;
  /** Resolving, TCP and TLS handshake together. */
  readonly connectTimeoutMs: number;
  /** The trust store; Node's default when absent. */
  readonly secureContext?: SecureContext;
}

/** Where a connection is wanted: a URL's protocol, host name (an IP literal may be bracketed) and port. */
export interface ConnectTarget {
  readonly protocol: string;
  readonly hostname: string;
  /** The URL's port; empty or absent means 443. */
  readonly port?: string | number;
}

/** Hands over a TLS connection to `target` that passed the address check, or why there is none. */
export type Connector = (
  target: ConnectTarget,
  callback: (error: Error | null, socket: TLSSocket | null) => void,
) => void;

export type ConnectFailureKind = "refused" | "dns" | "connect" | "tls" | "timeout";

/** Why the connector handed over no connection, with the kind a delivery records. */
export class ConnectFailureError extends Error {
  override name = "ConnectFailureError";
  constructor(
    readonly kind: ConnectFailureKind,
    message: string,
    readonly code?: unknown,
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

/** The refusal to dial `address` for `host`, or undefined when the address is public. */
export function addressRefusal(host: string, address: string): ConnectFailureError | undefined {
  const verdict = classifyAddress(address);
  if (verdict.public) return undefined;
  const subject = host === address ? address : `${host} resolves to ${address}, which`;
  return new ConnectFailureError("refused", `refused: ${subject} is ${verdict.range}`);
}

/** TLS sessions kept for resumption, per server name: as many receivers as a lane keeps warm. */
const MAX_CACHED_SESSIONS = 100;

/** Creates the connector the delivery client opens every webhook connection with. */
export function checkedConnector(options: CheckedConnectorOptions): Connector {
  const { allowPrivateTargets, connectTimeoutMs, secureContext } = options;
  const resolve = options.resolve ?? resolveWithSystemDns;
  const sessions = new Map<string, Buffer>();
  const timeoutError = () =>
    new ConnectFailureError("timeout", `connect timeout after ${connectTimeoutMs} ms`);

  return (target, callback) => {
    let done = false;
    let socket: TLSSocket | undefined;
    const finish = (error: Error | null, connected?: TLSSocket) => {
      if (done) {
        connected?.destroy();
        return;
      }
      done = true;
      clearTimeout(deadline);
      if (error === null && connected !== undefined) return callback(null, connected);
      socket?.destroy();
      callback(error ?? new ConnectFailureError("connect", "no connection"), null);
    };
    const deadline = setTimeout(() => finish(timeoutError()), connectTimeoutMs);
    const host = unbracket(target.hostname);
    const port = Number(target.port) || 443;
    // SNI carries names only; for an IP literal the certificate is checked against the IP.
    const servername = isIpLiteral(host) ? undefined : host.replace(/\.$/, "");
    const sessionKey = `${servername ?? host}:${port}`;

    const dialOnce = (address: string) =>
      new Promise<TLSSocket>((resolveSocket, rejectSocket) => {
        let tcpConnected = false;
        // tls.connect verifies the certificate against `servername`, or `host` when there is none.
        const dialled = tls.connect({
          host: address,
          port,
          servername,
          secureContext,
          session: sessions.get(sessionKey),
        });
        // A request goes out whole; Nagle's algorithm would only hold its last segment back.
        dialled.setNoDelay(true);
        socket = dialled;
        const onError = (error: Error) =>
          rejectSocket(dialFailure(error, tcpConnected, address, port));
        dialled.once("connect", () => {
          tcpConnected = true;
        });
        dialled.once("error", onError);
        dialled.once("secureConnect", () => {
          dialled.off("error", onError);
          resolveSocket(dialled);
        });
        // Destroyed at the deadline before the handshake ended: settles this dial too.
        dialled.once("close", () => rejectSocket(new Error("connection closed")));
        dialled.on("session", (session: Buffer) => remember(sessions, sessionKey, session));
      });

    const attempt = async () => {
      if (target.protocol !== "https:") {
        throw new ConnectFailureError("refused", "refused: only https:// targets are allowed");
      }
      const addresses = await addressesOf(host, resolve);
      if (!allowPrivateTargets) {
        for (const { address } of addresses) {
          const refused = addressRefusal(host, address);
          if (refused !== undefined) throw refused;
        }
      }
      let lastError: Error | undefined;
      for (const { address } of addresses) {
        if (done) return;
        try {
          return finish(null, await dialOnce(address));
        } catch (error) {
          lastError = asError(error);
          const code = (error as { code?: unknown }).code;
          if (!(typeof code === "string" && NEXT_ADDRESS_CODES.has(code))) break;
        }
      }
      throw lastError ?? new ConnectFailureError("connect", `no address to connect to for ${host}`);
    };
    attempt().catch((error: unknown) => finish(asError(error)));
  };
}

/** Keeps a session for resumption, forgetting the oldest beyond the bound. */
function remember(sessions: Map<string, Buffer>, key: string, session: Buffer): void {
  sessions.delete(key);
  sessions.set(key, session);
  if (sessions.size > MAX_CACHED_SESSIONS) {
    const oldest = sessions.keys().next().value;
    if (oldest !== undefined) sessions.delete(oldest);
  }
}

/** An IP literal is its own address; a name's resolver answers are checked for shape. */
async function addressesOf(host: string, resolve: Resolve): Promise<Array<ResolvedAddress>> {
  if (isIpLiteral(host)) return [{ address: host, family: host.includes(":") ? 6 : 4 }];
  let found: Array<ResolvedAddress>;
  try {
    found = await resolve(host);
  } catch (error) {
    const message = `dns: cannot resolve ${host}: ${asError(error).message}`;
    throw new ConnectFailureError("dns", message);
  }
  if (!Array.isArray(found) || found.length === 0) {
    throw new ConnectFailureError("dns", `dns: ${host} has no address`);
  }
  const malformed = found.find((entry) => isIP(entry?.address ?? "") === 0);
  if (malformed !== undefined) {
    const shown = JSON.stringify(malformed?.address);
    throw new ConnectFailureError(
      "dns",
      `dns: ${host} resolved to ${shown}, which is no IP address`,
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
function dialFailure(
  error: Error,
  tcpConnected: boolean,
  address: string,
  port: number,
): ConnectFailureError {
  const code = (error as { code?: unknown }).code;
  const where = `${address.includes(":") ? `[${address}]` : address}:${port}`;
  const detail = error.message.includes(address) ? error.message : `${error.message} (${where})`;
  if (tcpConnected) return new ConnectFailureError("tls", `tls: ${detail}`);
  return new ConnectFailureError("connect", `connection failed: ${detail}`, code);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
