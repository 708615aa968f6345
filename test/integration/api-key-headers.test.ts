import { afterAll, describe, expect, it } from "vitest";
import { createWebhookClient } from "#adapters/webhook-client";
import { ValidationError } from "#domain/errors";
import { parseRequestBody, UNSENDABLE_HEADER_NAMES } from "#domain/request-schemas";
import { makeTestCertificate, startReceiver } from "#test/https-receiver";
import { allowLoopbackOnly } from "#test/loopback-only";

const loopbackOnly = allowLoopbackOnly();
const certificate = makeTestCertificate();

afterAll(() => {
  certificate.remove();
  loopbackOnly.restore();
});

function workflowWithHeaderKey(name: string) {
  return {
    name: "Keyed",
    objectType: "contacts",
    actions: [
      {
        type: "webhook",
        url: "https://hooks.example.com/in",
        authentication: { type: "apiKey", name, location: "header", value: "secret-key" },
      },
    ],
  };
}

describe("API-key header names that never reach the receiver's application", () => {
  it.each(["Expect", "Upgrade", "Keep-Alive", "Trailer", "expect", "UPGRADE"])(
    "refuses %s when the workflow is saved, naming the field and the rule",
    (name) => {
      // Act
      const parse = () => parseRequestBody("workflow", workflowWithHeaderKey(name));

      // Assess
      expect(parse).toThrow(ValidationError);
      expect(parse).toThrow(
        "actions[0].authentication.name: must not be a header that does not reach the receiver's application (Expect, Upgrade, Keep-Alive, Trailer)",
      );
    },
  );

  it("accepts them as query parameters, and other header names", () => {
    // Act
    const asQuery = parseRequestBody("workflow", {
      ...workflowWithHeaderKey("x"),
      actions: [
        {
          type: "webhook",
          url: "https://hooks.example.com/in",
          authentication: { type: "apiKey", name: "Expect", location: "query", value: "k" },
        },
      ],
    });
    const other = parseRequestBody("workflow", workflowWithHeaderKey("X-Api-Key"));

    // Assess
    expect(asQuery.actions).toHaveLength(1);
    expect(other.actions).toHaveLength(1);
  });

  it("lists Expect, which a receiver answers itself (417) before its application sees the key", async () => {
    // Prepare
    const receiver = await startReceiver(certificate, () => ({ status: 200 }));
    const client = createWebhookClient({ allowPrivateTargets: true, ca: certificate.cert });
    expect(UNSENDABLE_HEADER_NAMES.has("expect")).toBe(true);

    try {
      // Act
      const result = await client.send({
        method: "POST",
        url: receiver.url("/in"),
        headers: { Expect: "secret-key" },
        body: "{}",
      });

      // Assess
      expect(result).toMatchObject({ ok: true, response: { statusCode: 417 } });
      expect(receiver.requests).toHaveLength(0);
    } finally {
      await client.close();
      await receiver.close();
    }
  });
});
