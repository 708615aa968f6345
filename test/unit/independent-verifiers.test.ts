/**
 * Requests as the system builds them, checked by verifiers written by others: HubSpot's official
 * Node client (`@hubspot/api-client`) and the Standard Webhooks reference library.
 */
import { Signature } from "@hubspot/api-client";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { verifyStandardWebhook, verifyV1, verifyV2, verifyV3 } from "#domain/signatures";
import { buildAttemptRequest, type OutgoingRequest } from "#domain/webhook-request";
import {
  PREVIOUS_SECRET_LIFETIME_MS,
  type StoredStandardWebhooksAuthentication,
} from "#domain/workflow";

const clientSecret = "a2b4c6d8-0000-4e4e-9f9f-client-secret";
const previousClientSecret = "a2b4c6d8-1111-4e4e-9f9f-older-secret";
const swSecret = `whsec_${Buffer.alloc(32, 0x5a).toString("base64")}`;
const swPrevious = `whsec_${Buffer.alloc(24, 0xa5).toString("base64")}`;
const body = '{"vid":101,"properties":{"firstname":{"value":"Zoë ✓"}}}';

/** URLs whose query strings and paths carry percent-encoded and reserved characters. */
const urls = [
  "https://crm.example.com/hooks/lead",
  "https://crm.example.com/hooks/lead?source=workflow&b=2&a=1",
  "https://crm.example.com/hooks/caf%C3%A9?q=a%26b%3Dc&path=%2Fx%2Fy&t=10%3A30&e=%3F",
  "https://crm.example.com:8443/h%20ooks/?name=Zo%C3%AB+L&list=1,2&empty=",
];

const header = (request: OutgoingRequest, name: string) => {
  const value = request.headers[name];
  if (value === undefined) throw new Error(`no ${name} header`);
  return value;
};

function signedRequest(method: "GET" | "POST", url: string, now = Date.now()) {
  return buildAttemptRequest({
    deliveryId: "4f1c2a9e-0b7d-4c1e-9a3f-2d6e8b0c1a57",
    attempt: 1,
    method,
    url,
    authentication: { type: "signature", appId: "app-1" },
    body,
    clientSecret,
    now,
  });
}

describe("HubSpot's official client verifies what the system sends", () => {
  describe.each(["POST", "GET"] as const)("%s", (method) => {
    it.each(urls)("v2 and v3 of %s", (url) => {
      // Act
      const request = signedRequest(method, url);

      // Assess
      const common = {
        method,
        clientSecret,
        requestBody: request.body ?? "",
        url: request.url,
      };
      expect(header(request, "X-HubSpot-Signature-Version")).toBe("v2");
      expect(
        Signature.isValid({
          ...common,
          signatureVersion: "v2",
          signature: header(request, "X-HubSpot-Signature"),
        }),
      ).toBe(true);
      expect(
        Signature.isValid({
          ...common,
          signatureVersion: "v3",
          signature: header(request, "X-HubSpot-Signature-v3"),
          timestamp: Number(header(request, "X-HubSpot-Request-Timestamp")),
        }),
      ).toBe(true);
      expect(
        Signature.isValid({
          ...common,
          clientSecret: "another-secret-entirely",
          signatureVersion: "v3",
          signature: header(request, "X-HubSpot-Signature-v3"),
          timestamp: Number(header(request, "X-HubSpot-Request-Timestamp")),
        }),
      ).toBe(false);
    });
  });

  it("verifies both secrets while a rotated app secret still signs, and only the new one after", () => {
    // Prepare
    const now = Date.now();
    const previous = { secret: previousClientSecret, expiresAt: now + PREVIOUS_SECRET_LIFETIME_MS };
    const url = urls[2] as string;
    const input = {
      deliveryId: "d-1",
      attempt: 1,
      method: "POST" as const,
      url,
      authentication: { type: "signature" as const, appId: "app-1" },
      body,
      clientSecret,
      previousClientSecret: previous,
    };

    // Act
    const during = buildAttemptRequest({ ...input, now });
    const after = buildAttemptRequest({ ...input, now: previous.expiresAt });

    // Assess
    const check = (secret: string, signature: string, timestamp: string) =>
      Signature.isValid({
        method: "POST",
        clientSecret: secret,
        requestBody: body,
        url,
        signatureVersion: "v3",
        signature,
        timestamp: Number(timestamp),
      });
    const timestamp = header(during, "X-HubSpot-Request-Timestamp");
    expect(check(clientSecret, header(during, "X-HubSpot-Signature-v3"), timestamp)).toBe(true);
    expect(
      check(previousClientSecret, header(during, "X-HubSpot-Signature-v3-Previous"), timestamp),
    ).toBe(true);
    expect(
      Signature.isValid({
        method: "POST",
        clientSecret: previousClientSecret,
        requestBody: body,
        url,
        signatureVersion: "v2",
        signature: header(during, "X-HubSpot-Signature-Previous"),
      }),
    ).toBe(true);
    expect(after.headers["X-HubSpot-Signature-Previous"]).toBeUndefined();
    expect(after.headers["X-HubSpot-Signature-v3-Previous"]).toBeUndefined();
  });
});

describe("our verifiers accept what HubSpot's client signs", () => {
  it.each(urls)("v1, v2 and v3 for %s", (url) => {
    // Prepare
    const timestamp = Date.now();
    const options = { clientSecret, requestBody: body, url, timestamp, signature: "" };

    // Act
    const v1 = Signature.getSignature("POST", "v1", options);
    const v2 = Signature.getSignature("POST", "v2", options);
    const v3 = Signature.getSignature("POST", "v3", options);

    // Assess
    expect(verifyV1({ clientSecret, body, signature: v1 })).toBe(true);
    expect(verifyV2({ clientSecret, method: "POST", uri: url, body, signature: v2 })).toBe(true);
    expect(
      verifyV3({ clientSecret, method: "POST", uri: url, body, timestamp, signature: v3 }),
    ).toBe(true);
    expect(
      verifyV3({ clientSecret, method: "GET", uri: url, body, timestamp, signature: v3 }),
    ).toBe(false);
  });

  it("for a GET, whose body is empty", () => {
    // Prepare
    const url = urls[2] as string;
    const timestamp = Date.now();
    const options = { clientSecret, requestBody: "", url, timestamp, signature: "" };

    // Act
    const v2 = Signature.getSignature("GET", "v2", options);
    const v3 = Signature.getSignature("GET", "v3", options);

    // Assess
    expect(verifyV2({ clientSecret, method: "GET", uri: url, body: "", signature: v2 })).toBe(true);
    expect(
      verifyV3({ clientSecret, method: "GET", uri: url, body: "", timestamp, signature: v3 }),
    ).toBe(true);
  });
});

describe("the Standard Webhooks library verifies what the system sends", () => {
  function standardRequest(
    method: "GET" | "POST",
    authentication: StoredStandardWebhooksAuthentication,
    now = Date.now(),
  ) {
    return buildAttemptRequest({
      deliveryId: "7d3e9b2a-5c41-4f0e-8a6b-1e2f3a4b5c6d",
      attempt: 3,
      method,
      url: urls[2] as string,
      authentication,
      body,
      now,
    });
  }

  it.each(["POST", "GET"] as const)(
    "%s: webhook-id is the delivery id, the timestamp in seconds",
    (method) => {
      // Prepare
      const now = Date.now();

      // Act
      const request = standardRequest(method, { type: "standardWebhooks", secret: swSecret }, now);

      // Assess
      expect(header(request, "webhook-id")).toBe("7d3e9b2a-5c41-4f0e-8a6b-1e2f3a4b5c6d");
      expect(header(request, "webhook-timestamp")).toBe(String(Math.floor(now / 1000)));
      expect(header(request, "webhook-signature")).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      const verified = new Webhook(swSecret).verify(request.body ?? "", request.headers);
      expect(verified).toEqual(method === "POST" ? JSON.parse(body) : undefined);
      expect(() => new Webhook(swPrevious).verify(request.body ?? "", request.headers)).toThrow(
        /No matching signature/,
      );
      expect(
        verifyStandardWebhook({
          secret: swSecret,
          id: header(request, "webhook-id"),
          timestamp: header(request, "webhook-timestamp"),
          signature: header(request, "webhook-signature"),
          body: request.body ?? "",
        }),
      ).toBe(true);
    },
  );

  it("signs with both secrets while the replaced one has not expired", () => {
    // Prepare
    const now = Date.now();
    const authentication: StoredStandardWebhooksAuthentication = {
      type: "standardWebhooks",
      secret: swSecret,
      previousSecret: { secret: swPrevious, expiresAt: now + 60_000 },
    };

    // Act
    const during = standardRequest("POST", authentication, now);
    const after = standardRequest("POST", authentication, now + 60_000);

    // Assess
    expect(header(during, "webhook-signature").split(" ")).toHaveLength(2);
    expect(new Webhook(swSecret).verify(body, during.headers)).toEqual(JSON.parse(body));
    expect(new Webhook(swPrevious).verify(body, during.headers)).toEqual(JSON.parse(body));
    expect(header(after, "webhook-signature").split(" ")).toHaveLength(1);
  });

  it("and our verifier accepts what the library signs, refusing old timestamps", () => {
    // Prepare
    const id = "msg_2Lh9Q0";
    const at = new Date();
    const signature = new Webhook(swSecret).sign(id, at, body);
    const seconds = Math.floor(at.getTime() / 1000);
    const input = { secret: swSecret, id, timestamp: seconds, signature, body };

    // Act
    const fresh = verifyStandardWebhook(input);
    const stale = verifyStandardWebhook({ ...input, now: at.getTime() + 301_000 });
    const listed = verifyStandardWebhook({ ...input, signature: `v1,bm9wZQ== ${signature}` });
    const tampered = verifyStandardWebhook({ ...input, body: `${body} ` });

    // Assess
    expect(fresh).toBe(true);
    expect(stale).toBe(false);
    expect(listed).toBe(true);
    expect(tampered).toBe(false);
  });
});
