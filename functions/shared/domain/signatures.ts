/**
 * HubSpot's X-HubSpot-Signature schemes (v1, v2, v3): used to sign outgoing webhooks, and exported
 * for receivers to verify them.
 *
 * The URI is hashed exactly as given, with no percent-decoding, as `@hubspot/api-client`'s
 * `Signature` does; a receiver must pass the full URL it was called on (scheme, host, path and
 * query in their original order and encoding).
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

/** The signature headers of one request: v2 (with its version header) and v3 with its timestamp. */
export function signatureHeaders(input: SignatureInput): Record<string, string> {
  const { clientSecret, method, uri, body, timestamp } = input;
  return {
    "X-HubSpot-Signature-Version": "v2",
    "X-HubSpot-Signature": signV2(clientSecret, method, uri, body),
    "X-HubSpot-Request-Timestamp": String(timestamp),
    "X-HubSpot-Signature-v3": signV3(clientSecret, method, uri, body, timestamp),
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
