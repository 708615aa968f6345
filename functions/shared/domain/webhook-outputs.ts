/**
 * Webhook outputs (docs/contract.md): values read from a webhook's JSON response and written into
 * the enrolled record before its next action, which is how a workflow retrieves data.
 */
import { hasLoneSurrogate } from "#domain/unicode";
import type { WebhookOutput } from "#domain/workflow";

/** Outputs are read from at most this much of a response (docs/contract.md). */
export const MAX_OUTPUT_RESPONSE_BYTES = 256 * 1024;

/** A value longer than a property may hold is not written. */
export const MAX_OUTPUT_VALUE_LENGTH = 65_536;

/**
 * UTF-8 bytes the written values may take together: no more than the part of the response they
 * are read from. Outputs that read the same path several times could otherwise keep 20 copies of
 * one long value, and the delivery that shows them would pass DynamoDB's 400 KB per item.
 */
export const MAX_OUTPUT_VALUES_BYTES = MAX_OUTPUT_RESPONSE_BYTES;

/** What became of one output: the value written, or why nothing was. */
export type OutputResult =
  | {
      readonly path: string;
      readonly property: string;
      readonly written: true;
      readonly value: string;
    }
  | {
      readonly path: string;
      readonly property: string;
      readonly written: false;
      readonly reason: string;
    };

/** The outputs of a 2xx response: each one's value, or the reason it has none. */
export function readOutputs(
  outputs: readonly WebhookOutput[],
  response: { readonly body: string; readonly bodyTruncated: boolean },
): OutputResult[] {
  let document: unknown;
  try {
    document = JSON.parse(response.body);
  } catch {
    const reason = response.bodyTruncated
      ? `response is not JSON within its first ${MAX_OUTPUT_RESPONSE_BYTES / 1024} KiB`
      : "response is not JSON";
    return outputs.map((output) => ({ ...output, written: false, reason }));
  }
  let keptBytes = 0;
  return outputs.map((output) => {
    const found = valueAt(document, output.path);
    if (!found.present) return { ...output, written: false, reason: "path not found" };
    const { value } = found;
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      return {
        ...output,
        written: false,
        reason: `value is ${value === null ? "null" : Array.isArray(value) ? "an array" : "an object"}, not a string, number or boolean`,
      };
    }
    const text = String(value);
    if (hasLoneSurrogate(text)) {
      return { ...output, written: false, reason: "value is not valid Unicode text" };
    }
    if (text.length > MAX_OUTPUT_VALUE_LENGTH) {
      return {
        ...output,
        written: false,
        reason: `value is longer than ${MAX_OUTPUT_VALUE_LENGTH} characters`,
      };
    }
    const bytes = Buffer.byteLength(text, "utf8");
    if (keptBytes + bytes > MAX_OUTPUT_VALUES_BYTES) {
      return {
        ...output,
        written: false,
        reason: `the written values together would pass ${MAX_OUTPUT_VALUES_BYTES / 1024} KiB`,
      };
    }
    keptBytes += bytes;
    return { ...output, written: true, value: text };
  });
}

/** The value at a dot-notation path: names of object members, or indices of array items. */
function valueAt(document: unknown, path: string): { present: boolean; value?: unknown } {
  let current = document;
  for (const segment of path.split(".")) {
    if (Array.isArray(current) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      const index = Number(segment);
      if (index >= current.length) return { present: false };
      current = current[index];
    } else if (
      typeof current === "object" &&
      current !== null &&
      !Array.isArray(current) &&
      Object.hasOwn(current, segment)
    ) {
      current = (current as Record<string, unknown>)[segment];
    } else {
      return { present: false };
    }
  }
  return { present: true, value: current };
}

/** The property changes of the written outputs; a property written twice keeps the last value. */
export function outputChanges(results: readonly OutputResult[]): Map<string, string> {
  const changes = new Map<string, string>();
  for (const result of results) if (result.written) changes.set(result.property, result.value);
  return changes;
}

/** The results with each output that was to be written marked as not written, and why. */
export function notWritten(results: readonly OutputResult[], reason: string): OutputResult[] {
  return results.map((result) =>
    result.written
      ? { path: result.path, property: result.property, written: false, reason }
      : result,
  );
}
