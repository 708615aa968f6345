import {
  STANDARD_WEBHOOKS_SECRET_PREFIX,
  signatureHeaders,
  standardWebhookHeaders,
} from "#domain/signatures";
import {
  type Authentication,
  type PreviousSecret,
  previousStandardWebhooksSecret,
  REDACTED_SECRET,
  unexpiredPreviousSecret,
} from "#domain/workflow";
import { PROJECT_VERSION } from "#shared/version";

export const USER_AGENT = `workflow-webhooks/${PROJECT_VERSION}`;

/** An HTTP request, exactly as it goes on the wire. */
export interface OutgoingRequest {
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface AttemptRequestInput {
  readonly deliveryId: string;
  readonly attempt: number;
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly authentication?: Authentication;
  /** The body built when the action ran; ignored for GET. */
  readonly body?: string;
  /** The app's client secret, for signature authentication. */
  readonly clientSecret?: string;
  /** The app's secret before its last rotation: it signs too until it expires. */
  readonly previousClientSecret?: PreviousSecret;
  /** When the attempt is sent (epoch ms): the v3 signature's timestamp. */
  readonly now: number;
}

/**
 * The request of one attempt: the same body on every attempt, with the delivery headers, the
 * API key and, for signed webhooks, signatures and timestamp computed afresh.
 */
export function buildAttemptRequest(input: AttemptRequestInput): OutgoingRequest {
  const auth = input.authentication;
  // Signatures cover the URL exactly as it goes on the wire: WHATWG-normalised, no fragment.
  const target = new URL(input.url);
  target.hash = "";
  const url =
    auth?.type === "apiKey" && auth.location === "query"
      ? withQueryParameter(target.href, auth.name, auth.value)
      : target.href;
  const body = input.method === "GET" ? undefined : (input.body ?? "");
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    "User-Agent": USER_AGENT,
    "X-Delivery-Id": input.deliveryId,
    "X-Delivery-Attempt": String(input.attempt),
  };
  if (auth?.type === "apiKey" && auth.location === "header") headers[auth.name] = auth.value;
  if (auth?.type === "signature") {
    if (input.clientSecret === undefined)
      throw new Error("a signed webhook needs its app's client secret");
    const previousClientSecret = unexpiredPreviousSecret(input.previousClientSecret, input.now);
    Object.assign(
      headers,
      signatureHeaders({
        clientSecret: input.clientSecret,
        ...(previousClientSecret === undefined ? {} : { previousClientSecret }),
        method: input.method,
        uri: url,
        body: body ?? "",
        timestamp: input.now,
      }),
    );
  }
  if (auth?.type === "standardWebhooks") {
    const previous = previousStandardWebhooksSecret(auth);
    const previousSecret = unexpiredPreviousSecret(previous, input.now);
    Object.assign(
      headers,
      standardWebhookHeaders({
        secret: auth.secret,
        ...(previousSecret === undefined ? {} : { previousSecret }),
        id: input.deliveryId,
        body: body ?? "",
        timestamp: input.now,
      }),
    );
  }
  return { method: input.method, url, headers, ...(body === undefined ? {} : { body }) };
}

/** The request with its API key hidden, for echoing back to the user or logging. */
export function redactRequest(
  request: OutgoingRequest,
  authentication?: Authentication,
): OutgoingRequest {
  if (authentication?.type !== "apiKey") return request;
  if (authentication.location === "header") {
    const headers = Object.fromEntries(
      Object.entries(request.headers).map(([name, value]) =>
        name.toLowerCase() === authentication.name.toLowerCase()
          ? [name, REDACTED_SECRET]
          : [name, value],
      ),
    );
    return { ...request, headers };
  }
  const secret = queryParameter(authentication.name, authentication.value);
  const at = request.url.lastIndexOf(secret);
  if (at < 0) return request;
  const url = `${request.url.slice(0, at)}${queryParameter(authentication.name, REDACTED_SECRET)}${request.url.slice(at + secret.length)}`;
  return { ...request, url };
}

/** The app secrets a signed request is made with: the current one and, while it signs, the last. */
export interface SigningSecrets {
  readonly clientSecret?: string;
  readonly previousClientSecret?: PreviousSecret;
}

/**
 * The secrets a request of this authentication carries or is signed with: its API key, its app's
 * client secrets, or its Standard Webhooks secrets (with and without the `whsec_` prefix).
 */
export function requestSecrets(
  authentication: Authentication | undefined,
  app: SigningSecrets | undefined,
): string[] {
  switch (authentication?.type) {
    case "apiKey":
      return [authentication.value];
    case "signature":
      return present([app?.clientSecret, app?.previousClientSecret?.secret]);
    case "standardWebhooks":
      return present([
        authentication.secret,
        previousStandardWebhooksSecret(authentication)?.secret,
      ]).flatMap((secret) => [secret, withoutStandardWebhooksPrefix(secret)]);
    default:
      return [];
  }
}

function present(values: ReadonlyArray<string | undefined>): string[] {
  return values.filter((value): value is string => value !== undefined && value !== "");
}

function withoutStandardWebhooksPrefix(secret: string): string {
  return secret.startsWith(STANDARD_WEBHOOKS_SECRET_PREFIX)
    ? secret.slice(STANDARD_WEBHOOKS_SECRET_PREFIX.length)
    : secret;
}

/**
 * What a receiver sent back (a body, a header, an error), with every secret of the request shown
 * as `***`: a receiver that echoes its request must not make the API or the attempt log show a
 * client secret or an API key. The secrets are also found as a URL or JSON string writes them, and
 * where a bounded body was cut (`truncated`), a secret's beginning at its very end.
 */
export function redactSecrets(text: string, secrets: readonly string[], truncated = false): string {
  const forms = [...new Set(secrets.flatMap(writtenForms))]
    .filter((form) => form !== "")
    .sort((a, b) => b.length - a.length);
  let redacted = text;
  for (const form of forms) redacted = redacted.split(form).join(REDACTED_SECRET);
  if (!truncated) return redacted;
  for (const form of forms) {
    for (let length = Math.min(form.length - 1, redacted.length); length > 0; length--) {
      if (redacted.endsWith(form.slice(0, length))) {
        return `${redacted.slice(0, redacted.length - length)}${REDACTED_SECRET}`;
      }
    }
  }
  return redacted;
}

/** A secret as it is, and as a query string or a JSON string would write it. */
function writtenForms(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret }).toString().slice("s=".length),
    JSON.stringify(secret).slice(1, -1),
  ];
}

/** Appends one query parameter, leaving the URL's own parameters byte for byte as they were. */
function withQueryParameter(url: string, name: string, value: string): string {
  const separator = url.includes("?") ? (url.endsWith("?") || url.endsWith("&") ? "" : "&") : "?";
  return `${url}${separator}${queryParameter(name, value)}`;
}

function queryParameter(name: string, value: string): string {
  return `${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
}
