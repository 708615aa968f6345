import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localCredentials, localRegion } from "#infra/local/net";
import { eventually } from "#test/eventually";
import { type LocalSystem, startLocalSystem } from "#test/local-system";
import { reportFigures } from "#test/reliability-figures";

/**
 * A property-based fuzz of the local API with malformed bodies, query strings, paths, headers and
 * ids (docs/contract.md, section 1): every request is malformed by construction, and each must get
 * a documented 4xx in the error shape, never a 5xx, and leave every table as it was. `npm test`
 * tries a few hundred requests; `npm run test:reliability` tries ten thousand (API_FUZZ_RUNS).
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

/** An instant from 2000 to 2100, in epoch milliseconds. */
const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) });

/** A zone offset in minutes, -23:59 to +23:59; UTC (written `Z`) as often as all others. */
const zoneOffset = fc.oneof(fc.constant(0), fc.integer({ min: -(24 * 60 - 1), max: 24 * 60 - 1 }));

/** An instant as an ISO-8601 time in the zone `offset` minutes from UTC: what the API takes. */
function isoTime(ms: number, offset: number): string {
  if (offset === 0) return new Date(ms).toISOString();
  const wallClock = new Date(ms + offset * 60_000).toISOString().slice(0, -1);
  const minutes = Math.abs(offset);
  const hh = String(Math.floor(minutes / 60)).padStart(2, "0");
  const mm = String(minutes % 60).padStart(2, "0");
  return `${wallClock}${offset < 0 ? "-" : "+"}${hh}:${mm}`;
}

/**
 * Two valid times, `since` strictly after `until`, each in a zone of its own: text order says
 * nothing (`...T00:00:00Z` is after `...T00:00:00+02:00`), only the instants do.
 */
const sinceAfterUntil = fc
  .tuple(instant, fc.integer({ min: 1, max: 10 * 365 * 86_400_000 }), zoneOffset, zoneOffset)
  .map(([until, gap, sinceZone, untilZone]) => ({
    since: isoTime(until + gap, sinceZone),
    until: isoTime(until, untilZone),
  }));

/** Text as the API reads it back from `segment`: a lone surrogate arrives as U+FFFD. */
const asSent = (text: string) => Buffer.from(text, "utf8").toString("utf8");

/** Text that is no ISO-8601 time with a zone: a date alone, no zone, an impossible date, junk. */
const notATime = fc.oneof(
  fc.constantFrom(
    "",
    "2024-05-01",
    "2024-05-01T00:00:00",
    "2024-05-01T00:00:00.000",
    "2024-02-30T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-05-01T25:00:00Z",
    "2024-05-01T00:00:00+24:00",
    "2024-05-01T00:00:00+0200",
    "2024-05-01T00:00:00 UTC",
    "1714521600000",
    "1714521600",
    "now",
    "yesterday",
    "Wed, 01 May 2024 00:00:00 GMT",
    "05/01/2024",
  ),
  weirdString.map(asSent).filter((text) => !/\d{4}-\d\d-\d\dT/.test(text)),
);

/** A replay that must not start: a broken body, times that are none or out of order. */
function brokenReplay(): fc.Arbitrary<[string, unknown]> {
  const valid = {
    workflowId: sentinel.workflowId,
    since: "2024-05-01T00:00:00Z",
    until: "2024-05-02T00:00:00Z",
  };
  return fc.oneof(
    breakBody(valid, ["workflowId", "since"]),
    notString.map((until): [string, unknown] => ["until of a wrong type", { ...valid, until }]),
    fc
      .oneof(fc.constant(""), invalidId)
      .map((workflowId): [string, unknown] => ["an invalid workflowId", { ...valid, workflowId }]),
    fc
      .tuple(fc.constantFrom("since", "until"), notATime)
      .map(([key, text]): [string, unknown] => [
        `a ${key} that is no ISO-8601 time with a zone`,
        { ...valid, [key]: text },
      ]),
    sinceAfterUntil.map((times): [string, unknown] => [
      "since after until",
      { ...valid, ...times },
    ]),
    // Until is now when absent: a since a day or more ahead is after it.
    fc.integer({ min: 1, max: 1000 }).map((days): [string, unknown] => [
      "a since after now, without until",
      {
        workflowId: valid.workflowId,
        since: new Date(Date.now() + days * 86_400_000).toISOString(),
      },
    ]),
  );
}

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
    { method: "POST", path: () => "/deliveries/replay", body: brokenReplay() },
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
      ["GET", (id: string) => `/replays/${id}`],
      // The ids below are never the sentinel enrollment's own: cancelling it is a valid request.
      ["DELETE", (id: string) => `/enrollments/${id}`],
    ),
    fc.oneof(
      unknownId,
      invalidId,
      fc.constantFrom("widgets", "CONTACTS", "%E0%A4%A", "%ZZ", "%2F..%2F"),
      // Ids one character off the sentinel enrollment's, which exist nowhere.
      fc
        .constantFrom("shorter", "longer")
        .map((way) =>
          way === "shorter" ? sentinel.enrollmentId.slice(0, -1) : `${sentinel.enrollmentId}0`,
        ),
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
  // A route since the operators' lists came: its malformed queries are listRequest's.
  .filter(([method, path]) => !(method === "GET" && path === "/deliveries"))
  .map(([method, path]) => ({
    method,
    path,
    headers: { "content-type": "application/json" },
    body: method === "GET" || method === "DELETE" ? undefined : `{"${UNKNOWN_KEY}":1}`,
    how: "a route that does not exist",
  }));

// ---- Malformed query strings of the operators' lists ------------------------------------------

/** A query string's pairs in the order sent; a name may come more than once. */
type QueryPairs = ReadonlyArray<readonly [string, string]>;

/** `?name=value&...`, names and values percent-encoded; nothing without pairs. */
const queryString = (pairs: QueryPairs) =>
  pairs.length === 0
    ? ""
    : `?${pairs.map(([name, value]) => `${segment(name)}=${segment(value)}`).join("&")}`;

/**
 * Longest path with its query sent: the local API's HTTP server takes 16 KiB of request line and
 * headers, and answers a longer request itself, before any route.
 */
const MAX_REQUEST_TARGET = 8_000;

const DELIVERY_STATUSES = ["pending", "retrying", "succeeded", "failed"];
const ENROLLMENT_STATUSES = ["active", "waiting", "completed", "failed", "cancelled"];

/** A status that is none of `statuses`: another list's, another case, a list of them, junk. */
const badStatus = (statuses: readonly string[]) =>
  fc
    .oneof(
      fc.constantFrom(
        ...DELIVERY_STATUSES,
        ...ENROLLMENT_STATUSES,
        "",
        "FAILED",
        "Waiting",
        " failed",
        "failed,succeeded",
        "*",
      ),
      weirdString.map(asSent),
    )
    .filter((status) => !statuses.includes(status));

/** Whether a list takes a limit: 1 to 100, in up to six decimal digits. */
const takesLimit = (text: string) =>
  /^\d{1,6}$/.test(text) && Number(text) >= 1 && Number(text) <= 100;

/** A limit the list refuses: out of 1 to 100, no whole number, or no number at all. */
const badLimit = (takes: (text: string) => boolean) =>
  fc
    .oneof(
      fc.constantFrom("0", "101", "-1", "-0", "1.5", "1e1", "", "ten", "+5", " 5", "0x10"),
      fc.constantFrom("Infinity", "NaN", "1000000000000", "0".repeat(7)),
      fc.integer({ min: 101 }).map(String),
      fc.integer({ max: 0 }).map(String),
      weirdString.map(asSent),
    )
    .filter((text) => !takes(text));

const base64url = (text: string) => Buffer.from(text, "utf8").toString("base64url");

/** Whether a token decodes to a JSON object of four keys: a page position of either list. */
function tokenShaped(token: string): boolean {
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    return isPlainObject(value) && Object.keys(value).length === 4;
  } catch {
    return false;
  }
}

/**
 * A nextToken no page of the query gave: empty, too long, junk, JSON that is no page position, or
 * the position of another workflow's list (the `ot-` ids name no workflow the fuzz asks about).
 */
const badToken = fc.oneof(
  fc.constantFrom("", "A".repeat(2049)),
  weirdString.map(asSent).filter((token) => !tokenShaped(token)),
  anyJson.map((value) => base64url(JSON.stringify(value))).filter((token) => !tokenShaped(token)),
  fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/),
      fc.uuid(),
      fc.constantFrom("DELIVERY", "ENROLLMENT"),
      fc.nat(),
    )
    .map(([id, pk, sk, createdAt]) =>
      base64url(JSON.stringify({ workflowId: `ot-${id}`, pk, sk, createdAt })),
    ),
);

/** A parameter name the list does not know: another case, brackets, an object's built-ins, junk. */
const unknownParameter = (known: readonly string[]) =>
  fc
    .oneof(
      fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/),
      fc.constantFrom("", "WorkflowId", "LIMIT", "Status", "next_token", "status[]", "limit ", "q"),
      fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"),
      weirdString,
    )
    .map(asSent)
    .filter((name) => name.length <= 100 && !known.includes(name));

/** One way a query string is malformed: the parameters it takes over, and the pairs it sends. */
interface QueryBreak {
  readonly how: string;
  /** The parameters it takes out of the valid query; breaks that share one are not combined. */
  readonly takes: readonly string[];
  readonly pairs: QueryPairs;
}

const setTo = (how: string, name: string, values: fc.Arbitrary<string>) =>
  values.map((value): QueryBreak => ({ how, takes: [name], pairs: [[name, value]] }));

const addUnknown = (known: readonly string[]) =>
  fc.tuple(unknownParameter(known), fc.string({ maxLength: 20 })).map(
    ([name, value]): QueryBreak => ({
      how: "an unknown parameter",
      takes: [],
      pairs: [[name, value]],
    }),
  );

/**
 * A valid query broken one to three ways, each on parameters of its own so that none undoes
 * another. A break that sets one parameter may send it twice, a value before the invalid one:
 * refused for the repetition or for the value, it must be refused either way.
 */
function brokenQuery(
  valid: Readonly<Record<string, string>>,
  breaks: fc.Arbitrary<QueryBreak>,
): fc.Arbitrary<[string, QueryPairs]> {
  return fc.array(fc.tuple(breaks, fc.boolean()), { minLength: 1, maxLength: 3 }).map((chosen) => {
    const taken = new Set<string>();
    const applied: Array<[QueryBreak, boolean]> = [];
    for (const [queryBreak, twice] of chosen) {
      if (queryBreak.takes.some((name) => taken.has(name))) continue;
      for (const name of queryBreak.takes) taken.add(name);
      applied.push([queryBreak, twice]);
    }
    const pairs: Array<readonly [string, string]> = Object.entries(valid).filter(
      ([name]) => !taken.has(name),
    );
    const hows: string[] = [];
    for (const [queryBreak, twice] of applied) {
      const [only] = queryBreak.pairs;
      if (twice && queryBreak.pairs.length === 1 && only !== undefined) {
        const first = Object.hasOwn(valid, only[0]) ? valid[only[0]] : undefined;
        pairs.push([only[0], first ?? "1"], only);
        hows.push(`${queryBreak.how}, sent last of two`);
      } else {
        pairs.push(...queryBreak.pairs);
        hows.push(queryBreak.how);
      }
    }
    return [`a query with ${hows.join("; ")}`, pairs];
  });
}

/** An optional value, absent as often as present. */
const maybe = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined, freq: 2 });

const validLimit = fc.integer({ min: 1, max: 100 }).map(String);

/** Drops the parameters that are absent. */
const present = (query: Record<string, string | undefined>) =>
  Object.fromEntries(
    Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );

/** A query `GET /deliveries` takes, of the sentinel workflow (which has none) or of no workflow. */
const validDeliveryQuery = fc
  .tuple(
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(null).map(() => sentinel.workflowId) },
      { weight: 1, arbitrary: unknownId },
    ),
    maybe(fc.constantFrom(...DELIVERY_STATUSES)),
    fc.tuple(instant, instant, zoneOffset, zoneOffset),
    fc.constantFrom("since", "until", "both", "neither"),
    maybe(validLimit),
  )
  .map(([workflowId, status, [a, b, sinceZone, untilZone], bounds, limit]) =>
    present({
      workflowId,
      status,
      since:
        bounds === "since" || bounds === "both" ? isoTime(Math.min(a, b), sinceZone) : undefined,
      until:
        bounds === "until" || bounds === "both" ? isoTime(Math.max(a, b), untilZone) : undefined,
      limit,
    }),
  );

const DELIVERY_PARAMETERS = ["workflowId", "status", "since", "until", "limit", "nextToken"];

const deliveryQueryBreak: fc.Arbitrary<QueryBreak> = fc.oneof(
  fc.constant<QueryBreak>({ how: "no workflowId", takes: ["workflowId"], pairs: [] }),
  setTo("an invalid workflowId", "workflowId", fc.oneof(fc.constant(""), invalidId.map(asSent))),
  setTo("a status that is none of the four", "status", badStatus(DELIVERY_STATUSES)),
  setTo("a since that is no ISO-8601 time with a zone", "since", notATime),
  setTo("an until that is no ISO-8601 time with a zone", "until", notATime),
  sinceAfterUntil.map(
    ({ since, until }): QueryBreak => ({
      how: "since after until",
      takes: ["since", "until"],
      pairs: [
        ["since", since],
        ["until", until],
      ],
    }),
  ),
  setTo("a limit out of 1 to 100", "limit", badLimit(takesLimit)),
  setTo("a nextToken no page gave", "nextToken", badToken),
  addUnknown(DELIVERY_PARAMETERS),
);

const ENROLLMENTS_PARAMETERS = ["objectId", "status", "limit", "nextToken"];

/** A query `GET /workflows/{id}/enrollments` takes. */
const validEnrollmentsQuery = fc
  .tuple(
    maybe(fc.oneof(fc.constant("sentinel"), unknownId)),
    maybe(fc.constantFrom(...ENROLLMENT_STATUSES)),
    maybe(validLimit),
  )
  .map(([objectId, status, limit]) => present({ objectId, status, limit }));

/**
 * A position in the sentinel workflow's own list of enrollments that no page could stop at: an
 * empty or overlong enrollment id, or a creation time that is no epoch millisecond DynamoDB
 * could have written (1e400 reads back as Infinity).
 */
const forgedEnrollmentPosition = fc
  .tuple(
    fc.oneof(fc.constantFrom("", "x".repeat(101)), fc.uuid()),
    fc.oneof(fc.constantFrom<unknown>(1e300, -1, 1.5, "5", null), fc.nat({ max: 2 ** 40 })),
  )
  .filter(([pk, createdAt]) => pk === "" || pk.length > 100 || !Number.isSafeInteger(createdAt))
  .map(([pk, createdAt]) =>
    base64url(JSON.stringify({ workflowId: sentinel.workflowId, pk, sk: "ENROLLMENT", createdAt })),
  );
const infiniteCreationTime = fc
  .uuid()
  .map((pk) =>
    base64url(
      `{"workflowId":${JSON.stringify(sentinel.workflowId)},"pk":"${pk}","sk":"ENROLLMENT","createdAt":1e400}`,
    ),
  );

const enrollmentsQueryBreak: fc.Arbitrary<QueryBreak> = fc.oneof(
  setTo("an invalid objectId", "objectId", fc.oneof(fc.constant(""), invalidId.map(asSent))),
  setTo("a status that is none of the five", "status", badStatus(ENROLLMENT_STATUSES)),
  setTo("a limit out of 1 to 100", "limit", badLimit(takesLimit)),
  setTo("a nextToken no page gave", "nextToken", badToken),
  setTo(
    "a made-up position in the list",
    "nextToken",
    fc.oneof(forgedEnrollmentPosition, infiniteCreationTime),
  ),
  addUnknown(ENROLLMENTS_PARAMETERS),
);

/**
 * A request to one of the operators' lists with a malformed query string; the enrollments of the
 * sentinel workflow, or of a workflow that does not exist or whose id is invalid.
 */
const listRequest: fc.Arbitrary<FuzzRequest> = fc
  .oneof(
    validDeliveryQuery
      .chain((valid) => brokenQuery(valid, deliveryQueryBreak))
      .map(([how, pairs]) => ({ path: `/deliveries${queryString(pairs)}`, how })),
    fc
      .tuple(
        fc.oneof(
          { weight: 3, arbitrary: fc.constant(null).map(() => sentinel.workflowId) },
          { weight: 1, arbitrary: unknownId.map(segment) },
          { weight: 1, arbitrary: invalidId.map(segment) },
        ),
        validEnrollmentsQuery.chain((valid) => brokenQuery(valid, enrollmentsQueryBreak)),
      )
      .map(([workflow, [how, pairs]]) => ({
        path: `/workflows/${workflow}/enrollments${queryString(pairs)}`,
        how,
      })),
  )
  .filter(({ path }) => path.length <= MAX_REQUEST_TARGET)
  .map(({ path, how }): FuzzRequest => ({ method: "GET", path, headers: {}, how }));

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
        { weight: 3, arbitrary: listRequest },
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
        suite: "API fuzz: malformed bodies, query strings, paths, headers and ids (fast-check)",
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
