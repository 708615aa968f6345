import { describe, expect, it } from "vitest";
import { ConfigurationError, runtimeSettings, tableNames } from "#shared/config";

describe("configuration", () => {
  it("fails loudly when a table variable is missing", () => {
    expect(() => tableNames(["apps"], {})).toThrow(ConfigurationError);
    expect(() => tableNames(["apps"], {})).toThrow(/APPS_TABLE/);
  });

  it("reads defaults and rejects a malformed time scale", () => {
    expect(runtimeSettings({})).toEqual({ timeScale: 1, allowPrivateTargets: false, portalId: 1 });
    expect(() => runtimeSettings({ RETRY_TIME_SCALE: "fast" })).toThrow(/RETRY_TIME_SCALE/);
    expect(runtimeSettings({ ALLOW_PRIVATE_TARGETS: "true" }).allowPrivateTargets).toBe(true);
  });
});
