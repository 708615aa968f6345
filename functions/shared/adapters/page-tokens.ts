import { ValidationError } from "#domain/errors";

/** A DynamoDB key where a list stops, and its next page starts. */
export type PageKey = Record<string, unknown>;

/** The `nextToken` of a page that stopped at `key`: base64url of the key, or null at the end. */
export function encodePageToken(key: PageKey | undefined): string | null {
  return key === undefined ? null : Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

/**
 * The key a `nextToken` carries, read back by `readKey`, which returns undefined for anything
 * other than a key this very list could have stopped at. A forged or foreign token is a 400: the
 * key goes to DynamoDB, which would refuse a malformed one with an error of its own.
 */
export function decodePageToken<K extends PageKey>(
  token: string,
  readKey: (value: Readonly<Record<string, unknown>>) => K | undefined,
): K {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    value = undefined;
  }
  const key =
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? readKey(value as Record<string, unknown>)
      : undefined;
  if (key === undefined) {
    throw new ValidationError(
      "nextToken",
      "is not a token of this list; pass the nextToken of the previous page as given, with the same query",
    );
  }
  return key;
}

/** Whether `value` has exactly the keys `names`, and nothing else. */
export function hasExactly(value: Readonly<Record<string, unknown>>, names: readonly string[]) {
  const keys = Object.keys(value);
  return keys.length === names.length && names.every((name) => Object.hasOwn(value, name));
}

/**
 * The most JSON a page of a list holds. DynamoDB reads up to 1 MB at once, but an item's JSON can
 * be several times its stored size (a control character is one byte stored and six as JSON), and
 * a Lambda response must stay under 6 MB.
 */
export const MAX_PAGE_JSON_BYTES = 4 * 1024 * 1024;

/**
 * How many of `items`, in order, a page holds before their JSON passes `MAX_PAGE_JSON_BYTES`:
 * all of them as a rule, and always the first.
 */
export function countWithinPageBudget(items: readonly unknown[]): number {
  let jsonBytes = 0;
  for (const [index, item] of items.entries()) {
    jsonBytes += Buffer.byteLength(JSON.stringify(item), "utf8");
    if (jsonBytes > MAX_PAGE_JSON_BYTES && index > 0) return index;
  }
  return items.length;
}
