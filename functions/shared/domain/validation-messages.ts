/**
 * How a zod issue becomes the message of a `ValidationError` (docs/contract.md: the message names
 * the field and the rule).
 */
import type * as z from "zod/mini";
import { ValidationError } from "#domain/errors";

type Issue = z.core.$ZodIssue;

interface Problem {
  readonly path: readonly PropertyKey[];
  readonly rule: string;
}

/** Fields a client may copy from a response but that only the server assigns. */
const SERVER_ASSIGNED_FIELDS = new Set(["id", "createdAt", "updatedAt"]);

/**
 * The `ValidationError` for the first of zod's issues: the field's path under `prefix` and the
 * rule it broke, in words a client can act on.
 */
export function toValidationError(
  issues: readonly Issue[],
  prefix: readonly PropertyKey[],
): ValidationError {
  const first = issues[0];
  if (first === undefined) {
    return new ValidationError(formatPath(prefix), "is invalid");
  }
  const problem = describeIssue(first, prefix);
  return new ValidationError(formatPath(problem.path), problem.rule);
}

// Rules never quote the offending value: it may be a client secret or an API key.
function describeIssue(issue: Issue, parentPath: readonly PropertyKey[]): Problem {
  const path = [...parentPath, ...issue.path];
  switch (issue.code) {
    case "invalid_type":
      return {
        path,
        rule: issue.input === undefined ? "is required" : mustBeType(issue.expected, path),
      };
    case "too_small":
      return { path, rule: tooSmallRule(issue) };
    case "too_big":
      return { path, rule: tooBigRule(issue) };
    case "invalid_value":
      return { path, rule: oneOfRule(issue.values) };
    case "unrecognized_keys": {
      const key = issue.keys[0] ?? "";
      return {
        path: [...path, key],
        rule: SERVER_ASSIGNED_FIELDS.has(key)
          ? "is assigned by the server; leave it out"
          : "unknown field",
      };
    }
    case "invalid_key": {
      const inner = issue.issues[0];
      return { path, rule: `name ${inner ? describeIssue(inner, []).rule : "is invalid"}` };
    }
    case "invalid_union":
      return describeUnionIssue(issue, path);
    default:
      return { path, rule: issue.message };
  }
}

function describeUnionIssue(issue: z.core.$ZodIssueInvalidUnion, path: PropertyKey[]): Problem {
  if (issue.discriminator !== undefined && issue.errors.length === 0) {
    const given = isPlainObject(issue.input) ? issue.input[issue.discriminator] : undefined;
    const options = "options" in issue ? (issue.options ?? []) : [];
    return { path, rule: given === undefined ? "is required" : oneOfRule(options) };
  }
  // Explain the option the input was evidently meant for: one whose type matched and that has the
  // fewest complaints. When no single option stands out, the union's own message says what fits.
  const plausible = issue.errors
    .filter(
      (branch) => !branch.some((inner) => inner.code === "invalid_type" && inner.path.length === 0),
    )
    .sort((a, b) => a.length - b.length);
  const [best = [], runnerUp] = plausible;
  const [bestFirst] = best;
  if (bestFirst !== undefined && (runnerUp === undefined || best.length < runnerUp.length)) {
    return describeIssue(bestFirst, path);
  }
  return { path, rule: issue.message };
}

function mustBeType(expected: string, path: readonly PropertyKey[]): string {
  switch (expected) {
    case "int":
      return "must be a whole number";
    case "boolean":
      return "must be true or false";
    case "object":
    case "record":
      return path.length === 0 ? "must be a JSON object" : "must be an object";
    case "array":
      return "must be an array";
    case "null":
      return "must be null";
    default:
      return `must be a ${expected}`;
  }
}

function tooSmallRule(issue: z.core.$ZodIssueTooSmall): string {
  const minimum = Number(issue.minimum);
  switch (issue.origin) {
    case "string":
      return minimum === 1 ? "must not be empty" : `must be at least ${minimum} characters`;
    case "array":
      return `must have at least ${minimum} ${minimum === 1 ? "item" : "items"}`;
    default:
      return issue.inclusive ? `must be at least ${minimum}` : `must be greater than ${minimum}`;
  }
}

function tooBigRule(issue: z.core.$ZodIssueTooBig): string {
  const maximum = Number(issue.maximum);
  switch (issue.origin) {
    case "string":
      return `must be at most ${maximum} characters`;
    case "array":
      return `must have at most ${maximum} items`;
    default:
      return issue.inclusive ? `must be at most ${maximum}` : `must be less than ${maximum}`;
  }
}

function oneOfRule(values: readonly unknown[]): string {
  const listed = values.map(String);
  return listed.length === 1 ? `must be ${listed[0]}` : `must be one of ${listed.join(", ")}`;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MAX_KEY_IN_PATH = 100;

/** `actions[0].url`, `properties.email`, `properties["first-name"]`; the root is `body`. */
function formatPath(path: readonly PropertyKey[]): string {
  let formatted = "";
  for (const key of path) {
    if (typeof key === "number") {
      formatted += `[${key}]`;
      continue;
    }
    // Keys come from the client; a long one would swamp the message.
    const text = String(key);
    const shown = text.length > MAX_KEY_IN_PATH ? `${text.slice(0, MAX_KEY_IN_PATH)}…` : text;
    if (typeof key === "string" && PLAIN_KEY.test(shown)) {
      formatted += formatted === "" ? shown : `.${shown}`;
    } else {
      formatted += `[${JSON.stringify(shown)}]`;
    }
  }
  return formatted === "" ? "body" : formatted;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
