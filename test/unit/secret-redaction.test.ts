import { describe, expect, it } from "vitest";
import { redactSecrets, requestSecrets } from "#domain/webhook-request";
import type { Authentication } from "#domain/workflow";

describe("secrets in what a receiver sends back", () => {
  it.each([
    ["as it is", 'echo: k+y/1 2&="x\\', "echo: ***"],
    [
      "as a query string encodes it",
      "url: /in?api_key=k%2By%2F1%202%26%3D%22x%5C",
      "url: /in?api_key=***",
    ],
    ["as a form encodes it", "api_key=k%2By%2F1+2%26%3D%22x%5C", "api_key=***"],
    ["as a JSON string writes it", '{"key":"k+y/1 2&=\\"x\\\\"}', '{"key":"***"}'],
    ["several times", 'k+y/1 2&="x\\ and k+y/1 2&="x\\', "*** and ***"],
  ])("are hidden when written %s", (_how, text, shown) => {
    // Act
    const redacted = redactSecrets(text, ['k+y/1 2&="x\\']);

    // Assess
    expect(redacted).toBe(shown);
  });

  it("hides the beginning of a secret where a bounded body was cut, and only then", () => {
    // Act
    const cut = redactSecrets("the key is s3cr3t-va", ["s3cr3t-value"], true);
    const whole = redactSecrets("the key is s3cr3t-va", ["s3cr3t-value"], false);

    // Assess
    expect(cut).toBe("the key is ***");
    expect(whole).toBe("the key is s3cr3t-va");
  });

  it("leaves text without secrets, and text when there are none, unchanged", () => {
    // Act and assess
    expect(redactSecrets("nothing to hide", ["s3cr3t"], true)).toBe("nothing to hide");
    expect(redactSecrets("nothing to hide", [], true)).toBe("nothing to hide");
  });

  it("knows the secrets each authentication sends", () => {
    // Act and assess
    expect(
      requestSecrets(
        { type: "apiKey", name: "k", location: "header", value: "v-1" },
        { clientSecret: "unused" },
      ),
    ).toEqual(["v-1"]);
    expect(
      requestSecrets(
        { type: "signature", appId: "a" },
        {
          clientSecret: "client-secret",
          previousClientSecret: { secret: "old-secret", expiresAt: 1 },
        },
      ),
    ).toEqual(["client-secret", "old-secret"]);
    expect(
      requestSecrets(
        {
          type: "standardWebhooks",
          secret: "whsec_bmV3",
          previousSecret: { secret: "whsec_b2xk", expiresAt: 1 },
        } as Authentication,
        undefined,
      ),
    ).toEqual(["whsec_bmV3", "bmV3", "whsec_b2xk", "b2xk"]);
    expect(requestSecrets(undefined, undefined)).toEqual([]);
  });
});
