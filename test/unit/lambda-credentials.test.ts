import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultProvider } from "#adapters/lambda-credentials";

const VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_CREDENTIAL_EXPIRATION",
  "AWS_PROFILE",
] as const;

let saved: Record<string, string | undefined>;

beforeEach(() => {
  saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of VARIABLES) delete process.env[name];
});

afterEach(() => {
  for (const name of VARIABLES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

describe("the credentials a bundled function uses", () => {
  it("are the ones Lambda puts in the environment", async () => {
    // Prepare
    process.env.AWS_ACCESS_KEY_ID = "ASIAEXAMPLE";
    process.env.AWS_SECRET_ACCESS_KEY = "secret-from-the-role";
    process.env.AWS_SESSION_TOKEN = "session-token";

    // Act
    const credentials = await defaultProvider()();

    // Assess
    expect(credentials).toMatchObject({
      accessKeyId: "ASIAEXAMPLE",
      secretAccessKey: "secret-from-the-role",
      sessionToken: "session-token",
    });
    expect(credentials.expiration).toBeUndefined();
  });

  it("are found nowhere else: without them the first AWS call fails and says why", async () => {
    // Prepare: a profile would satisfy the SDK's default chain, never this provider
    process.env.AWS_PROFILE = "default";

    // Act
    const credentials = defaultProvider()();

    // Assess
    await expect(credentials).rejects.toThrow("Unable to find environment variable credentials");
  });
});
