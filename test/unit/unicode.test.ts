import { describe, expect, it } from "vitest";
import { hasLoneSurrogate } from "#domain/unicode";

describe("text UTF-8 cannot carry", () => {
  it.each([
    ["\ud800", true],
    ["a\udc00", true],
    ["\udc00\ud800", true],
    ["emoji \ud83d\ude00 and a lone \ud83d", true],
    ["", false],
    ["plain", false],
    ["emoji \ud83d\ude00", false],
    ["\u0000\uffff", false],
  ])("%j has a lone surrogate: %s", (text, lone) => {
    expect(hasLoneSurrogate(text)).toBe(lone);
  });
});
