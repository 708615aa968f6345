import { describe, expect, it } from "vitest";
import {
  MAX_OUTPUT_VALUE_LENGTH,
  MAX_OUTPUT_VALUES_BYTES,
  outputChanges,
  readOutputs,
} from "#domain/webhook-outputs";

const response = (body: unknown, bodyTruncated = false) => ({
  body: typeof body === "string" ? body : JSON.stringify(body),
  bodyTruncated,
});

describe("webhook outputs", () => {
  it("read strings, numbers and booleans at dot paths, array indices included", () => {
    // Prepare
    const body = { data: { items: [{ id: "a-1" }, { id: "a-2" }], total: 2, active: true } };

    // Act
    const results = readOutputs(
      [
        { path: "data.items.1.id", property: "external_id" },
        { path: "data.total", property: "count" },
        { path: "data.active", property: "active" },
      ],
      response(body),
    );

    // Assess
    expect(results).toEqual([
      { path: "data.items.1.id", property: "external_id", written: true, value: "a-2" },
      { path: "data.total", property: "count", written: true, value: "2" },
      { path: "data.active", property: "active", written: true, value: "true" },
    ]);
  });

  it.each([
    ["a missing member", "data.nope", "path not found"],
    ["an index past the end", "data.items.5", "path not found"],
    ["an index on an object", "data.0", "path not found"],
    ["an object", "data", "value is an object, not a string, number or boolean"],
    ["an array", "data.items", "value is an array, not a string, number or boolean"],
    ["null", "data.gone", "value is null, not a string, number or boolean"],
    ["an inherited member", "data.constructor", "path not found"],
  ])("write nothing for %s, and say why", (_, path, reason) => {
    // Act
    const [result] = readOutputs(
      [{ path, property: "p" }],
      response({ data: { items: [1], gone: null } }),
    );

    // Assess
    expect(result).toEqual({ path, property: "p", written: false, reason });
  });

  it("write nothing from a response that is not JSON, or not JSON within its first 256 KiB", () => {
    // Act
    const [plain] = readOutputs([{ path: "a", property: "p" }], response("thanks"));
    const [cut] = readOutputs([{ path: "a", property: "p" }], response('{"a": "', true));

    // Assess
    expect(plain).toMatchObject({ written: false, reason: "response is not JSON" });
    expect(cut).toMatchObject({
      written: false,
      reason: "response is not JSON within its first 256 KiB",
    });
  });

  it("refuse a value longer than a property holds", () => {
    // Act
    const [result] = readOutputs(
      [{ path: "a", property: "p" }],
      response({ a: "x".repeat(MAX_OUTPUT_VALUE_LENGTH + 1) }),
    );

    // Assess
    expect(result).toMatchObject({ written: false });
  });

  it("refuse a value UTF-8 cannot carry: a lone surrogate JSON escaped", () => {
    // Act
    const [lone, paired] = readOutputs(
      [
        { path: "a", property: "p" },
        { path: "b", property: "q" },
      ],
      response('{"a":"x\\ud800","b":"\\ud83d\\ude00"}'),
    );

    // Assess
    expect(lone).toEqual({
      path: "a",
      property: "p",
      written: false,
      reason: "value is not valid Unicode text",
    });
    expect(paired).toMatchObject({ written: true, value: "\u{1F600}" });
  });

  it("write values up to 256 KiB of UTF-8 together, and none past it", () => {
    // Prepare: four values of 64 KiB fill the budget exactly; the fifth, of one byte, passes it
    const full = "x".repeat(MAX_OUTPUT_VALUE_LENGTH);
    const outputs = ["a", "a", "a", "a", "b", "c"].map((path, i) => ({ path, property: `p${i}` }));

    // Act
    const results = readOutputs(outputs, response({ a: full, b: "y", c: 7 }));

    // Assess
    expect(MAX_OUTPUT_VALUES_BYTES).toBe(4 * MAX_OUTPUT_VALUE_LENGTH);
    expect(results.map((result) => result.written)).toEqual([true, true, true, true, false, false]);
    expect(results[4]).toMatchObject({
      reason: "the written values together would pass 256 KiB",
    });
  });

  it("become property changes where the last output to a property wins", () => {
    // Act
    const changes = outputChanges(
      readOutputs(
        [
          { path: "a", property: "p" },
          { path: "b", property: "p" },
          { path: "missing", property: "q" },
        ],
        response({ a: "first", b: "second" }),
      ),
    );

    // Assess
    expect([...changes]).toEqual([["p", "second"]]);
  });
});
