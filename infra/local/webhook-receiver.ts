/**
 * A webhook receiver for trying the system on this machine (`npm run receiver`, `npm run demo`):
 * HTTPS on 127.0.0.1 with a self-signed certificate that it keeps across restarts, verifying each
 * request's signatures with the package's own verifiers, answering 503 to the first attempts of
 * each delivery when asked to, so retries can be watched.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { createServer } from "node:https";
import { join } from "node:path";
import { verifyStandardWebhook, verifyV2, verifyV3 } from "#domain/signatures";
import { close, listen, loopback } from "./net.ts";

/** A certificate made now must outlive any demo or working session by far. */
const CERTIFICATE_DAYS = 365;
/** A kept certificate this close to its end is replaced, so it never lapses mid-session. */
const RENEW_BEFORE_MS = 24 * 3600 * 1000;

/** openssl, which makes the certificate, is not installed. */
export class OpensslMissingError extends Error {
  override name = "OpensslMissingError";
}

/** Another process listens on the receiver's port already. */
export class PortInUseError extends Error {
  override name = "PortInUseError";
}

export interface ReceiverCertificate {
  readonly key: string;
  readonly cert: string;
  /** The certificate's file, for NODE_EXTRA_CA_CERTS. */
  readonly certFile: string;
  /** False when an earlier certificate in the same folder was kept. */
  readonly created: boolean;
}

/**
 * The receiver's certificate for 127.0.0.1 in `dir`: the one made before when it is still good
 * for a day, so a system that already trusts it keeps working across receiver restarts;
 * otherwise a new one, made with openssl.
 */
export function receiverCertificate(dir: string, now = Date.now()): ReceiverCertificate {
  const keyFile = join(dir, "receiver.key");
  const certFile = join(dir, "receiver.crt");
  if (existsSync(keyFile) && existsSync(certFile)) {
    const cert = readFileSync(certFile, "utf8");
    if (stillGood(cert, now)) {
      return { key: readFileSync(keyFile, "utf8"), cert, certFile, created: false };
    }
  }
  mkdirSync(dir, { recursive: true });
  try {
    // biome-ignore format: one option per line would hide the command
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", String(CERTIFICATE_DAYS), "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { stdio: "ignore" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new OpensslMissingError(
        "openssl is needed to make the receiver's certificate; install it (apt-get install openssl, brew install openssl)",
      );
    }
    throw error;
  }
  return {
    key: readFileSync(keyFile, "utf8"),
    cert: readFileSync(certFile, "utf8"),
    certFile,
    created: true,
  };
}

function stillGood(pem: string, now: number): boolean {
  try {
    const certificate = new X509Certificate(pem);
    return (
      certificate.checkIP(loopback) !== undefined &&
      Date.parse(certificate.validTo) - now > RENEW_BEFORE_MS
    );
  } catch {
    return false;
  }
}

/** What the receiver checks signatures with; each is optional. */
export interface ReceiverSecrets {
  /** The signing app's client secret: X-HubSpot-Signature v2 and v3. */
  readonly clientSecret?: string;
  /** A `whsec_...` secret: Standard Webhooks. */
  readonly standardWebhooksSecret?: string;
}

/** One webhook as the receiver got it and answered it. */
export interface ReceivedWebhook {
  readonly method: string;
  /** The URL as the sender called it. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The attempt of the same delivery whose body this one repeats, if one came before. */
  readonly sameBodyAs?: string;
  /** Each signature scheme present: whether it verified, or why it was not checked. */
  readonly verified: Readonly<Record<string, boolean | string>>;
  readonly status: number;
}

export interface WebhookReceiverOptions {
  readonly certificate: ReceiverCertificate;
  /** 0 picks a free port. */
  readonly port: number;
  readonly secrets: ReceiverSecrets;
  /** Answer the first this-many attempts of each delivery with 503. */
  readonly failFirst: number;
  readonly onWebhook: (webhook: ReceivedWebhook) => void;
}

export interface WebhookReceiver {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the receiver on 127.0.0.1; a port already taken is a `PortInUseError`. */
export async function startWebhookReceiver(
  options: WebhookReceiverOptions,
): Promise<WebhookReceiver> {
  const seen = new Map<string, number>();
  const firstBodies = new Map<string, { attempt: string; body: string }>();
  const server = createServer(
    { key: options.certificate.key, cert: options.certificate.cert },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const deliveryId = headerText(req.headers, "x-delivery-id");
        const count = (seen.get(deliveryId) ?? 0) + 1;
        seen.set(deliveryId, count);
        const status = count <= options.failFirst ? 503 : 200;
        const method = req.method ?? "";
        const url = `https://${req.headers.host}${req.url}`;
        const body = Buffer.concat(chunks).toString("utf8");
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify({ received: status === 200 }));
        const first = firstBodies.get(deliveryId);
        if (first === undefined) {
          firstBodies.set(deliveryId, {
            attempt: headerText(req.headers, "x-delivery-attempt"),
            body,
          });
        }
        options.onWebhook({
          method,
          url,
          headers: req.headers,
          body,
          ...(first !== undefined && first.body === body ? { sameBodyAs: first.attempt } : {}),
          verified: verify(options.secrets, method, url, body, req.headers),
          status,
        });
      });
    },
  );
  let port: number;
  try {
    port = await listen(server, options.port, loopback);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new PortInUseError(`port ${options.port} on ${loopback} is already in use`);
    }
    throw error;
  }
  return { url: `https://${loopback}:${port}`, port, close: () => close(server) };
}

function verify(
  secrets: ReceiverSecrets,
  method: string,
  uri: string,
  body: string,
  headers: IncomingHttpHeaders,
): Record<string, boolean | string> {
  const verified: Record<string, boolean | string> = {};
  const header = (name: string) => headerText(headers, name);
  if (headers["x-hubspot-signature"] !== undefined) {
    const { clientSecret } = secrets;
    const unchecked = "not checked: set CLIENT_SECRET";
    verified.v2 = clientSecret
      ? verifyV2({ clientSecret, method, uri, body, signature: header("x-hubspot-signature") })
      : unchecked;
    verified.v3 = clientSecret
      ? verifyV3({
          clientSecret,
          method,
          uri,
          body,
          timestamp: header("x-hubspot-request-timestamp"),
          signature: header("x-hubspot-signature-v3"),
        })
      : unchecked;
  }
  if (headers["webhook-signature"] !== undefined) {
    const secret = secrets.standardWebhooksSecret;
    verified.standardWebhooks = secret
      ? verifyStandardWebhook({
          secret,
          id: header("webhook-id"),
          timestamp: header("webhook-timestamp"),
          signature: header("webhook-signature"),
          body,
        })
      : "not checked: set STANDARD_WEBHOOKS_SECRET";
  }
  return verified;
}

function headerText(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : (value ?? "");
}

/** Headers worth showing; the rest (host, connection...) say nothing about the webhook. */
const SHOWN_HEADER = /^(content-type|user-agent|x-delivery-|x-hubspot-|webhook-)/;

/** A webhook as a few readable lines: request line, headers, signatures, body, the answer. */
export function describeWebhook(webhook: ReceivedWebhook): string {
  const headers = Object.entries(webhook.headers)
    .filter(([name]) => SHOWN_HEADER.test(name))
    .map(([name, value]) => `    ${name}: ${Array.isArray(value) ? value.join(", ") : value}`);
  const checks = Object.entries(webhook.verified).map(([scheme, verdict]) =>
    typeof verdict === "string"
      ? `${scheme} ${verdict}`
      : `${scheme} ${verdict ? "verified" : "NOT verified"}`,
  );
  let body = webhook.body;
  try {
    body = JSON.stringify(JSON.parse(webhook.body), null, 2);
  } catch {
    // not JSON: shown as received
  }
  return [
    `<- ${webhook.method} ${webhook.url}`,
    ...headers,
    `  signatures: ${checks.length > 0 ? checks.join(", ") : "none (unsigned)"}`,
    `  body: ${
      webhook.sameBodyAs !== undefined
        ? `the same ${Buffer.byteLength(webhook.body)} bytes as attempt ${webhook.sameBodyAs}`
        : body === ""
          ? "(none)"
          : body.replaceAll("\n", "\n  ")
    }`,
    `  answered ${webhook.status}${webhook.status === 503 ? " (failing on purpose, to show a retry)" : ""}`,
  ].join("\n");
}
