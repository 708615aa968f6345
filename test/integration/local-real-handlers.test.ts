import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";

describe("local runtime with the real handlers", () => {
  let runtime: LocalRuntime;

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: "local-real-",
      logLevel: "SILENT",
    });
  });

  afterAll(async () => {
    await runtime?.stop();
  });

  it("imports the API handler after setting its environment and serves /health", async () => {
    // Act
    const response = await fetch(`${runtime.apiUrl}/health`);

    // Assess
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });

  it("points the handler's DynamoDB client at the runtime's tables", async () => {
    // Act
    const response = await fetch(`${runtime.apiUrl}/apps/${crypto.randomUUID()}`);

    // Assess
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { code: expect.any(String), message: expect.any(String) },
    });
  });
});
