import { describe, expect, it } from "vitest";
import { ValidationError } from "#domain/errors";
import { parseRequestBody } from "#domain/request-schemas";

describe("request bodies with a __proto__ key", () => {
  it.each([
    [
      '{"properties": {"email": "a@example.com", "__proto__": "x"}}',
      "putObject",
      "properties.__proto__",
    ],
    [
      '{"name": "n", "objectType": "contacts", "actions": [{"type": "delay", "seconds": 1, "__proto__": {}}]}',
      "workflow",
      "actions[0].__proto__",
    ],
    ['{"__proto__": {"objectId": "1"}}', "enroll", "__proto__"],
  ] as const)("refuses %s, naming where the key is", (json, name, field) => {
    // Act
    const parse = () => parseRequestBody(name, JSON.parse(json));

    // Assess
    expect(parse).toThrow(ValidationError);
    expect(parse).toThrow(`${field}: is a reserved name`);
  });

  it("finds no such key in a deeply nested body without exhausting the stack or the clock", () => {
    // Prepare: 200,000 arrays inside each other, well within a 1 MiB body
    const depth = 200_000;
    const body = JSON.parse(`{"properties": ${"[".repeat(depth)}${"]".repeat(depth)}}`);
    const started = performance.now();

    // Act
    const parse = () => parseRequestBody("putObject", body);

    // Assess
    expect(parse).toThrow("properties: must be an object");
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
