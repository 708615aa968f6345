import { describe, expect, it } from "vitest";
import { PayloadTooLargeError } from "#domain/errors";
import { MAX_WEBHOOK_BODY_BYTES, recordPayload, webhookBody } from "#domain/payload";
import { applyPropertyChanges, type CrmRecord, type PropertyChangeSource } from "#domain/record";
import type { BodySpec, ObjectType } from "#domain/workflow";

const options = { portalId: 62515 };

function source(timestamp: number, sourceType = "API"): PropertyChangeSource {
  return { sourceType, sourceId: null, sourceLabel: null, timestamp };
}

function recordOf(
  objectType: ObjectType,
  objectId: string,
  ...steps: Array<[Record<string, string | number | boolean | null>, PropertyChangeSource]>
): CrmRecord {
  const start = applyPropertyChanges(undefined, { objectType, objectId }, {}, source(1)).record;
  return steps.reduce(
    (record, [changes, from]) =>
      applyPropertyChanges(record, { objectType, objectId }, changes, from).record,
    start,
  );
}

describe("recordPayload for contacts", () => {
  it("is the legacy contact profile with every version, newest first", () => {
    // Prepare
    const workflow: PropertyChangeSource = {
      sourceType: "AUTOMATION_PLATFORM",
      sourceId: "wf-1",
      sourceLabel: "Send new leads",
      timestamp: 3_000,
    };
    const record = recordOf(
      "contacts",
      "101",
      [{ email: "ada@example.com", firstname: "Ada" }, source(1_000)],
      [{ firstname: "Augusta" }, workflow],
    );

    // Act
    const payload = recordPayload(record, options);

    // Assess
    expect(payload).toEqual({
      vid: 101,
      "canonical-vid": 101,
      "portal-id": 62515,
      "is-contact": true,
      properties: {
        email: {
          value: "ada@example.com",
          versions: [
            {
              value: "ada@example.com",
              "source-type": "API",
              "source-id": null,
              "source-label": null,
              timestamp: 1_000,
              selected: false,
            },
          ],
        },
        firstname: {
          value: "Augusta",
          versions: [
            {
              value: "Augusta",
              "source-type": "AUTOMATION_PLATFORM",
              "source-id": "wf-1",
              "source-label": "Send new leads",
              timestamp: 3_000,
              selected: false,
            },
            {
              value: "Ada",
              "source-type": "API",
              "source-id": null,
              "source-label": null,
              timestamp: 1_000,
              selected: false,
            },
          ],
        },
      },
      "form-submissions": [],
      "list-memberships": [],
      "identity-profiles": [
        {
          vid: 101,
          identities: [
            { type: "EMAIL", value: "ada@example.com", timestamp: 1_000, "is-primary": true },
          ],
        },
      ],
      "merge-audits": [],
    });
  });

  it("has no identity when the contact has no email", () => {
    // Prepare
    const record = recordOf(
      "contacts",
      "102",
      [{ email: "old@example.com" }, source(1_000)],
      [{ email: null }, source(2_000)],
    );

    // Act
    const payload = recordPayload(record, options);

    // Assess
    expect(payload).toMatchObject({ "identity-profiles": [{ vid: 102, identities: [] }] });
  });

  it.each([
    ["0", 0],
    ["9007199254740991", 9007199254740991],
    ["9007199254740992", "9007199254740992"],
    ["007", "007"],
    ["lead-7", "lead-7"],
  ])("gives objectId %j as vid %j", (objectId, vid) => {
    // Prepare
    const record = recordOf("contacts", objectId);

    // Act
    const payload = recordPayload(record, options);

    // Assess
    expect(payload).toMatchObject({ vid, "canonical-vid": vid });
  });
});

describe("recordPayload for other objects", () => {
  it.each([
    ["companies", "COMPANY"],
    ["deals", "DEAL"],
    ["tickets", "TICKET"],
  ] as const)("gives %s only the latest value of each property", (objectType, upperName) => {
    // Prepare
    const record = recordOf(
      objectType,
      "55",
      [{ name: "Acme", domain: "acme.example" }, source(1_000)],
      [{ name: "Acme Corp" }, { ...source(2_000, "AUTOMATION_PLATFORM"), sourceId: "wf-9" }],
    );

    // Act
    const payload = recordPayload(record, options);

    // Assess
    expect(payload).toEqual({
      objectId: 55,
      objectType: upperName,
      portalId: 62515,
      isDeleted: false,
      properties: {
        domain: { value: "acme.example", timestamp: 1_000, source: "API", sourceId: null },
        name: {
          value: "Acme Corp",
          timestamp: 2_000,
          source: "AUTOMATION_PLATFORM",
          sourceId: "wf-9",
        },
      },
    });
  });

  it("orders properties by name whatever order they were stored in", () => {
    // Prepare
    const record = recordOf("companies", "c-1", [{ zeta: "z", alpha: "a", mid: "m" }, source(1)]);

    // Act
    const payload = recordPayload(record, options);

    // Assess
    expect(Object.keys(payload.properties)).toEqual(["alpha", "mid", "zeta"]);
  });
});

describe("webhookBody", () => {
  const company = recordOf(
    "companies",
    "7",
    [{ name: "Acme", "2": "two", industry: "" }, source(1_000)],
    [{ name: "Acme Corp" }, source(2_000)],
  );

  it("sends nothing for a GET, whatever the body spec", () => {
    // Prepare
    const specs: BodySpec[] = [
      { type: "all" },
      { type: "custom", fields: [{ key: "name", property: "name" }] },
    ];

    // Act
    const bodies = specs.map((spec) => webhookBody(spec, "GET", company, options));

    // Assess
    expect(bodies).toEqual([undefined, undefined]);
  });

  it("sends the whole record, byte for byte", () => {
    // Prepare
    const spec: BodySpec = { type: "all" };

    // Act
    const body = webhookBody(spec, "POST", company, options);

    // Assess
    expect(body).toBe(
      '{"objectId":7,"objectType":"COMPANY","portalId":62515,"isDeleted":false,"properties":{' +
        '"2":{"value":"two","timestamp":1000,"source":"API","sourceId":null},' +
        '"name":{"value":"Acme Corp","timestamp":2000,"source":"API","sourceId":null}}}',
    );
    expect(body).toBe(JSON.stringify(recordPayload(company, options)));
  });

  it("sends a custom body's fields in the order given, with static values and null for gaps", () => {
    // Prepare
    const spec: BodySpec = {
      type: "custom",
      fields: [
        { key: "company", property: "name" },
        { key: "10", value: "ten" },
        { key: "digit", property: "2" },
        { key: "1", value: 1 },
        { key: "vip", value: true },
        { key: "owner", value: null },
        { key: "phone", property: "phone" },
        { key: 'quote"d', value: "line\nbreak" },
      ],
    };

    // Act
    const body = webhookBody(spec, "POST", company, options);

    // Assess
    expect(body).toBe(
      '{"company":"Acme Corp","10":"ten","digit":"two","1":1,"vip":true,"owner":null,' +
        '"phone":null,"quote\\"d":"line\\nbreak"}',
    );
    expect(JSON.parse(body ?? "")).toMatchObject({ company: "Acme Corp", phone: null });
  });

  it("refuses a custom body past 1 MiB, as one long property named many times makes it", () => {
    // Prepare: 15 fields of a 64 KiB value stay under the bound; 17 pass it
    const long = recordOf("contacts", "1", [{ note: "a".repeat(65_536) }, source(1_000)]);
    const spec = (count: number): BodySpec => ({
      type: "custom",
      fields: Array.from({ length: count }, (_, i) => ({ key: `k${i}`, property: "note" })),
    });

    // Act
    const fits = () => webhookBody(spec(15), "POST", long, options);
    const passes = () => webhookBody(spec(17), "POST", long, options);

    // Assess
    expect(MAX_WEBHOOK_BODY_BYTES).toBe(1_048_576);
    expect(Buffer.byteLength(fits() ?? "")).toBeLessThan(MAX_WEBHOOK_BODY_BYTES);
    expect(passes).toThrow(PayloadTooLargeError);
    expect(passes).toThrow(/^webhook body would be \d+ bytes; at most 1048576 are sent$/);
  });
});
