import { describe, expect, it } from "vitest";
import {
  countWithinPageBudget,
  decodePageToken,
  encodePageToken,
  hasExactly,
  MAX_PAGE_JSON_BYTES,
} from "#adapters/page-tokens";
import { ValidationError } from "#domain/errors";

const readKey = (value: Readonly<Record<string, unknown>>) =>
  hasExactly(value, ["pk", "n"]) && typeof value.pk === "string" && typeof value.n === "number"
    ? { ...value }
    : undefined;

describe("page tokens", () => {
  it("carry a key there and back as base64url, and are null at the end of a list", () => {
    // Prepare
    const key = { pk: "a/b+c?", n: 12 };

    // Act
    const token = encodePageToken(key);

    // Assess
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken(token as string, readKey)).toEqual(key);
    expect(encodePageToken(undefined)).toBeNull();
  });

  it.each([
    ["not base64 JSON", "bm90IGpzb24"],
    ["a JSON array", Buffer.from("[1]").toString("base64url")],
    ["a key with another shape", encodePageToken({ pk: "a", n: "12" }) as string],
    ["a key with one more attribute", encodePageToken({ pk: "a", n: 1, x: 1 }) as string],
    ["a JSON null", Buffer.from("null").toString("base64url")],
  ])("refuse %s with a 400 that names nextToken", (_what, token) => {
    // Act
    const decode = () => decodePageToken(token, readKey);

    // Assess
    expect(decode).toThrow(ValidationError);
    expect(decode).toThrow(/^nextToken: is not a token of this list/);
  });
});

describe("a page's JSON budget", () => {
  it("holds items until their JSON passes 4 MiB, and always the first", () => {
    // Prepare: items of about 1.5 MiB of JSON each
    const item = { text: "x".repeat(1.5 * 1024 * 1024) };

    // Act
    const counts = [[], [item], [item, item], [item, item, item, item]].map((items) =>
      countWithinPageBudget(items),
    );
    const oneHuge = countWithinPageBudget([{ text: "x".repeat(MAX_PAGE_JSON_BYTES + 1) }, item]);

    // Assess
    expect(MAX_PAGE_JSON_BYTES).toBe(4 * 1024 * 1024);
    expect(counts).toEqual([0, 1, 2, 2]);
    expect(oneHuge).toBe(1);
  });
});
