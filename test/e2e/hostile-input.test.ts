import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import type { ReceivedRequest, ReceiverAnswer } from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

/**
 * Input that the API once answered with a 500, through the local system: each gets a 4xx that
 * names the field and the rule, or is stored and works.
 */
let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 0.001 });
  ({ call, receiver, answers } = system);
});

afterAll(async () => {
  await system?.stop();
});

async function ended(enrollmentId: string, timeoutMs = 30_000) {
  return eventually(
    `enrollment ${enrollmentId} to end`,
    async () => {
      const { body } = await call("GET", `/enrollments/${enrollmentId}`);
      expect(["completed", "failed"]).toContain(body.status);
      return body;
    },
    { timeoutMs },
  );
}

/** A workflow with one webhook whose custom body has the given fields, as raw JSON text. */
function customBodyWorkflow(url: string, fieldsJson: string): string {
  return `{"name": "Numbers", "objectType": "contacts", "actions": [{"type": "webhook", "url": ${JSON.stringify(url)}, "body": {"type": "custom", "fields": ${fieldsJson}}}]}`;
}

describe("numbers in a custom body", () => {
  it.each([["1e200"], ["-1e200"], ["1e-200"], ["12345678901234567890123"], ["9007199254740992"]])(
    "refuses %s, which DynamoDB cannot store as it is, with a 400 naming the field",
    async (number) => {
      // Prepare
      const before = (await call("GET", "/workflows")).body;

      // Act
      const response = await call(
        "POST",
        "/workflows",
        customBodyWorkflow(receiver.url("/numbers"), `[{"key": "n", "value": ${number}}]`),
      );

      // Assess
      expect(response.status).toBe(400);
      expect(response.body.error.message).toBe(
        "actions[0].body.fields[0].value: must be 0 or between 1e-130 and 9007199254740991 (2^53 - 1) in size; send other numbers as a string",
      );
      expect((await call("GET", "/workflows")).body).toEqual(before);
    },
  );

  it("stores the largest and smallest numbers it accepts and sends them as given", async () => {
    // Prepare
    await call("PUT", "/objects/contacts/numbers", { properties: { email: "n@example.com" } });
    const fields =
      '[{"key": "max", "value": 9007199254740991}, {"key": "min", "value": -9007199254740991}, {"key": "tiny", "value": 1e-130}, {"key": "half", "value": 0.5}, {"key": "zero", "value": 0}]';

    // Act
    const created = await call(
      "POST",
      "/workflows",
      customBodyWorkflow(receiver.url("/numbers"), fields),
    );
    const enrolled = await call("POST", `/workflows/${created.body.id}/enrollments`, {
      objectId: "numbers",
    });
    const enrollment = await ended(enrolled.body.enrollmentId);

    // Assess
    expect(created.status).toBe(201);
    expect(
      created.body.actions[0].body.fields.map((field: { value: number }) => field.value),
    ).toEqual([9007199254740991, -9007199254740991, 1e-130, 0.5, 0]);
    expect(enrollment.status).toBe("completed");
    expect(receiver.requestsTo("/numbers").at(-1)?.body).toBe(
      '{"max":9007199254740991,"min":-9007199254740991,"tiny":1e-130,"half":0.5,"zero":0}',
    );
  });
});

describe("workflows larger than a stored item", () => {
  /** A workflow of `count` setProperty actions whose values are `length` characters each. */
  const large = (count: number, length: number) => ({
    name: "Large",
    objectType: "contacts",
    actions: Array.from({ length: count }, (_, index) => ({
      type: "setProperty",
      property: `p${index}`,
      value: String(index % 10).repeat(length),
    })),
  });

  it.each([
    ["about 500 KB", large(50, 10_000)],
    ["just under the 1 MiB request limit", large(50, 20_000)],
  ])(
    "are refused at %s with a 413 that says the rule, on create and on replace",
    async (_size, definition) => {
      // Prepare
      const existing = await call("POST", "/workflows", large(1, 10));
      const before = (await call("GET", "/workflows")).body;

      // Act
      const created = await call("POST", "/workflows", definition);
      const replaced = await call("PUT", `/workflows/${existing.body.id}`, definition);

      // Assess
      for (const response of [created, replaced]) {
        expect(response.status).toBe(413);
        expect(response.body.error.message).toMatch(
          /^actions: the workflow would take \d+ bytes stored; at most 300000 are kept$/,
        );
      }
      expect((await call("GET", "/workflows")).body).toEqual(before);
    },
  );

  it("stores a workflow just under the limit and runs an enrollment of it to the end", async () => {
    // Prepare
    await call("PUT", "/objects/contacts/large", { properties: { email: "l@example.com" } });
    const definition = large(5, 58_000);

    // Act
    const created = await call("POST", "/workflows", definition);
    const enrolled = await call("POST", `/workflows/${created.body.id}/enrollments`, {
      objectId: "large",
    });
    const enrollment = await ended(enrolled.body.enrollmentId, 60_000);

    // Assess
    expect(created.status).toBe(201);
    expect(enrolled.status).toBe(202);
    expect(enrollment.status).toBe("completed");
    const record = await call("GET", "/objects/contacts/large");
    expect(record.body.properties.p4.value).toHaveLength(58_000);
  });
});

describe("an API key kept behind its *** mask", () => {
  it("is not carried to another host: the edit is refused until the key is given again", async () => {
    // Prepare
    const definition = (url: string, value: string) => ({
      name: "Keyed",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          url,
          authentication: { type: "apiKey", name: "X-Api-Key", location: "header", value },
        },
      ],
    });
    const created = await call("POST", "/workflows", definition(receiver.url("/keyed"), "k-1"));
    const path = `/workflows/${created.body.id}`;
    const before = (await call("GET", path)).body;

    // Act
    const moved = await call("PUT", path, definition("https://elsewhere.example.com/in", "***"));
    const unchanged = (await call("GET", path)).body;
    const samePort = await call("PUT", path, definition(receiver.url("/other-path"), "***"));
    const newKey = await call("PUT", path, definition("https://elsewhere.example.com/in", "k-2"));

    // Assess
    expect(moved.status).toBe(400);
    expect(moved.body.error.message).toBe(
      "actions[0].authentication.value: must be given again when the URL's host changes; *** keeps the stored key only for the host it was given for",
    );
    expect(unchanged).toEqual(before);
    expect(samePort.status).toBe(200);
    expect(newKey.status).toBe(200);
    expect(newKey.body.actions[0].authentication.value).toBe("***");
  });

  it("is not carried to another port of the same host", async () => {
    // Prepare
    const action = (url: string, value: string) => ({
      type: "webhook",
      url,
      authentication: { type: "apiKey", name: "api_key", location: "query", value },
    });
    const created = await call("POST", "/workflows", {
      name: "Keyed by port",
      objectType: "contacts",
      actions: [action("https://127.0.0.1:8443/in", "k-1")],
    });

    // Act
    const moved = await call("PUT", `/workflows/${created.body.id}`, {
      name: "Keyed by port",
      objectType: "contacts",
      actions: [action("https://127.0.0.1:9443/in", "***")],
    });

    // Assess
    expect(moved.status).toBe(400);
    expect(moved.body.error.message).toMatch(/^actions\[0\]\.authentication\.value: /);
  });
});

describe("a receiver that echoes its request", () => {
  /** Answers with everything it was sent, in its body and in a header. */
  const echo = (request: ReceivedRequest): ReceiverAnswer => ({
    status: 400,
    headers: { "x-echo": `${request.url} ${String(request.headers["x-api-key"] ?? "")}` },
    body: JSON.stringify({ url: request.url, headers: request.headers, body: request.body }),
  });

  it.each([
    ["header", "X-Api-Key"],
    ["query", "api_key"],
  ] as const)(
    "never gets an API key sent in a %s shown back, by the test action or the attempt log",
    async (location, name) => {
      // Prepare
      const key = `key-${location}-0123456789`;
      answers.set(`/echo-${location}`, (_previous, request) => echo(request));
      await call("PUT", "/objects/contacts/echoed", { properties: { email: "e@example.com" } });
      const workflow = await call("POST", "/workflows", {
        name: "Echoed",
        objectType: "contacts",
        actions: [
          {
            type: "webhook",
            url: receiver.url(`/echo-${location}`),
            authentication: { type: "apiKey", name, location, value: key },
          },
        ],
      });

      // Act
      const tested = await call(
        "POST",
        `/workflows/${workflow.body.id}/actions/${workflow.body.actions[0].id}/test`,
        { objectId: "echoed" },
      );
      const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
        objectId: "echoed",
      });
      const enrollment = await ended(enrolled.body.enrollmentId);
      const delivery = await call("GET", `/deliveries/${enrollment.deliveries[0].deliveryId}`);

      // Assess: the receiver did get the key, and echoed it
      expect(receiver.requestsTo(`/echo-${location}`).length).toBe(2);
      expect(JSON.stringify(receiver.requests.at(-1))).toContain(key);
      expect(tested.body.response.body).toContain("***");
      expect(delivery.body.attempts[0].responseBody).toContain("***");
      for (const shown of [tested.body, enrollment, delivery.body]) {
        expect(JSON.stringify(shown)).not.toContain(key);
      }
    },
  );

  it("never gets a client secret it echoes shown back", async () => {
    // Prepare
    const clientSecret = "client-secret-echoed-0123456789";
    answers.set("/echo-secret", () => ({
      status: 401,
      body: `signature mismatch; did you sign with ${clientSecret}?`,
    }));
    const app = await call("POST", "/apps", { name: "Echo", clientSecret });
    await call("PUT", "/objects/contacts/signed", { properties: { email: "s@example.com" } });
    const workflow = await call("POST", "/workflows", {
      name: "Signed",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          url: receiver.url("/echo-secret"),
          authentication: { type: "signature", appId: app.body.appId },
        },
      ],
    });

    // Act
    const tested = await call(
      "POST",
      `/workflows/${workflow.body.id}/actions/${workflow.body.actions[0].id}/test`,
      { objectId: "signed" },
    );
    const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
      objectId: "signed",
    });
    const enrollment = await ended(enrolled.body.enrollmentId);

    // Assess
    expect(tested.body.response.body).toBe("signature mismatch; did you sign with ***?");
    expect(enrollment.deliveries[0].attempts[0].responseBody).toBe(
      "signature mismatch; did you sign with ***?",
    );
  });
});
