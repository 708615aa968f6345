import { describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { ValidationError } from "#domain/errors";
import { parseId, parseObjectType, parseRequestBody, requestBodies } from "#domain/request-schemas";
import { MAX_TARGET_URL_LENGTH, targetUrlProblem } from "#domain/target-url";
import {
  assignActionIds,
  redactWorkflow,
  type StoredStandardWebhooksAuthentication,
  type Workflow,
  type WorkflowDefinition,
} from "#domain/workflow";
import type { RequestBodyName } from "#shared/contract";

function validationErrorOf(act: () => unknown): ValidationError {
  try {
    act();
  } catch (error) {
    if (error instanceof ValidationError) {
      return error;
    }
    throw error;
  }
  throw new Error("expected a ValidationError, but the input was accepted");
}

function workflowWith(action: Record<string, unknown>): Record<string, unknown> {
  return { name: "Send new leads", objectType: "contacts", actions: [action] };
}

function webhookWith(fields: Record<string, unknown>): Record<string, unknown> {
  return workflowWith({ type: "webhook", url: "https://crm.example.com/hooks/lead", ...fields });
}

function customBody(fields: unknown[]): Record<string, unknown> {
  return { type: "custom", fields };
}

function manyProperties(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, "v"]));
}

interface RejectionCase {
  readonly rule: string;
  readonly name: RequestBodyName;
  readonly input: unknown;
  readonly field: string;
  readonly message: RegExp;
}

const rejections: RejectionCase[] = [
  {
    rule: "an http URL",
    name: "workflow",
    input: webhookWith({ url: "http://crm.example.com/hook" }),
    field: "actions[0].url",
    message: /^must be an absolute https:\/\/ URL$/,
  },
  {
    rule: "a relative URL",
    name: "workflow",
    input: webhookWith({ url: "/hooks/lead" }),
    field: "actions[0].url",
    message: /^must be an absolute https:\/\/ URL$/,
  },
  {
    rule: "an ftp URL",
    name: "workflow",
    input: webhookWith({ url: "ftp://files.example.com/lead" }),
    field: "actions[0].url",
    message: /^must be an absolute https:\/\/ URL$/,
  },
  {
    rule: "an https URL without a host",
    name: "workflow",
    input: webhookWith({ url: "https:///hooks" }),
    field: "actions[0].url",
    message: /^a host is required$/,
  },
  {
    rule: "a missing url",
    name: "workflow",
    input: workflowWith({ type: "webhook" }),
    field: "actions[0].url",
    message: /^is required$/,
  },
  {
    rule: "a URL with a user name and password",
    name: "workflow",
    input: webhookWith({ url: "https://user:secret@crm.example.com/hook" }),
    field: "actions[0].url",
    message: /^must not contain a user name or password$/,
  },
  {
    rule: "a URL with a fragment",
    name: "workflow",
    input: webhookWith({ url: "https://crm.example.com/hook#top" }),
    field: "actions[0].url",
    message: /^must not contain a #fragment$/,
  },
  {
    rule: "a URL over 2048 characters",
    name: "workflow",
    input: webhookWith({ url: `https://crm.example.com/${"a".repeat(2048)}` }),
    field: "actions[0].url",
    message: /^must be at most 2048 characters$/,
  },
  {
    rule: "a URL with a port of 0",
    name: "workflow",
    input: webhookWith({ url: "https://crm.example.com:0/hook" }),
    field: "actions[0].url",
    message: /^must use a port between 1 and 65535$/,
  },
  {
    rule: "a URL with a no-break space",
    name: "workflow",
    input: webhookWith({ url: "https://crm.example.com/a\u00a0b" }),
    field: "actions[0].url",
    message: /^must not contain spaces or control characters$/,
  },
  {
    rule: "a url that is not a string",
    name: "workflow",
    input: webhookWith({ url: 42 }),
    field: "actions[0].url",
    message: /^must be a string$/,
  },
  {
    rule: "a method other than POST or GET",
    name: "workflow",
    input: webhookWith({ method: "PUT" }),
    field: "actions[0].method",
    message: /^must be one of POST, GET$/,
  },
  {
    rule: "an unknown authentication type",
    name: "workflow",
    input: webhookWith({ authentication: { type: "basic" } }),
    field: "actions[0].authentication.type",
    message: /^must be one of signature, apiKey, standardWebhooks$/,
  },
  {
    rule: "a Standard Webhooks secret without its whsec_ prefix",
    name: "workflow",
    input: webhookWith({
      authentication: { type: "standardWebhooks", secret: Buffer.alloc(32, 7).toString("base64") },
    }),
    field: "actions[0].authentication.secret",
    message: /^must be whsec_ followed by the base64 of a 24 to 64 byte key$/,
  },
  {
    rule: "a Standard Webhooks key shorter than 24 bytes",
    name: "workflow",
    input: webhookWith({
      authentication: {
        type: "standardWebhooks",
        secret: `whsec_${Buffer.alloc(16, 7).toString("base64")}`,
      },
    }),
    field: "actions[0].authentication.secret",
    message: /^must be whsec_ followed by the base64 of a 24 to 64 byte key$/,
  },
  {
    rule: "a Standard Webhooks key longer than 64 bytes",
    name: "workflow",
    input: webhookWith({
      authentication: {
        type: "standardWebhooks",
        secret: `whsec_${Buffer.alloc(65, 7).toString("base64")}`,
      },
    }),
    field: "actions[0].authentication.secret",
    message: /^must be whsec_ followed by the base64 of a 24 to 64 byte key$/,
  },
  {
    rule: "an API key header that replaces a Standard Webhooks header",
    name: "workflow",
    input: webhookWith({
      authentication: { type: "apiKey", name: "Webhook-Signature", location: "header", value: "x" },
    }),
    field: "actions[0].authentication.name",
    message: /^must not be a header that every webhook request sets itself$/,
  },
  {
    rule: "signature authentication without appId",
    name: "workflow",
    input: webhookWith({ authentication: { type: "signature" } }),
    field: "actions[0].authentication.appId",
    message: /^is required$/,
  },
  {
    rule: "an API key in an unknown location",
    name: "workflow",
    input: webhookWith({
      authentication: { type: "apiKey", name: "X-Api-Key", location: "body", value: "k" },
    }),
    field: "actions[0].authentication.location",
    message: /^must be one of header, query$/,
  },
  {
    rule: "an API key name that is not a header token",
    name: "workflow",
    input: webhookWith({
      authentication: { type: "apiKey", name: "X Api Key", location: "header", value: "k" },
    }),
    field: "actions[0].authentication.name",
    message: /HTTP header name/,
  },
  {
    rule: "an API key header that replaces one the system sets",
    name: "workflow",
    input: webhookWith({
      authentication: {
        type: "apiKey",
        name: "X-HubSpot-Signature",
        location: "header",
        value: "k",
      },
    }),
    field: "actions[0].authentication.name",
    message: /^must not be a header that every webhook request sets itself$/,
  },
  {
    rule: "an empty action list",
    name: "workflow",
    input: { name: "n", objectType: "contacts", actions: [] },
    field: "actions",
    message: /^must have at least 1 item$/,
  },
  {
    rule: "more than 50 actions",
    name: "workflow",
    input: {
      name: "n",
      objectType: "contacts",
      actions: Array.from({ length: 51 }, () => ({ type: "delay", seconds: 1 })),
    },
    field: "actions",
    message: /^must have at most 50 items$/,
  },
  {
    rule: "an unknown objectType",
    name: "workflow",
    input: { name: "n", objectType: "people", actions: [{ type: "delay", seconds: 1 }] },
    field: "objectType",
    message: /^must be one of contacts, companies, deals, tickets$/,
  },
  {
    rule: "an unknown action type",
    name: "workflow",
    input: workflowWith({ type: "email" }),
    field: "actions[0].type",
    message: /^must be one of webhook, setProperty, delay$/,
  },
  {
    rule: "a negative delay",
    name: "workflow",
    input: workflowWith({ type: "delay", seconds: -5 }),
    field: "actions[0].seconds",
    message: /^must be at least 1$/,
  },
  {
    rule: "a non-integer delay",
    name: "workflow",
    input: workflowWith({ type: "delay", seconds: 1.5 }),
    field: "actions[0].seconds",
    message: /^must be a whole number$/,
  },
  {
    rule: "a delay over 90 days",
    name: "workflow",
    input: workflowWith({ type: "delay", seconds: 90 * 24 * 3600 + 1 }),
    field: "actions[0].seconds",
    message: /^must be at most 7776000$/,
  },
  {
    rule: "a delay given as a string",
    name: "workflow",
    input: workflowWith({ type: "delay", seconds: "60" }),
    field: "actions[0].seconds",
    message: /^must be a number$/,
  },
  {
    rule: "an unknown top-level field",
    name: "workflow",
    input: { ...webhookWith({}), enabled: true },
    field: "enabled",
    message: /^unknown field$/,
  },
  {
    rule: "an unknown field in an action",
    name: "workflow",
    input: webhookWith({ retries: 3 }),
    field: "actions[0].retries",
    message: /^unknown field$/,
  },
  {
    rule: "an action id sent by the client",
    name: "workflow",
    input: webhookWith({ id: "a-1" }),
    field: "actions[0].id",
    message: /^is assigned by the server; leave it out$/,
  },
  {
    rule: "duplicate custom body keys",
    name: "workflow",
    input: webhookWith({
      body: customBody([
        { key: "email", property: "email" },
        { key: "source", value: "hubspot" },
        { key: "email", value: "x" },
      ]),
    }),
    field: "actions[0].body.fields[2].key",
    message: /^must be unique \(fields\[0\] has the same key\)$/,
  },
  {
    rule: "a custom field with both a property and a value",
    name: "workflow",
    input: webhookWith({ body: customBody([{ key: "k", property: "email", value: "v" }]) }),
    field: "actions[0].body.fields[0]",
    message: /^must be \{key, property\} or \{key, value\}$/,
  },
  {
    rule: "a custom field naming an invalid property",
    name: "workflow",
    input: webhookWith({ body: customBody([{ key: "k", property: "first name" }]) }),
    field: "actions[0].body.fields[0].property",
    message: /^must contain only letters, digits, _ \. or -$/,
  },
  {
    rule: "a custom body with no fields",
    name: "workflow",
    input: webhookWith({ body: customBody([]) }),
    field: "actions[0].body.fields",
    message: /^must have at least 1 item$/,
  },
  {
    rule: "a custom body on a GET",
    name: "workflow",
    input: webhookWith({ method: "GET", body: customBody([{ key: "k", value: "v" }]) }),
    field: "actions[0].body",
    message: /^must not be custom when method is GET/,
  },
  {
    rule: "a workflow name over 200 characters",
    name: "workflow",
    input: { ...webhookWith({}), name: "n".repeat(201) },
    field: "name",
    message: /^must be at most 200 characters$/,
  },
  {
    rule: "a blank workflow name",
    name: "workflow",
    input: { ...webhookWith({}), name: "   " },
    field: "name",
    message: /^must not be blank$/,
  },
  {
    rule: "a setProperty on a reserved property name",
    name: "workflow",
    input: workflowWith({ type: "setProperty", property: "__proto__", value: "x" }),
    field: "actions[0].property",
    message: /^is a reserved name$/,
  },
  {
    rule: "a body that is not an object",
    name: "workflow",
    input: [webhookWith({})],
    field: "body",
    message: /^must be a JSON object$/,
  },
  {
    rule: "a property value over 65,536 characters",
    name: "putObject",
    input: { properties: { notes: "x".repeat(65_537) } },
    field: "properties.notes",
    message: /^must be at most 65536 characters$/,
  },
  {
    rule: "a property value that is an object",
    name: "putObject",
    input: { properties: { "first-name": { first: "Ada" } } },
    field: 'properties["first-name"]',
    message: /^must be a string, number, boolean or null$/,
  },
  {
    rule: "a property name with a space",
    name: "putObject",
    input: { properties: { "first name": "Ada" } },
    field: 'properties["first name"]',
    message: /^name must contain only letters, digits, _ \. or -$/,
  },
  {
    rule: "a property name over 100 characters",
    name: "putObject",
    input: { properties: { ["p".repeat(101)]: "v" } },
    field: `properties["${"p".repeat(100)}…"]`,
    message: /^name must be at most 100 characters$/,
  },
  {
    rule: "more than 1,000 properties",
    name: "putObject",
    input: { properties: manyProperties(1_001) },
    field: "properties",
    message: /^must have at most 1000 properties$/,
  },
  {
    rule: "missing properties",
    name: "putObject",
    input: {},
    field: "properties",
    message: /^is required$/,
  },
  {
    rule: "an objectId with a slash",
    name: "enroll",
    input: { objectId: "contacts/1" },
    field: "objectId",
    message: /^must contain only letters, digits, _ \. : or -$/,
  },
  {
    rule: "an objectId over 100 characters",
    name: "testAction",
    input: { objectId: "1".repeat(101) },
    field: "objectId",
    message: /^must be at most 100 characters$/,
  },
  {
    rule: "an empty app name",
    name: "createApp",
    input: { name: "" },
    field: "name",
    message: /^must not be empty$/,
  },
  {
    rule: "a client secret shorter than 16 characters",
    name: "createApp",
    input: { name: "CRM sync", clientSecret: "short-secret" },
    field: "clientSecret",
    message: /^must be at least 16 characters$/,
  },
  {
    rule: "a client secret with a space",
    name: "createApp",
    input: { name: "CRM sync", clientSecret: "a secret with spaces" },
    field: "clientSecret",
    message: /^must contain only printable ASCII characters without spaces$/,
  },
];

describe("parseRequestBody rejects", () => {
  it.each(rejections)("$rule", ({ name, input, field, message }) => {
    // Prepare: the case's input.

    // Act
    const error = validationErrorOf(() => parseRequestBody(name, input));

    // Assess
    expect(error.field).toBe(field);
    expect(error.rule).toMatch(message);
  });

  it("never echoes a secret value in the message", () => {
    // Prepare
    const apiKey = "sk_live_\u0007hidden";
    const input = webhookWith({
      authentication: { type: "apiKey", name: "X-Api-Key", location: "header", value: apiKey },
    });

    // Act
    const error = validationErrorOf(() => parseRequestBody("workflow", input));

    // Assess
    expect(error.field).toBe("actions[0].authentication.value");
    expect(error.message).not.toContain("hidden");
  });
});

describe("webhook target URLs", () => {
  it.each([
    "http://crm.example.com/",
    "https://",
    "https://:443/",
    "https://\\\\crm.example.com/",
    "https://@crm.example.com/",
    "https://user@crm.example.com/",
    "https://crm.example.com/\u0001",
    "https://crm.example.com/\u3000",
    "https://crm.example.com:99999/",
    `https://crm.example.com/${"a".repeat(MAX_TARGET_URL_LENGTH)}`,
  ])("refuses %j with the URL policy's own words", (url) => {
    // Prepare
    const input = webhookWith({ url });

    // Act
    const error = validationErrorOf(() => parseRequestBody("workflow", input));

    // Assess
    expect(error.field).toBe("actions[0].url");
    expect(error.rule).toBe(targetUrlProblem(url));
  });
});

describe("parseRequestBody accepts", () => {
  it("a minimal webhook action and applies the defaults", () => {
    // Prepare
    const input = webhookWith({});

    // Act
    const workflow = parseRequestBody("workflow", input);

    // Assess
    expect(workflow.actions[0]).toEqual({
      type: "webhook",
      url: "https://crm.example.com/hooks/lead",
      method: "POST",
      body: { type: "all" },
    });
  });

  it("every action type, keeping values and query order as given", () => {
    // Prepare
    const input = {
      name: "Send new leads to the CRM",
      objectType: "deals",
      actions: [
        {
          type: "webhook",
          url: "https://crm.example.com/hooks/lead?z=1&a=2&z=3",
          method: "GET",
          authentication: { type: "apiKey", name: "api_key", location: "query", value: "k-123" },
        },
        {
          type: "webhook",
          url: "https://crm.example.com:8443/hooks",
          authentication: { type: "signature", appId: "app-1" },
          body: customBody([
            { key: "email", property: "email" },
            { key: "source", value: "hubspot" },
            { key: "score", value: 7 },
            { key: "vip", value: true },
            { key: "owner", value: null },
          ]),
        },
        { type: "setProperty", property: "synced_to_crm", value: "true" },
        { type: "delay", seconds: 90 * 24 * 3600 },
      ],
    };

    // Act
    const workflow = parseRequestBody("workflow", input);

    // Assess
    const [first, ...rest] = input.actions;
    expect(workflow).toEqual({
      ...input,
      actions: [
        { ...first, body: { type: "all" } },
        { ...rest[0], method: "POST" },
        ...rest.slice(1),
      ],
    });
  });

  it("an explicit whole-record body on a GET", () => {
    // Prepare
    const input = webhookWith({ method: "GET", body: { type: "all" } });

    // Act
    const workflow = parseRequestBody("workflow", input);

    // Assess
    expect(workflow.actions[0]).toMatchObject({ method: "GET", body: { type: "all" } });
  });

  it("the largest URL and the most actions allowed", () => {
    // Prepare
    const prefix = "https://crm.example.com/";
    const url = `${prefix}${"a".repeat(2048 - prefix.length)}`;
    const actions = Array.from({ length: 50 }, () => ({ type: "webhook", url }));

    // Act
    const workflow = parseRequestBody("workflow", { name: "n", objectType: "tickets", actions });

    // Assess
    expect(workflow.actions).toHaveLength(50);
    expect(workflow.actions[49]).toMatchObject({ url });
  });

  it("property values of every scalar type, up to 1,000 of them", () => {
    // Prepare
    const scalars = { email: "ada@example.com", score: 42.5, vip: false, owner: null };
    const properties = { ...manyProperties(1_000 - 4), ...scalars };

    // Act
    const body = parseRequestBody("putObject", { properties });

    // Assess
    expect(body.properties).toEqual(properties);
  });

  it("an app with or without a client secret", () => {
    // Prepare
    const secret = "0123456789abcdef!~";

    // Act
    const withSecret = parseRequestBody("createApp", { name: "CRM", clientSecret: secret });
    const withoutSecret = parseRequestBody("createApp", { name: "CRM" });

    // Assess
    expect(withSecret).toEqual({ name: "CRM", clientSecret: secret });
    expect(withoutSecret).toEqual({ name: "CRM" });
  });

  it.each([24, 32, 64])(
    "a Standard Webhooks secret of a %i-byte key, and *** to keep one",
    (bytes) => {
      // Prepare
      const secret = `whsec_${Buffer.alloc(bytes, 0xfb).toString("base64")}`;
      const withSecret = webhookWith({ authentication: { type: "standardWebhooks", secret } });
      const kept = webhookWith({ authentication: { type: "standardWebhooks", secret: "***" } });

      // Act
      const parsed = parseRequestBody("workflow", withSecret);
      const parsedKept = parseRequestBody("workflow", kept);

      // Assess
      expect(parsed.actions[0]).toMatchObject({
        authentication: { type: "standardWebhooks", secret },
      });
      expect(parsedKept.actions[0]).toMatchObject({ authentication: { secret: "***" } });
    },
  );

  it("a secret rotation with or without the new secret", () => {
    // Act
    const given = parseRequestBody("rotateSecret", { clientSecret: "0123456789abcdef" });
    const generated = parseRequestBody("rotateSecret", {});

    // Assess
    expect(given).toEqual({ clientSecret: "0123456789abcdef" });
    expect(generated).toEqual({});
  });

  it("an enrollment and a test request", () => {
    // Prepare
    const input = { objectId: "company:42_a.b-c" };

    // Act
    const enroll = parseRequestBody("enroll", input);
    const test = parseRequestBody("testAction", input);

    // Assess
    expect(enroll).toEqual(input);
    expect(test).toEqual(input);
  });
});

describe("path parameters", () => {
  it.each(["contacts", "companies", "deals", "tickets"])("accepts objectType %s", (raw) => {
    // Prepare: the raw value.

    // Act
    const objectType = parseObjectType(raw);

    // Assess
    expect(objectType).toBe(raw);
  });

  it.each([undefined, "", "contact", "CONTACTS"])("rejects objectType %j", (raw) => {
    // Prepare: the raw value.

    // Act
    const error = validationErrorOf(() => parseObjectType(raw));

    // Assess
    expect(error.field).toBe("objectType");
    expect(error.rule).toBe("must be one of contacts, companies, deals, tickets");
  });

  it("accepts an id of 100 allowed characters", () => {
    // Prepare
    const raw = `${"a".repeat(95)}_.:-9`;

    // Act
    const id = parseId("workflowId", raw);

    // Assess
    expect(id).toBe(raw);
  });

  it.each([
    [undefined, "is required"],
    ["", "must not be empty"],
    ["a".repeat(101), "must be at most 100 characters"],
    ["a b", "must contain only letters, digits, _ . : or -"],
    ["../etc", "must contain only letters, digits, _ . : or -"],
  ])("rejects id %j: %s", (raw, rule) => {
    // Prepare: the raw value.

    // Act
    const error = validationErrorOf(() => parseId("deliveryId", raw));

    // Assess
    expect(error.field).toBe("deliveryId");
    expect(error.rule).toBe(rule);
  });
});

describe("stored workflows", () => {
  function definition(): WorkflowDefinition {
    return parseRequestBody("workflow", {
      name: "n",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          url: "https://crm.example.com/hook",
          authentication: { type: "apiKey", name: "X-Api-Key", location: "header", value: "k-1" },
        },
        {
          type: "webhook",
          url: "https://crm.example.com/signed",
          authentication: { type: "signature", appId: "app-1" },
        },
        { type: "delay", seconds: 60 },
      ],
    });
  }

  it("assigns a fresh id to every action, in order, leaving the definition as it was", () => {
    // Prepare
    const workflow = definition();
    const before = structuredClone(workflow);
    let counter = 0;
    const newId = () => `action-${++counter}`;

    // Act
    const actions = assignActionIds(workflow, newId);

    // Assess
    expect(actions.map((action) => action.id)).toEqual(["action-1", "action-2", "action-3"]);
    expect(actions.map(({ id: _, ...action }) => action)).toEqual(before.actions);
    expect(workflow).toEqual(before);
  });

  it("redacts API-key values and nothing else", () => {
    // Prepare
    const stored: Workflow = {
      id: "wf-1",
      name: "n",
      objectType: "contacts",
      actions: assignActionIds(definition(), () => "a"),
      createdAt: "2025-01-01T00:00:00.000Z",
      updatedAt: "2025-01-01T00:00:00.000Z",
    };
    const before = structuredClone(stored);

    // Act
    const redacted = redactWorkflow(stored);

    // Assess
    expect(JSON.stringify(redacted)).not.toContain("k-1");
    expect(redacted.actions[0]).toMatchObject({
      authentication: { name: "X-Api-Key", value: "***" },
    });
    expect(redacted.actions.slice(1)).toEqual(before.actions.slice(1));
    expect(stored).toEqual(before);
  });

  it("redacts a Standard Webhooks secret and never shows the previous one", () => {
    // Prepare
    const secret = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
    const previous = `whsec_${Buffer.alloc(32, 2).toString("base64")}`;
    const stored: Workflow = {
      id: "wf-2",
      name: "n",
      objectType: "contacts",
      actions: [
        {
          id: "a",
          type: "webhook",
          url: "https://crm.example.com/hook",
          method: "POST",
          body: { type: "all" },
          authentication: {
            type: "standardWebhooks",
            secret,
            previousSecret: { secret: previous, expiresAt: 1 },
          } as StoredStandardWebhooksAuthentication,
        },
      ],
      createdAt: "2025-01-01T00:00:00.000Z",
      updatedAt: "2025-01-01T00:00:00.000Z",
    };

    // Act
    const redacted = redactWorkflow(stored);

    // Assess
    expect(redacted.actions[0]).toMatchObject({
      authentication: { type: "standardWebhooks", secret: "***" },
    });
    expect(JSON.stringify(redacted)).not.toContain(secret.slice(6));
    expect(JSON.stringify(redacted)).not.toContain(previous.slice(6));
  });
});

describe("JSON Schema generation", () => {
  it("describes the workflow body, requiring actions", () => {
    // Prepare
    const schema = requestBodies.workflow;

    // Act
    const json = z.toJSONSchema(schema) as { required?: string[]; additionalProperties?: boolean };

    // Assess
    expect(json.required).toEqual(expect.arrayContaining(["name", "objectType", "actions"]));
    expect(json.additionalProperties).toBe(false);
  });

  it("leaves defaulted fields optional in request models", () => {
    // Prepare
    const schema = requestBodies.workflow;

    // Act
    const json = JSON.stringify(z.toJSONSchema(schema, { io: "input", target: "draft-4" }));

    // Assess
    const webhook = findWebhookSchema(JSON.parse(json));
    expect(webhook.required).toEqual(["type", "url"]);
    expect(json).toContain('"maximum":7776000');
  });

  it.each(Object.keys(requestBodies) as RequestBodyName[])("expresses %s", (name) => {
    // Prepare
    const schema = requestBodies[name];

    // Act
    const json = z.toJSONSchema(schema, { io: "input", target: "draft-4" });

    // Assess
    expect(json).toMatchObject({ type: "object", additionalProperties: false });
  });

  it("bounds a target URL by the URL policy's length, with no rule of its own", () => {
    // Prepare
    const schema = requestBodies.workflow;

    // Act
    const json = z.toJSONSchema(schema, { io: "input", target: "draft-4" }) as JsonSchemaNode;

    // Assess
    expect(findWebhookSchema(json).properties?.url).toEqual({
      type: "string",
      maxLength: MAX_TARGET_URL_LENGTH,
    });
  });

  it("bounds the number of properties", () => {
    // Prepare
    const schema = requestBodies.putObject;

    // Act
    const json = z.toJSONSchema(schema, { io: "input" });

    // Assess
    expect(json.properties?.properties).toMatchObject({ maxProperties: 1000 });
  });
});

interface JsonSchemaNode {
  required?: string[];
  properties?: Record<string, JsonSchemaNode & { enum?: unknown[] }>;
  items?: JsonSchemaNode;
  oneOf?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
}

function findWebhookSchema(root: JsonSchemaNode): JsonSchemaNode {
  const options = root.properties?.actions?.items?.oneOf ?? root.properties?.actions?.items?.anyOf;
  const webhook = options?.find((option) => option.properties?.type?.enum?.[0] === "webhook");
  if (webhook === undefined) {
    throw new Error("no webhook action in the schema");
  }
  return webhook;
}
