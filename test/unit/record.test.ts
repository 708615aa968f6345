import { describe, expect, it } from "vitest";
import {
  applyPropertyChanges,
  type CrmRecord,
  currentValue,
  MAX_VERSIONS_PER_PROPERTY,
  type PropertyChangeSource,
} from "#domain/record";

const target = { objectType: "contacts", objectId: "101" } as const;

function apiSource(timestamp: number): PropertyChangeSource {
  return { sourceType: "API", sourceId: null, sourceLabel: null, timestamp };
}

function recordWith(changes: Record<string, string>, timestamp = 1_000): CrmRecord {
  return applyPropertyChanges(undefined, target, changes, apiSource(timestamp)).record;
}

describe("applyPropertyChanges", () => {
  it("creates a record with one version per property", () => {
    // Prepare
    const source: PropertyChangeSource = {
      sourceType: "AUTOMATION_PLATFORM",
      sourceId: "wf-1",
      sourceLabel: "Send new leads",
      timestamp: 1_700_000_000_000,
    };

    // Act
    const { record, changed } = applyPropertyChanges(
      undefined,
      target,
      { email: "a@x.io" },
      source,
    );

    // Assess
    expect(changed).toEqual(["email"]);
    expect(record).toEqual({
      ...target,
      properties: {
        email: [
          {
            value: "a@x.io",
            timestamp: source.timestamp,
            sourceType: source.sourceType,
            sourceId: source.sourceId,
            sourceLabel: source.sourceLabel,
          },
        ],
      },
      createdAt: source.timestamp,
      updatedAt: source.timestamp,
    });
  });

  it.each([
    [42, "42"],
    [-1.5, "-1.5"],
    [0, "0"],
    [true, "true"],
    [false, "false"],
    ["", ""],
    ["text", "text"],
  ] as const)("stores %j as %j", (given, stored) => {
    // Prepare
    const record = recordWith({ score: "previous" });

    // Act
    const result = applyPropertyChanges(record, target, { score: given }, apiSource(2_000));

    // Assess
    expect(currentValue(result.record, "score")).toBe(stored);
  });

  it("clears a value with null by recording an empty version", () => {
    // Prepare
    const record = recordWith({ phone: "555-0100" });

    // Act
    const { record: cleared, changed } = applyPropertyChanges(
      record,
      target,
      { phone: null },
      apiSource(2_000),
    );

    // Assess
    expect(changed).toEqual(["phone"]);
    expect(cleared.properties.phone?.map((version) => version.value)).toEqual(["", "555-0100"]);
  });

  it("records nothing when clearing a property the record never had", () => {
    // Prepare
    const record = recordWith({ email: "a@x.io" });

    // Act
    const result = applyPropertyChanges(record, target, { phone: null, fax: "" }, apiSource(2_000));

    // Assess
    expect(result.changed).toEqual([]);
    expect(result.record).toBe(record);
  });

  it("keeps versions newest first and lists only what changed", () => {
    // Prepare
    const record = recordWith({ firstname: "Ada", lastname: "Lovelace" });

    // Act
    const { record: updated, changed } = applyPropertyChanges(
      record,
      target,
      { firstname: "Augusta", lastname: "Lovelace" },
      apiSource(2_000),
    );

    // Assess
    expect(changed).toEqual(["firstname"]);
    expect(updated.properties.firstname?.map((v) => [v.value, v.timestamp])).toEqual([
      ["Augusta", 2_000],
      ["Ada", 1_000],
    ]);
    expect(updated.properties.lastname).toEqual(record.properties.lastname);
    expect(updated.updatedAt).toBe(2_000);
    expect(updated.createdAt).toBe(1_000);
  });

  it("is a no-op when the same value is applied again", () => {
    // Prepare
    const record = recordWith({ synced_to_crm: "true" });

    // Act
    const result = applyPropertyChanges(record, target, { synced_to_crm: true }, apiSource(9_000));

    // Assess
    expect(result.changed).toEqual([]);
    expect(result.record).toBe(record);
  });

  it("keeps two changes made in the same millisecond, newest first", () => {
    // Prepare
    const record = recordWith({ stage: "lead" }, 5_000);

    // Act
    const first = applyPropertyChanges(record, target, { stage: "mql" }, apiSource(5_000));
    const second = applyPropertyChanges(first.record, target, { stage: "sql" }, apiSource(5_000));

    // Assess
    expect(second.record.properties.stage?.map((v) => v.value)).toEqual(["sql", "mql", "lead"]);
  });

  it(`keeps at most ${MAX_VERSIONS_PER_PROPERTY} versions, dropping the oldest`, () => {
    // Prepare
    const extra = 5;
    const values = Array.from({ length: MAX_VERSIONS_PER_PROPERTY + extra }, (_, i) => `v${i}`);

    // Act
    const record = values.reduce<CrmRecord | undefined>(
      (current, value, i) =>
        applyPropertyChanges(current, target, { notes: value }, apiSource(1_000 + i)).record,
      undefined,
    );

    // Assess
    const kept = record?.properties.notes?.map((version) => version.value);
    expect(kept).toEqual(values.slice(extra).reverse());
  });

  it("leaves the record it was given unchanged", () => {
    // Prepare
    const record = recordWith({ email: "a@x.io" });
    const before = structuredClone(record);

    // Act
    applyPropertyChanges(record, target, { email: "b@x.io", city: "Paris" }, apiSource(2_000));

    // Assess
    expect(record).toEqual(before);
  });

  it("keeps updatedAt from moving backwards when a clock lags", () => {
    // Prepare
    const record = recordWith({ email: "a@x.io" }, 5_000);

    // Act
    const { record: updated } = applyPropertyChanges(
      record,
      target,
      { email: "b@x.io" },
      apiSource(4_000),
    );

    // Assess
    expect(currentValue(updated, "email")).toBe("b@x.io");
    expect(updated.updatedAt).toBe(5_000);
  });
});

describe("currentValue", () => {
  it("reads the newest version and nothing from the object prototype", () => {
    // Prepare
    const record = applyPropertyChanges(
      recordWith({ city: "Paris" }),
      target,
      { city: "Lyon" },
      apiSource(2_000),
    ).record;

    // Act
    const city = currentValue(record, "city");
    const inherited = currentValue(record, "constructor");

    // Assess
    expect(city).toBe("Lyon");
    expect(inherited).toBeUndefined();
  });
});
