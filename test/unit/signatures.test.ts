import { createHash, createHmac } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  MAX_TIMESTAMP_AGE_MS,
  signatureHeaders,
  signV1,
  signV2,
  signV3,
  verifyV1,
  verifyV2,
  verifyV3,
} from "#domain/signatures";

const secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const uri = "https://crm.example.com/hooks/lead?source=workflow&b=2&a=1";
const body = '{"vid":101,"properties":{"email":{"value":"ada@example.com"}}}';
const sentAt = 1_700_000_000_000;

function sha256Hex(source: string): string {
  return createHash("sha256").update(Buffer.from(source, "utf8")).digest("hex");
}

function hmacBase64(key: string, source: string): string {
  return createHmac("sha256", Buffer.from(key, "utf8"))
    .update(Buffer.from(source, "utf8"))
    .digest("base64");
}

describe("signV1", () => {
  it("is the lowercase hex SHA-256 of secret + body", () => {
    // Prepare
    const expected = sha256Hex(secret + body);

    // Act
    const signature = signV1(secret, body);

    // Assess
    expect(signature).toBe(expected);
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
  });

  it("matches the example published in HubSpot's v1 validation guide", () => {
    // Prepare
    const hubspotBody =
      '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]';

    // Act
    const signature = signV1(secret, hubspotBody);

    // Assess
    expect(signature).toBe("232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de");
  });
});

describe("signV2", () => {
  it("is the lowercase hex SHA-256 of secret + method + uri + body", () => {
    // Prepare
    const expected = sha256Hex(`${secret}POST${uri}${body}`);

    // Act
    const signature = signV2(secret, "POST", uri, body);

    // Assess
    expect(signature).toBe(expected);
  });

  it("signs a GET with the empty body, matching HubSpot's published GET example", () => {
    // Prepare
    const getUri = "https://www.example.com/webhook_uri";

    // Act
    const signature = signV2(secret, "GET", getUri, "");

    // Assess
    expect(signature).toBe(sha256Hex(`${secret}GET${getUri}`));
    expect(signature).toBe("eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e");
  });

  it("keeps the query string, in its order, in what is signed", () => {
    // Prepare
    const reordered = "https://crm.example.com/hooks/lead?source=workflow&a=1&b=2";
    const withoutQuery = "https://crm.example.com/hooks/lead";

    // Act
    const signature = signV2(secret, "POST", uri, body);

    // Assess
    expect(signature).not.toBe(signV2(secret, "POST", reordered, body));
    expect(signature).not.toBe(signV2(secret, "POST", withoutQuery, body));
  });

  it("hashes a unicode body as UTF-8", () => {
    // Prepare
    const unicodeBody = '{"name":"Zoë Ångström","city":"東京","mood":"🚀"}';
    const expected = createHash("sha256")
      .update(Buffer.concat([Buffer.from(`${secret}POST${uri}`), Buffer.from(unicodeBody, "utf8")]))
      .digest("hex");

    // Act
    const signature = signV2(secret, "POST", uri, unicodeBody);

    // Assess
    expect(signature).toBe(expected);
  });
});

describe("signV3", () => {
  it("is the base64 HMAC-SHA256, keyed with the secret, of method + uri + body + timestamp", () => {
    // Prepare
    const expected = hmacBase64(secret, `POST${uri}${body}${sentAt}`);

    // Act
    const signature = signV3(secret, "POST", uri, body, sentAt);

    // Assess
    expect(signature).toBe(expected);
    expect(Buffer.from(signature, "base64")).toHaveLength(32);
  });

  it("matches the v3 vector of HubSpot's official Python client tests", () => {
    // Prepare
    const vectorBody = "{'example_field':'example_value'}";

    // Act
    const signature = signV3(
      secret,
      "POST",
      "https://www.example.com/webhook_uri",
      vectorBody,
      1_693_657_560_000,
    );

    // Assess
    expect(signature).toBe("K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=");
  });

  it("hashes a unicode body and secret as UTF-8", () => {
    // Prepare
    const unicodeSecret = "sécret-🔑";
    const unicodeBody = '{"name":"Zoë","city":"東京"}';
    const expected = createHmac("sha256", Buffer.from(unicodeSecret, "utf8"))
      .update(Buffer.from(`POST${uri}${unicodeBody}${sentAt}`, "utf8"))
      .digest("base64");

    // Act
    const signature = signV3(unicodeSecret, "POST", uri, unicodeBody, sentAt);

    // Assess
    expect(signature).toBe(expected);
  });

  it("signs percent-encoded characters of the URI as sent, without decoding them", () => {
    // Prepare
    const encodedUri = "https://crm.example.com/hooks/lead?next=a%3Ab%2Fc&tag=%28x%29";
    const decodedUri = "https://crm.example.com/hooks/lead?next=a:b/c&tag=(x)";

    // Act
    const signature = signV3(secret, "POST", encodedUri, body, sentAt);

    // Assess
    expect(signature).toBe(hmacBase64(secret, `POST${encodedUri}${body}${sentAt}`));
    expect(signature).not.toBe(hmacBase64(secret, `POST${decodedUri}${body}${sentAt}`));
  });

  it("refuses a timestamp that is not whole epoch milliseconds", () => {
    // Prepare
    const bad = [1.5, Number.NaN, -1, Number.POSITIVE_INFINITY];

    // Act
    const attempts = bad.map((timestamp) => () => signV3(secret, "POST", uri, body, timestamp));

    // Assess
    for (const attempt of attempts) {
      expect(attempt).toThrow(RangeError);
    }
  });
});

describe("signatureHeaders", () => {
  it("returns the v2 signature with its version header, and v3 with its timestamp", () => {
    // Prepare
    const input = { clientSecret: secret, method: "POST", uri, body, timestamp: sentAt };

    // Act
    const headers = signatureHeaders(input);

    // Assess
    expect(headers).toEqual({
      "X-HubSpot-Signature-Version": "v2",
      "X-HubSpot-Signature": sha256Hex(`${secret}POST${uri}${body}`),
      "X-HubSpot-Request-Timestamp": "1700000000000",
      "X-HubSpot-Signature-v3": hmacBase64(secret, `POST${uri}${body}${sentAt}`),
    });
  });

  it("produces headers that the verifiers accept, for a GET without a body", () => {
    // Prepare
    const input = { clientSecret: secret, method: "GET", uri, body: "", timestamp: sentAt };

    // Act
    const headers = signatureHeaders(input);

    // Assess
    expect(verifyV2({ ...input, signature: headers["X-HubSpot-Signature"] as string })).toBe(true);
    expect(
      verifyV3({
        ...input,
        timestamp: headers["X-HubSpot-Request-Timestamp"] as string,
        signature: headers["X-HubSpot-Signature-v3"] as string,
        now: sentAt + 1_000,
      }),
    ).toBe(true);
  });
});

describe("verifyV1", () => {
  const signature = sha256Hex(secret + body);

  it("accepts a matching signature", () => {
    // Prepare
    const input = { clientSecret: secret, body, signature };

    // Act
    const valid = verifyV1(input);

    // Assess
    expect(valid).toBe(true);
  });

  it("rejects a tampered body or a wrong secret", () => {
    // Prepare
    const tamperedBody = body.replace("ada", "eve");

    // Act
    const withTamperedBody = verifyV1({ clientSecret: secret, body: tamperedBody, signature });
    const withWrongSecret = verifyV1({ clientSecret: `${secret}x`, body, signature });

    // Assess
    expect(withTamperedBody).toBe(false);
    expect(withWrongSecret).toBe(false);
  });

  it("rejects wrong-length, empty or missing signatures without throwing", () => {
    // Prepare
    const candidates = [signature.slice(0, -1), `${signature}0`, "", "é".repeat(64)];

    // Act
    const results = candidates.map((candidate) =>
      verifyV1({ clientSecret: secret, body, signature: candidate }),
    );
    const missing = verifyV1({
      clientSecret: secret,
      body,
      signature: undefined as unknown as string,
    });

    // Assess
    expect(results).toEqual([false, false, false, false]);
    expect(missing).toBe(false);
  });
});

describe("verifyV2", () => {
  const signature = sha256Hex(`${secret}POST${uri}${body}`);
  const valid = { clientSecret: secret, method: "POST", uri, body, signature };

  it("accepts a matching signature", () => {
    // Prepare
    const input = valid;

    // Act
    const result = verifyV2(input);

    // Assess
    expect(result).toBe(true);
  });

  it.each([
    ["body", { body: `${body} ` }],
    ["secret", { clientSecret: "another-secret" }],
    ["uri", { uri: uri.replace("a=1", "a=2") }],
    ["method", { method: "GET" }],
    ["signature case", { signature: signature.toUpperCase() }],
  ])("rejects a tampered %s", (_field, change) => {
    // Prepare
    const input = { ...valid, ...change };

    // Act
    const result = verifyV2(input);

    // Assess
    expect(result).toBe(false);
  });

  it("rejects a wrong-length signature without throwing", () => {
    // Prepare
    const input = { ...valid, signature: signature.slice(2) };

    // Act
    const result = verifyV2(input);

    // Assess
    expect(result).toBe(false);
  });
});

describe("verifyV3", () => {
  const signature = hmacBase64(secret, `POST${uri}${body}${sentAt}`);
  const valid = {
    clientSecret: secret,
    method: "POST",
    uri,
    body,
    timestamp: String(sentAt),
    signature,
    now: sentAt,
  };

  afterEach(() => {
    vi.useRealTimers();
  });

  it("accepts a fresh request, with the timestamp as header text or as a number", () => {
    // Prepare
    const asNumber = { ...valid, timestamp: sentAt };

    // Act
    const fromHeader = verifyV3(valid);
    const fromNumber = verifyV3(asNumber);

    // Assess
    expect(fromHeader).toBe(true);
    expect(fromNumber).toBe(true);
  });

  it.each([
    ["4:59 old", 4 * 60_000 + 59_000, true],
    ["exactly 5:00 old", 5 * 60_000, true],
    ["5:01 old", 5 * 60_000 + 1_000, false],
    ["4:59 ahead (clock skew)", -(4 * 60_000 + 59_000), true],
    ["5:01 ahead", -(5 * 60_000 + 1_000), false],
  ])("when the request is %s (age %i ms), returns %s", (_label, age, expected) => {
    // Prepare
    const input = { ...valid, now: sentAt + (age as number) };

    // Act
    const result = verifyV3(input);

    // Assess
    expect(result).toBe(expected);
  });

  it("uses the real clock when no `now` is given", () => {
    // Prepare
    vi.useFakeTimers();
    const { now: _ignored, ...withoutNow } = valid;

    // Act
    vi.setSystemTime(sentAt + 60_000);
    const fresh = verifyV3(withoutNow);
    vi.setSystemTime(sentAt + MAX_TIMESTAMP_AGE_MS + 1);
    const stale = verifyV3(withoutNow);

    // Assess
    expect(fresh).toBe(true);
    expect(stale).toBe(false);
  });

  it("honours a custom replay window", () => {
    // Prepare
    const input = { ...valid, now: sentAt + 61_000, maxAgeMs: 60_000 };

    // Act
    const result = verifyV3(input);

    // Assess
    expect(result).toBe(false);
  });

  it.each(["abc", "", "1700000000000.0", "1.7e12", " 1700000000000", "-1700000000000", "NaN"])(
    "rejects the non-numeric timestamp %j even when it was signed as is",
    (timestamp) => {
      // Prepare
      const input = {
        ...valid,
        timestamp,
        signature: hmacBase64(secret, `POST${uri}${body}${timestamp}`),
      };

      // Act
      const result = verifyV3(input);

      // Assess
      expect(result).toBe(false);
    },
  );

  it.each([
    ["body", { body: body.replace("ada", "eve") }],
    ["secret", { clientSecret: "another-secret" }],
    ["uri", { uri: uri.replace("https://", "http://") }],
    ["method", { method: "PUT" }],
    ["timestamp", { timestamp: String(sentAt + 1) }],
  ])("rejects a tampered %s", (_field, change) => {
    // Prepare
    const input = { ...valid, ...change };

    // Act
    const result = verifyV3(input);

    // Assess
    expect(result).toBe(false);
  });

  it("does not decode percent-encoded characters of the URI, like HubSpot's Node client", () => {
    // Prepare
    const encodedUri = "https://crm.example.com/hooks/lead?next=a%3Ab";
    const signedAsSent = hmacBase64(secret, `POST${encodedUri}${body}${sentAt}`);

    // Act
    const asSent = verifyV3({ ...valid, uri: encodedUri, signature: signedAsSent });
    const decoded = verifyV3({
      ...valid,
      uri: "https://crm.example.com/hooks/lead?next=a:b",
      signature: signedAsSent,
    });

    // Assess
    expect(asSent).toBe(true);
    expect(decoded).toBe(false);
  });

  it("rejects wrong-length or missing signatures without throwing", () => {
    // Prepare
    const candidates = [signature.slice(0, -1), `${signature}=`, "", "x"];

    // Act
    const results = candidates.map((candidate) => verifyV3({ ...valid, signature: candidate }));
    const missing = verifyV3({ ...valid, signature: undefined as unknown as string });

    // Assess
    expect(results).toEqual([false, false, false, false]);
    expect(missing).toBe(false);
  });
});
