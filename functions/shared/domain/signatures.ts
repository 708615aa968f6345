/**
 * The signature schemes of outgoing webhooks, used to sign them and exported for receivers to
 * verify them (`workflow-webhooks/signatures`): HubSpot's X-HubSpot-Signature (v1, v2, v3), and
 * Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
 *
 * HubSpot's URI is hashed exactly as given, with no percent-decoding, as `@hubspot/api-client`'s
 * `Signature` does; a receiver must pass the full URL it was called on (scheme, host, path and
 * query in their original order and encoding).
 *
 * This module needs nothing but `node:crypto`: it is built to JavaScript for receivers.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** How old (or, to allow for clock skew, how far ahead) a v3 timestamp may be: 5 minutes. */
export const MAX_TIMESTAMP_AGE_MS = 300_000;

/** Lowercase hex SHA-256 of clientSecret + body (v1). */
export function signV1(clientSecret: string, body: string): string {
  return sha256Hex(clientSecret + body);
}

/** Lowercase hex SHA-256 of clientSecret + method + uri + body (v2); body is "" for GET. */
export function signV2(clientSecret: string, method: string, uri: string, body: string): string {
  return sha256Hex(clientSecret + method + uri + body);
}

/** Base64 HMAC-SHA256, keyed with clientSecret, of method + uri + body + timestamp (v3). */
export function signV3(
  clientSecret: string,
  method: string,
  uri: string,
  body: string,
  timestamp: number,
): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(`timestamp must be epoch milliseconds, got ${timestamp}`);
  }
  return hmacBase64(clientSecret, method + uri + body + String(timestamp));
}

/** What one request needs to be signed: the URI is the full URL exactly as it is sent. */
export interface SignatureInput {
  readonly clientSecret: string;
  readonly method: string;
  readonly uri: string;
  readonly body: string;
  /** When the request is sent, in epoch milliseconds. */
  readonly timestamp: number;
}

/**
 * The signature headers of one request: v2 (with its version header) and v3 with its timestamp.
 * While a replaced secret still signs (`previousClientSecret`), its v2 and v3 signatures travel in
 * `X-HubSpot-Signature-Previous` and `X-HubSpot-Signature-v3-Previous`, so that each header holds
 * exactly one signature, as HubSpot's own verifiers expect.
 */
export function signatureHeaders(
  input: SignatureInput & { readonly previousClientSecret?: string },
): Record<string, string> {
  const { clientSecret, previousClientSecret, method, uri, body, timestamp } = input;
  return {
    "X-HubSpot-Signature-Version": "v2",
    "X-HubSpot-Signature": signV2(clientSecret, method, uri, body),
    "X-HubSpot-Request-Timestamp": String(timestamp),
    "X-HubSpot-Signature-v3": signV3(clientSecret, method, uri, body, timestamp),
    ...(previousClientSecret === undefined
      ? {}
      : {
          "X-HubSpot-Signature-Previous": signV2(previousClientSecret, method, uri, body),
          "X-HubSpot-Signature-v3-Previous": signV3(
            previousClientSecret,
            method,
            uri,
            body,
            timestamp,
          ),
        }),
  };
}

/** Checks an X-HubSpot-Signature of version v1. */
export function verifyV1(input: {
  clientSecret: string;
  body: string;
  signature: string;
}): boolean {
  return signaturesMatch(signV1(input.clientSecret, input.body), input.signature);
}

/** Checks an X-HubSpot-Signature of version v2. */
export function verifyV2(input: {
  clientSecret: string;
  method: string;
  uri: string;
  body: string;
  signature: string;
}): boolean {
  const { clientSecret, method, uri, body, signature } = input;
  return signaturesMatch(signV2(clientSecret, method, uri, body), signature);
}

/** What a receiver passes to check an X-HubSpot-Signature-v3. */
export interface VerifyV3Input {
  readonly clientSecret: string;
  readonly method: string;
  readonly uri: string;
  readonly body: string;
  /** The X-HubSpot-Request-Timestamp header, as received. */
  readonly timestamp: string | number;
  readonly signature: string;
  /** The receiver's clock, epoch milliseconds; defaults to `Date.now()`. */
  readonly now?: number;
  /** The replay window; defaults to 5 minutes. */
  readonly maxAgeMs?: number;
}

/**
 * Checks an X-HubSpot-Signature-v3: false when the timestamp is not a decimal number of
 * milliseconds, lies more than `maxAgeMs` before or after `now`, or the signature does not match.
 */
export function verifyV3(input: VerifyV3Input): boolean {
  const { clientSecret, method, uri, body, signature } = input;
  const now = input.now ?? Date.now();
  const maxAgeMs = input.maxAgeMs ?? MAX_TIMESTAMP_AGE_MS;
  // The header text itself is what the sender hashed, so it is used verbatim once it is known
  // to be plain digits; a number is accepted for callers that parsed the header already.
  const timestampText = String(input.timestamp);
  if (!/^\d{1,16}$/.test(timestampText)) {
    return false;
  }
  const timestamp = Number(timestampText);
  if (Math.abs(now - timestamp) > maxAgeMs) {
    return false;
  }
  const expected = hmacBase64(clientSecret, method + uri + body + timestampText);
  return signaturesMatch(expected, signature);
}

/** Standard Webhooks secrets are `whsec_` followed by the base64 of the key. */
export const STANDARD_WEBHOOKS_SECRET_PREFIX = "whsec_";

/** The only signature version Standard Webhooks defines for symmetric keys. */
const STANDARD_WEBHOOKS_VERSION = "v1";

/** The key of a `whsec_...` secret; throws `RangeError` when it is not that form. */
export function standardWebhooksKey(secret: string): Buffer {
  const encoded = secret.startsWith(STANDARD_WEBHOOKS_SECRET_PREFIX)
    ? secret.slice(STANDARD_WEBHOOKS_SECRET_PREFIX.length)
    : secret;
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0 || key.toString("base64") !== encoded) {
    throw new RangeError("a Standard Webhooks secret is whsec_ followed by base64");
  }
  return key;
}

/**
 * One Standard Webhooks signature, `v1,` and the base64 HMAC-SHA256 (keyed with the secret's key)
 * of `<id>.<timestamp>.<body>`; `timestampSeconds` is epoch seconds, `body` is "" for GET.
 */
export function signStandardWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError(`timestamp must be epoch seconds, got ${timestampSeconds}`);
  }
  const mac = createHmac("sha256", standardWebhooksKey(secret))
    .update(`${id}.${timestampSeconds}.${body}`, "utf8")
    .digest("base64");
  return `${STANDARD_WEBHOOKS_VERSION},${mac}`;
}

/** What one request needs to be signed the Standard Webhooks way. */
export interface StandardWebhookInput {
  readonly secret: string;
  /** A secret being replaced that still signs: its signature is sent beside the new one. */
  readonly previousSecret?: string;
  /** `webhook-id`: the same on every attempt of one message, so receivers can drop duplicates. */
  readonly id: string;
  readonly body: string;
  /** When the request is sent, in epoch milliseconds; the header carries seconds. */
  readonly timestamp: number;
}

/** `webhook-id`, `webhook-timestamp` and `webhook-signature` (space-separated when two secrets sign). */
export function standardWebhookHeaders(input: StandardWebhookInput): Record<string, string> {
  const seconds = Math.floor(input.timestamp / 1000);
  const secrets = [
    input.secret,
    ...(input.previousSecret === undefined ? [] : [input.previousSecret]),
  ];
  return {
    "webhook-id": input.id,
    "webhook-timestamp": String(seconds),
    "webhook-signature": secrets
      .map((secret) => signStandardWebhook(secret, input.id, seconds, input.body))
      .join(" "),
  };
}

/** What a receiver passes to check a Standard Webhooks request. */
export interface VerifyStandardWebhookInput {
  readonly secret: string;
  /** The `webhook-id` header. */
  readonly id: string;
  /** The `webhook-timestamp` header (epoch seconds), as received. */
  readonly timestamp: string | number;
  /** The `webhook-signature` header: one or more space-separated `v1,<base64>` signatures. */
  readonly signature: string;
  /** The raw body as a UTF-8 string; "" for GET. */
  readonly body: string;
  /** The receiver's clock, epoch milliseconds; defaults to `Date.now()`. */
  readonly now?: number;
  /** The replay window; defaults to 5 minutes. */
  readonly maxAgeMs?: number;
}

/**
 * Checks a Standard Webhooks request: false when the timestamp is not decimal seconds within
 * `maxAgeMs` of `now`, or when none of the `v1` signatures in the header matches (constant time).
 */
export function verifyStandardWebhook(input: VerifyStandardWebhookInput): boolean {
  const now = input.now ?? Date.now();
  const maxAgeMs = input.maxAgeMs ?? MAX_TIMESTAMP_AGE_MS;
  const timestampText = String(input.timestamp);
  if (!/^\d{1,13}$/.test(timestampText)) return false;
  const seconds = Number(timestampText);
  if (Math.abs(now - seconds * 1000) > maxAgeMs) return false;
  if (typeof input.signature !== "string" || typeof input.id !== "string") return false;
  let expected: string;
  try {
    expected = signStandardWebhook(input.secret, input.id, seconds, input.body);
  } catch {
    return false;
  }
  // Every listed signature is compared, so the time taken does not tell which one matched.
  let matched = false;
  for (const candidate of input.signature.split(" ")) {
    if (signaturesMatch(expected, candidate)) matched = true;
  }
  return matched;
}

function sha256Hex(source: string): string {
  return createHash("sha256").update(source, "utf8").digest("hex");
}

function hmacBase64(clientSecret: string, source: string): string {
  return createHmac("sha256", clientSecret).update(source, "utf8").digest("base64");
}

/** Constant-time comparison; a missing or wrong-length signature is a mismatch, never a throw. */
function signaturesMatch(expected: string, received: unknown): boolean {
  if (typeof received !== "string") {
    return false;
  }
  const expectedBytes = Buffer.from(expected, "utf8");
  const receivedBytes = Buffer.from(received, "utf8");
  if (expectedBytes.length !== receivedBytes.length) {
    return false;
  }
  return timingSafeEqual(expectedBytes, receivedBytes);
}
