import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localCredentials, localRegion } from "#infra/local/net";
import { eventually } from "#test/eventually";
import { type LocalSystem, startLocalSystem } from "#test/local-system";
import { reportFigures } from "#test/reliability-figures";

/**
 * A property-based fuzz of the local API with malformed bodies, paths, headers and ids (docs/contract.md,
 * section 1): every request is malformed by construction, and each must get a documented 4xx in
 * the error shape, never a 5xx, and leave every table as it was. `npm test` tries a few hundred
 * requests; `npm run test:reliability` tries ten thousand (API_FUZZ_RUNS).
 */
const RUNS = Number(process.env.API_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.API_FUZZ_SEED ?? Date.now() % 2 ** 31);
/** Requests in flight at once. */
const CONCURRENCY = 8;
const DOCUMENTED_STATUSES = new Set([400, 404, 405, 409, 413, 415]);
/** Larger than the 1 MiB the API accepts. */
const OVERSIZE_BYTES = 1024 * 1024 + 16;

let system: LocalSystem;
let dynamodb: DynamoDBClient;
const sentinel = { appId: "", workflowId: "", actionId: "", enrollmentId: "" };

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 1 });
  dynamodb = new DynamoDBClient({
    endpoint: system.runtime.dynamoEndpoint,
    region: localRegion,
    credentials: localCredentials,
  });
  const { call } = system;
  const app = await call("POST", "/apps", { name: "Sentinel" });
  await call("PUT", "/objects/contacts/sentinel", { properties: { email: "s@example.com" } });
  const workflow = await call("POST", "/workflows", {
    name: "Sentinel",
    objectType: "contacts",
    actions: [
      { type: "setProperty", property: "seen", value: "yes" },
      { type: "delay", seconds: 3600 },
    ],
  });
  const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
    objectId: "sentinel",
  });
  // Waiting at its hour-long delay, the enrollment stays still while the fuzz runs.
  await eventually("the sentinel enrollment to wait", async () => {
    const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
    expect(body.status).toBe("waiting");
  });
  Object.assign(sentinel, {
    appId: app.body.appId,
    workflowId: workflow.body.id,
    actionId: workflow.body.actions[0].id,
    enrollmentId: enrolled.body.enrollmentId,
  });
});

afterAll(async () => {
  dynamodb?.destroy();
  await system?.stop();
});

/** Every item of every table, by table, in a stable order. */
async function snapshot(): Promise<Record<string, string[]>> {
  const result: Record<string, string[]> = {};
  for (const [key, name] of Object.entries(system.runtime.resources.tables)) {
    const items: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await dynamodb.send(
        new ScanCommand({
          TableName: name,
          ConsistentRead: true,
          ExclusiveStartKey: start as never,
        }),
      );
      for (const item of page.Items ?? []) items.push(JSON.stringify(item));
      start = page.LastEvaluatedKey;
    } while (start);
    result[key] = items.sort();
  }
  return result;
}

// ---- What a malformed request is made of ----------------------------------------------------

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer;
  /** Which malformation made it, for the report of a failure. */
  readonly how: string;
}

/** A key no strict object of the API knows, so an object carrying it is invalid whatever else. */
const UNKNOWN_KEY = "fuzz\u0000unknown";

/** Any JSON value; objects carry the unknown key, so no random object is ever a valid body. */
const anyJson: fc.Arbitrary<unknown> = fc
  .jsonValue({ maxDepth: 3 })
  .map((value) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? { ...value, [UNKNOWN_KEY]: 1 }
      : value,
  );

const weirdString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "__proto__",
    "constructor",
    "toString",
    "../../etc/passwd",
    "%00",
    "x".repeat(5000),
    "https://169.254.169.254/",
    "javascript:alert(1)",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell probe, as a plain string
    "${jndi:ldap://x}",
    "' OR 1=1 --",
  ),
);

/** A value that is not a string. */
/** The longest delay action the API takes: 90 days. */
const MAX_DELAY_SECONDS = 90 * 24 * 3600;

const notString = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  anyJson.filter((value) => typeof value === "object" && value !== null),
);

/** An id the API refuses: empty after decoding, too long, or with a character it does not allow. */
const invalidId = fc.oneof(
  weirdString.filter((text) => text !== "" && !/^[A-Za-z0-9_.:-]{1,100}$/.test(text)),
  fc.constant("a".repeat(101)),
);

/** A well-formed id that names nothing. */
const unknownId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/).map((id) => `nx-${id}`);

/** Percent-encodes every byte but the unreserved ones; lone surrogates go as U+FFFD. */
const segment = (id: string) =>
  Array.from(Buffer.from(id, "utf8"), (byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9_.~-]/.test(char)
      ? char
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");

function validWorkflow(url: string) {
  return {
    name: "Fuzzed",
    objectType: "contacts",
    actions: [
      {
        type: "webhook",
        url,
        method: "POST",
        authentication: { type: "signature", appId: sentinel.appId },
        body: {
          type: "custom",
          fields: [
            { key: "k", property: "email" },
            { key: "n", value: 1 },
          ],
        },
      },
      { type: "setProperty", property: "stage", value: "lead" },
      { type: "delay", seconds: 60 },
    ],
  };
}

type Json = Record<string, unknown>;

/** Breaks a valid body so that the API must refuse it; each way is invalid by construction. */
const breakBody = (valid: Json, requiredKeys: readonly string[]): fc.Arbitrary<[string, unknown]> =>
  fc.oneof(
    anyJson.map((junk): [string, unknown] => ["unknown key", { ...valid, [UNKNOWN_KEY]: junk }]),
    fc
      .oneof(
        anyJson,
        fc.array(anyJson, { maxLength: 3 }),
        fc.string(),
        fc.integer(),
        fc.constant(null),
      )
      .filter((value) => typeof value !== "object" || value === null || Array.isArray(value))
      .map((value): [string, unknown] => ["not an object", value]),
    fc.constantFrom(...requiredKeys).map((key): [string, unknown] => {
      const { [key]: _gone, ...rest } = valid;
      return [`without ${key}`, rest];
    }),
    fc
      .tuple(fc.constantFrom(...requiredKeys), notString)
      .filter(([key, value]) => !(key === "properties" && isPlainObject(value)))
      .map(([key, value]): [string, unknown] => [
        `${key} of a wrong type`,
        { ...valid, [key]: value },
      ]),
    fc.constant<[string, unknown]>([
      "a __proto__ key",
      JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(valid).slice(1)}`),
    ]),
  );

function isPlainObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A workflow broken deep inside: one action, its URL, its authentication, its body. */
const brokenWorkflow = (url: string): fc.Arbitrary<[string, unknown]> => {
  const valid = validWorkflow(url);
  const withAction = (how: string, action: unknown): [string, unknown] => [
    how,
    { ...valid, actions: [action, ...valid.actions.slice(1)] },
  ];
  const webhook = valid.actions[0] as Json;
  return fc.oneof(
    breakBody(valid, ["name", "objectType", "actions"]),
    anyJson.map((junk) => withAction("a junk action", junk)),
    weirdString
      .filter((text) => !/^https:\/\/[^\s]+$/i.test(text))
      .map((bad) => withAction("a webhook URL that is not https", { ...webhook, url: bad })),
    fc
      .constantFrom(
        "https://exa mple.com/",
        "https://user:pw@example.com/",
        "https://example.com/#x",
        `https://example.com/${"p".repeat(2100)}`,
        "https://:443/",
        "https://example.com:0/",
      )
      .map((bad) => withAction("a malformed https URL", { ...webhook, url: bad })),
    unknownId.map((appId) =>
      withAction("a signing app that does not exist", {
        ...webhook,
        authentication: { type: "signature", appId },
      }),
    ),
    fc
      .tuple(
        fc.constantFrom(
          "Host",
          "Content-Length",
          "X-Delivery-Id",
          "Expect",
          "Upgrade",
          "Keep-Alive",
          "bad name",
          "",
        ),
        fc.string(),
      )
      .map(([name, value]) =>
        withAction("an API key no request can carry", {
          ...webhook,
          authentication: { type: "apiKey", name, location: "header", value: value || "v" },
        }),
      ),
    fc
      .oneof(
        fc.constantFrom(1e200, -1e200, 1e-200, 2 ** 53, 1e300),
        notString.filter((v) => typeof v === "object" && v !== null),
      )
      .map((value) =>
        withAction("a custom body value that cannot be stored", {
          ...webhook,
          body: { type: "custom", fields: [{ key: "n", value }] },
        }),
      ),
    fc
      .oneof(
        fc.constantFrom(0, -1, 1.5, MAX_DELAY_SECONDS + 1, 1e100),
        // Any other value but a whole number of seconds the API takes (1 second to 90 days).
        notString.filter(
          (seconds) =>
            !(
              Number.isInteger(seconds) &&
              Number(seconds) >= 1 &&
              Number(seconds) <= MAX_DELAY_SECONDS
            ),
        ),
      )
      .map((seconds) => withAction("a delay of no valid length", { type: "delay", seconds })),
    weirdString
      .filter((name) => !/^[A-Za-z0-9_.-]{1,100}$/.test(name) || name === "__proto__")
      .map((property) =>
        withAction("a setProperty of an invalid name", {
          type: "setProperty",
          property,
          value: "v",
        }),
      ),
    fc.constant<[string, unknown]>([
      "too many actions",
      { ...valid, actions: Array.from({ length: 51 }, () => ({ type: "delay", seconds: 1 })) },
    ]),
  );
};

const brokenProperties: fc.Arbitrary<[string, unknown]> = fc.oneof(
  breakBody({ properties: { email: "a@example.com" } }, ["properties"]),
  weirdString
    .filter((name) => !/^[A-Za-z0-9_.-]{1,100}$/.test(name) || name === "__proto__")
    .map((name): [string, unknown] => [
      "an invalid property name",
      { properties: { [name]: "v" } },
    ]),
  fc
    .oneof(
      fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
      fc.array(fc.string(), { minLength: 1 }),
    )
    .map((value): [string, unknown] => [
      "a property value that is no scalar",
      { properties: { p: value } },
    ]),
  fc.constant<[string, unknown]>([
    "more than 1000 properties",
    { properties: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`p${i}`, "v"])) },
  ]),
  fc.constant<[string, unknown]>([
    "a value over 65536 characters",
    { properties: { p: "x".repeat(65_537) } },
  ]),
);

const brokenCreateApp: fc.Arbitrary<[string, unknown]> = fc.oneof(
  breakBody({ name: "App" }, ["name"]),
  fc
    .oneof(
      fc.constant("short"),
      weirdString.filter((s) => s.length > 0 && !/^[\x21-\x7E]{16,256}$/.test(s)),
    )
    .map((clientSecret): [string, unknown] => [
      "an invalid client secret",
      { name: "App", clientSecret },
    ]),
  fc
    .constantFrom("", " ", "\t", "n".repeat(201))
    .map((name): [string, unknown] => ["an invalid name", { name }]),
);

const brokenObjectIdBody: fc.Arbitrary<[string, unknown]> = fc.oneof(
  breakBody({ objectId: "sentinel" }, ["objectId"]),
  invalidId.map((objectId): [string, unknown] => ["an invalid objectId", { objectId }]),
);

/** JSON text that does not parse: valid text cut short, or random text that is no JSON. */
const malformedJsonText = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify({ v: value }).slice(0, -1)),
  fc.string({ unit: "binary", maxLength: 200 }).filter((text) => {
    if (text.trim() === "") return false;
    try {
      JSON.parse(text);
      return false;
    } catch {
      return true;
    }
  }),
  fc.nat({ max: 50_000 }).map((depth) => "[".repeat(depth + 1)),
);

/** How a body travels: as JSON (mostly), or labelled as something else, or not labelled at all. */
const contentType = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      "application/json",
      "application/json; charset=utf-8",
      "application/vnd.api+json",
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/jsonx",
      "json",
      "",
    ),
  },
);

type BodyRoute = {
  readonly method: string;
  readonly path: (ids: { workflow: string; action: string; object: string }) => string;
  readonly body: fc.Arbitrary<[string, unknown]>;
};

/** A request with a body to a route that takes one; the body is always malformed. */
function bodyRequest(receiverUrl: string): fc.Arbitrary<FuzzRequest> {
  const routes: BodyRoute[] = [
    { method: "POST", path: () => "/apps", body: brokenCreateApp },
    {
      method: "PUT",
      path: (ids) => `/objects/contacts/${ids.object}`,
      body: brokenProperties,
    },
    { method: "POST", path: () => "/workflows", body: brokenWorkflow(receiverUrl) },
    {
      method: "PUT",
      path: (ids) => `/workflows/${ids.workflow}`,
      body: brokenWorkflow(receiverUrl),
    },
    {
      method: "POST",
      path: (ids) => `/workflows/${ids.workflow}/enrollments`,
      body: brokenObjectIdBody,
    },
    {
      method: "POST",
      path: (ids) => `/workflows/${ids.workflow}/actions/${ids.action}/test`,
      body: brokenObjectIdBody,
    },
  ];
  const someId = (known: () => string) =>
    fc.oneof(fc.constant(null).map(known), unknownId.map(segment), invalidId.map(segment));
  return fc
    .tuple(
      fc.constantFrom(...routes),
      someId(() => sentinel.workflowId),
      someId(() => sentinel.actionId),
      someId(() => "sentinel"),
      contentType,
      fc.oneof(
        { weight: 20, arbitrary: fc.constant("json") },
        { weight: 3, arbitrary: fc.constant("text") },
        { weight: 1, arbitrary: fc.constant("oversize") },
      ),
      malformedJsonText,
    )
    .chain(([route, workflow, action, object, type, form, text]) =>
      route.body.map(([how, value]): FuzzRequest => {
        const path = route.path({ workflow, action, object });
        const headers: Record<string, string> = type === "" ? {} : { "content-type": type };
        if (form === "text")
          return { method: route.method, path, headers, body: text, how: "malformed JSON" };
        if (form === "oversize") {
          const body = Buffer.alloc(OVERSIZE_BYTES, 0x20);
          body.write(JSON.stringify(value).slice(0, 1000));
          return { method: route.method, path, headers, body, how: "a body over 1 MiB" };
        }
        return { method: route.method, path, headers, body: JSON.stringify(value), how };
      }),
    );
}

/** A request without a body to a route that reads an id: the id is unknown or invalid. */
const idRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom(
      ["GET", (id: string) => `/apps/${id}`],
      ["GET", (id: string) => `/objects/contacts/${id}`],
      ["GET", (id: string) => `/objects/${id}/sentinel`],
      ["GET", (id: string) => `/workflows/${id}`],
      ["DELETE", (id: string) => `/workflows/${id}`],
      ["GET", (id: string) => `/enrollments/${id}`],
      ["GET", (id: string) => `/deliveries/${id}`],
      ["POST", (id: string) => `/deliveries/${id}/retry`],
    ),
    fc.oneof(
      unknownId,
      invalidId,
      fc.constantFrom("widgets", "CONTACTS", "%E0%A4%A", "%ZZ", "%2F..%2F"),
    ),
    fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
  )
  .map(([[method, path], id, query]) => ({
    method,
    path: `${path(/^%/.test(id) ? id : segment(id))}${query === undefined ? "" : `?q=${segment(query)}`}`,
    headers: {},
    how: "an unknown or invalid id",
  }));

/** A method or a path that no route has. */
const routeRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
    fc.oneof(
      fc.constantFrom(
        "/",
        "/apps",
        "/health/x",
        "/workflows/x/y",
        "/objects",
        "/objects/contacts",
        "/enrollments",
        "/deliveries",
        "/v1/health",
        "//apps",
      ),
      fc
        .array(unknownId.map(segment), { minLength: 1, maxLength: 6 })
        .map((parts) => `/${parts.join("/")}`),
    ),
  )
  .filter(([method, path]) => !(method === "GET" && path === "/apps"))
  .filter(([method, path]) => !(path === "/apps" && method === "POST"))
  .map(([method, path]) => ({
    method,
    path,
    headers: { "content-type": "application/json" },
    body: method === "GET" || method === "DELETE" ? undefined : `{"${UNKNOWN_KEY}":1}`,
    how: "a route that does not exist",
  }));

/** Junk headers of every kind ride along with any of the above. */
const junkHeaders = fc.dictionary(
  fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
  // Header values cannot hold control characters (tab aside); the rest is fair game.
  fc
    .string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
      maxLength: 200,
    })
    .map((value) => value.trim()),
  { maxKeys: 4 },
);

function fuzzRequests(receiverUrl: string): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      fc.oneof(
        { weight: 6, arbitrary: bodyRequest(receiverUrl) },
        { weight: 3, arbitrary: idRequest },
        { weight: 1, arbitrary: routeRequest },
      ),
      junkHeaders,
    )
    .map(([fuzz, headers]) => ({ ...fuzz, headers: { ...headers, ...fuzz.headers } }));
}

interface Outcome {
  readonly request: FuzzRequest;
  readonly status: number;
  readonly text: string;
}

async function send(fuzz: FuzzRequest): Promise<Outcome> {
  const response = await request(`${system.runtime.apiUrl}${fuzz.path}`, {
    method: fuzz.method as "GET",
    headers: fuzz.headers,
    body: fuzz.body,
  });
  const text = await response.body.text();
  return { request: fuzz, status: response.statusCode, text };
}

/** What is wrong with an answer, or undefined when it is a documented 4xx in the error shape. */
function problemWith(outcome: Outcome): string | undefined {
  if (!DOCUMENTED_STATUSES.has(outcome.status)) return `status ${outcome.status}`;
  let parsed: { error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(outcome.text);
  } catch {
    return "a body that is not JSON";
  }
  if (typeof parsed.error?.code !== "string" || typeof parsed.error.message !== "string") {
    return "a body without the error shape";
  }
  if (/\n\s+at /.test(parsed.error.message)) return "a stack trace";
  return undefined;
}

describe("the API under malformed requests", () => {
  it(
    `answers ${RUNS} of them with documented 4xx only, and changes nothing`,
    async () => {
      // Prepare
      const before = await snapshot();
      const requests = fc.sample(fuzzRequests(system.receiver.url("/fuzz")), {
        numRuns: RUNS,
        seed: SEED,
      });

      // Act
      const outcomes: Outcome[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < requests.length) {
            const fuzz = requests[next++] as FuzzRequest;
            outcomes.push(await send(fuzz));
          }
        }),
      );
      const after = await snapshot();

      // Assess
      const problems = outcomes.flatMap((outcome) => {
        const problem = problemWith(outcome);
        return problem === undefined
          ? []
          : [
              `${problem}: ${outcome.request.method} ${outcome.request.path.slice(0, 200)} (${outcome.request.how}) -> ${outcome.text.slice(0, 300)}`,
            ];
      });
      const statuses = new Map<number, number>();
      for (const { status } of outcomes) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const tablesChanged = Object.keys(before).filter(
        (table) => JSON.stringify(before[table]) !== JSON.stringify(after[table]),
      );
      reportFigures({
        suite: "API fuzz: malformed bodies, paths, headers and ids (fast-check)",
        inputs: outcomes.length,
        serverErrors: outcomes.filter((outcome) => outcome.status >= 500).length,
        notes: `seed ${SEED}; ${[...statuses]
          .sort(([a], [b]) => a - b)
          .map(([status, count]) => `${count} × ${status}`)
          .join(", ")}; tables changed: ${tablesChanged.length}`,
      });
      expect(outcomes).toHaveLength(RUNS);
      expect(problems.slice(0, 10), `seed ${SEED}`).toEqual([]);
      expect(tablesChanged).toEqual([]);
    },
    60_000 + RUNS * 50,
  );
});
