import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { buildAttemptRequest, redactRequest, USER_AGENT } from "#domain/webhook-request";
import packageJson from "../../package.json" with { type: "json" };

const base = {
  deliveryId: "d-1",
  attempt: 2,
  method: "POST" as const,
  url: "https://crm.example.com/hooks/lead?team=a%20b",
  body: '{"vid":1}',
  now: 1_700_000_000_000,
};

describe("the request of an attempt", () => {
  it("carries the delivery headers and the body, unsigned without authentication", () => {
    // Act
    const request = buildAttemptRequest(base);

    // Assess
    expect(request).toEqual({
      method: "POST",
      url: "https://crm.example.com/hooks/lead?team=a%20b",
      headers: {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Delivery-Id": "d-1",
        "X-Delivery-Attempt": "2",
      },
      body: '{"vid":1}',
    });
    expect(USER_AGENT).toMatch(/^workflow-webhooks\/\d+\.\d+\.\d+$/);
    expect(USER_AGENT).toBe(`workflow-webhooks/${packageJson.version}`);
  });

  it("signs method, the URL as sent and the body with v2 and v3, timestamped when sent", () => {
    // Act
    const request = buildAttemptRequest({
      ...base,
      authentication: { type: "signature", appId: "app" },
      clientSecret: "secret",
    });

    // Assess
    const uri = "https://crm.example.com/hooks/lead?team=a%20b";
    const v2 = createHash("sha256").update(`secretPOST${uri}{"vid":1}`).digest("hex");
    const v3 = createHmac("sha256", "secret")
      .update(`POST${uri}{"vid":1}1700000000000`)
      .digest("base64");
    expect(request.headers).toMatchObject({
      "X-HubSpot-Signature-Version": "v2",
      "X-HubSpot-Signature": v2,
      "X-HubSpot-Request-Timestamp": "1700000000000",
      "X-HubSpot-Signature-v3": v3,
    });
  });

  it("sends GET without a body or Content-Type, signing an empty body", () => {
    // Act
    const request = buildAttemptRequest({
      ...base,
      method: "GET",
      authentication: { type: "signature", appId: "app" },
      clientSecret: "secret",
    });

    // Assess
    expect(request.body).toBeUndefined();
    expect(request.headers["Content-Type"]).toBeUndefined();
    const v2 = createHash("sha256").update(`secretGET${base.url}`).digest("hex");
    expect(request.headers["X-HubSpot-Signature"]).toBe(v2);
  });

  it("appends a query API key after the URL's own parameters, leaving them byte for byte", () => {
    // Act
    const request = buildAttemptRequest({
      ...base,
      authentication: { type: "apiKey", name: "api key", location: "query", value: "k&1" },
    });

    // Assess
    expect(request.url).toBe("https://crm.example.com/hooks/lead?team=a%20b&api%20key=k%261");
    expect(
      redactRequest(request, { type: "apiKey", name: "api key", location: "query", value: "k&1" })
        .url,
    ).toBe("https://crm.example.com/hooks/lead?team=a%20b&api%20key=***");
  });

  it("puts a header API key in its header, and hides it when echoed", () => {
    // Prepare
    const authentication = {
      type: "apiKey",
      name: "X-Api-Key",
      location: "header",
      value: "k-1",
    } as const;

    // Act
    const request = buildAttemptRequest({ ...base, authentication });
    const shown = redactRequest(request, authentication);

    // Assess
    expect(request.headers["X-Api-Key"]).toBe("k-1");
    expect(shown.headers["X-Api-Key"]).toBe("***");
    expect(JSON.stringify(shown)).not.toContain("k-1");
  });

  it("refuses to build a signed request without the app's secret", () => {
    expect(() =>
      buildAttemptRequest({ ...base, authentication: { type: "signature", appId: "app" } }),
    ).toThrow(/client secret/);
  });
});
