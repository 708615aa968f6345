import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import {
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  StaleStateError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "#domain/errors";
import { hasLoneSurrogate } from "#domain/unicode";
import { MAX_REQUEST_BODY_BYTES } from "#shared/contract";

/** A handled request's outcome before it becomes an API Gateway result. */
export interface Reply {
  readonly statusCode: number;
  readonly body?: unknown;
}

const JSON_HEADERS = { "Content-Type": "application/json; charset=utf-8" };

export function toResult(reply: Reply): APIGatewayProxyResult {
  return {
    statusCode: reply.statusCode,
    headers: JSON_HEADERS,
    body: reply.body === undefined ? "" : JSON.stringify(reply.body),
  };
}

/** The API's one error shape (docs/contract.md, section 1): `{"error": {"code", "message"}}`. */
export function errorReply(statusCode: number, code: string, message: string): Reply {
  return { statusCode, body: { error: { code, message } } };
}

/**
 * Maps a domain error to its response; anything else is an internal error whose details stay in
 * the logs. Returns the reply and whether the error was expected.
 */
export function replyForError(error: unknown): { reply: Reply; expected: boolean } {
  if (error instanceof ValidationError)
    return { reply: errorReply(400, "invalid_request", error.message), expected: true };
  if (error instanceof NotFoundError)
    return { reply: errorReply(404, "not_found", error.message), expected: true };
  // A write that lost a race to another request, and gave up retrying, is a conflict too.
  if (error instanceof ConflictError || error instanceof StaleStateError)
    return { reply: errorReply(409, "conflict", error.message), expected: true };
  if (error instanceof PayloadTooLargeError)
    return { reply: errorReply(413, "payload_too_large", error.message), expected: true };
  if (error instanceof UnsupportedMediaTypeError) {
    return { reply: errorReply(415, "unsupported_media_type", error.message), expected: true };
  }
  return {
    reply: errorReply(500, "internal_error", "internal error; see the logs"),
    expected: false,
  };
}

/**
 * The JSON body of a request: at most 1 MiB, declared as JSON, and well-formed. A route without a
 * body accepts an empty one.
 */
export function jsonBody(event: APIGatewayProxyEvent): unknown {
  const raw = event.body ?? "";
  const text = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_REQUEST_BODY_BYTES) {
    throw new PayloadTooLargeError(
      `body is ${bytes} bytes; at most ${MAX_REQUEST_BODY_BYTES} (1 MiB) are accepted`,
    );
  }
  if (text.trim() === "") return undefined;
  const contentType = header(event, "content-type");
  if (!contentType || !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)) {
    throw new UnsupportedMediaTypeError(
      `Content-Type must be application/json, got ${contentType ? `"${contentType}"` : "none"}`,
    );
  }
  try {
    // A surrogate comes only from a \u escape: a body without one is parsed without the reviver.
    return SURROGATE_ESCAPE.test(text) ? JSON.parse(text, refuseLoneSurrogates) : JSON.parse(text);
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw new ValidationError("body", "must be valid JSON");
  }
}

/** A JSON `\u` escape of a surrogate, paired or not. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** A reviver for `JSON.parse` that refuses any name or string UTF-8 cannot carry. */
function refuseLoneSurrogates(key: string, value: unknown): unknown {
  if (hasLoneSurrogate(key) || (typeof value === "string" && hasLoneSurrogate(value))) {
    throw new ValidationError(
      "body",
      "must be valid Unicode text; a \\u escape of a lone surrogate (\\ud800 without its pair) is not",
    );
  }
  return value;
}

/** A request header, whatever the case of its name. */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) return value;
  }
  return undefined;
}
