import { describe, expect, it } from "vitest";
import {
  type EnrollmentTriggers,
  type FilterGroup,
  filterMatches,
  groupMatches,
  newlyMeets,
  type PropertyFilter,
  type PropertyOperator,
  type TriggerFilter,
  type TriggerState,
  triggeredEnrollmentId,
  triggersMatch,
} from "#domain/enrollment-triggers";
import { joinList, leaveList, withFormSubmission } from "#domain/forms-and-lists";
import { applyPropertyChanges, type CrmRecord } from "#domain/record";

const T0 = 1_700_000_000_000;

function contact(properties: Record<string, string | null>, id = "101"): CrmRecord {
  return applyPropertyChanges(undefined, { objectType: "contacts", objectId: id }, properties, {
    sourceType: "API",
    sourceId: null,
    sourceLabel: null,
    timestamp: T0,
  }).record;
}

function changed(record: CrmRecord, properties: Record<string, string | null>): CrmRecord {
  return applyPropertyChanges(record, record, properties, {
    sourceType: "API",
    sourceId: null,
    sourceLabel: null,
    timestamp: T0 + 1000,
  }).record;
}

const state = (record: CrmRecord | undefined): TriggerState => ({
  record,
  submittedForms: new Set(),
});

const property = (
  name: string,
  operator: PropertyOperator,
  extra: Partial<PropertyFilter> = {},
): PropertyFilter => ({ type: "property", property: name, operator, ...extra });

const triggers = (...groups: TriggerFilter[][]): EnrollmentTriggers => ({
  filterGroups: groups.map((filters) => ({ filters })),
  reenroll: false,
});

describe("property filters", () => {
  const ada = contact({ lifecyclestage: "lead", email: "Ada@Example.com", score: "42", empty: "" });

  it.each([
    ["EQ on the exact string", property("lifecyclestage", "EQ", { value: "lead" }), true],
    ["EQ on another string", property("lifecyclestage", "EQ", { value: "Lead" }), false],
    ["EQ with a number, numerically", property("score", "EQ", { value: 42 }), true],
    ["NEQ on another value", property("lifecyclestage", "NEQ", { value: "customer" }), true],
    ["NEQ on a missing property", property("city", "NEQ", { value: "Paris" }), true],
    ["CONTAINS, ignoring case", property("email", "CONTAINS", { value: "example.COM" }), true],
    ["CONTAINS a missing substring", property("email", "CONTAINS", { value: "hubspot" }), false],
    ["GT below", property("score", "GT", { value: 41 }), true],
    ["GT equal", property("score", "GT", { value: 42 }), false],
    ["GTE equal", property("score", "GTE", { value: "42" }), true],
    ["LT above", property("score", "LT", { value: 100 }), true],
    ["LTE below", property("score", "LTE", { value: 41.5 }), false],
    ["GT on text", property("email", "GT", { value: 1 }), false],
    ["LT on a missing property", property("city", "LT", { value: 1 }), false],
    ["IN a list holding it", property("lifecyclestage", "IN", { values: ["x", "lead"] }), true],
    ["IN a list without it", property("lifecyclestage", "IN", { values: ["x"] }), false],
    ["NOT_IN a list without it", property("lifecyclestage", "NOT_IN", { values: ["x"] }), true],
    ["HAS_PROPERTY with a value", property("email", "HAS_PROPERTY"), true],
    ["HAS_PROPERTY cleared to empty", property("empty", "HAS_PROPERTY"), false],
    ["NOT_HAS_PROPERTY never set", property("city", "NOT_HAS_PROPERTY"), true],
  ])("%s: %s", (_, filter, expected) => {
    // Act
    const matched = filterMatches(filter, state(ada));

    // Assess
    expect(matched).toBe(expected);
  });

  it("never matches a record that did not exist", () => {
    // Act
    const matched = filterMatches(property("city", "NOT_HAS_PROPERTY"), state(undefined));

    // Assess
    expect(matched).toBe(false);
  });
});

describe("form and list filters", () => {
  it("meet a form submission only in the change that records it", () => {
    // Prepare
    const filter: TriggerFilter = { type: "formSubmission", formId: "contact-us" };

    // Act
    const during = filterMatches(filter, {
      record: contact({}),
      submittedForms: new Set(["contact-us"]),
    });
    const after = filterMatches(filter, state(contact({})));

    // Assess
    expect(during).toBe(true);
    expect(after).toBe(false);
  });

  it("meet list membership while the contact is a member", () => {
    // Prepare
    const filter: TriggerFilter = { type: "listMembership", listId: "7" };
    const member = joinList(contact({}), "7", T0) as CrmRecord;

    // Act
    const asMember = filterMatches(filter, state(member));
    const afterLeaving = filterMatches(filter, state(leaveList(member, "7", T0) as CrmRecord));

    // Assess
    expect(asMember).toBe(true);
    expect(afterLeaving).toBe(false);
  });
});

describe("groups and their negation (property-based)", () => {
  /** A small deterministic generator, so a failure is reproduced by its seed. */
  function generator(seed: number) {
    let state = seed >>> 0;
    const next = () => {
      state = (state * 1_664_525 + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    return { next, pick };
  }
  const NAMES = ["a", "b", "c"];
  const VALUES = ["", "lead", "LEAD", "10", "2.5", "-3", "x lead y", "true"];
  const NEGATION: Partial<Record<PropertyOperator, PropertyOperator>> = {
    EQ: "NEQ",
    NEQ: "EQ",
    IN: "NOT_IN",
    NOT_IN: "IN",
    HAS_PROPERTY: "NOT_HAS_PROPERTY",
    NOT_HAS_PROPERTY: "HAS_PROPERTY",
    GT: "LTE",
    LTE: "GT",
    GTE: "LT",
    LT: "GTE",
  };
  const OPERATORS = Object.keys(NEGATION) as PropertyOperator[];

  function randomFilter(random: ReturnType<typeof generator>): PropertyFilter {
    const operator = random.pick(OPERATORS);
    const name = random.pick(NAMES);
    const value = (): string | number =>
      random.next() < 0.5 ? random.pick(VALUES) : random.pick([10, 2.5, -3, 0]);
    if (operator === "IN" || operator === "NOT_IN") {
      return property(name, operator, { values: [value(), value()] });
    }
    if (operator === "HAS_PROPERTY" || operator === "NOT_HAS_PROPERTY") {
      return property(name, operator);
    }
    return property(name, operator, { value: value() });
  }

  /** not (f1 and f2 and ...) = (not f1) or (not f2) or ...: one group per negated filter. */
  function negation(group: FilterGroup): EnrollmentTriggers {
    return {
      filterGroups: group.filters.map((filter) => ({
        filters: [
          {
            ...(filter as PropertyFilter),
            operator: NEGATION[(filter as PropertyFilter).operator] as PropertyOperator,
          },
        ],
      })),
      reenroll: false,
    };
  }

  it("a group and its negation never both match, over 2,000 random groups and records", () => {
    for (let seed = 1; seed <= 2_000; seed++) {
      // Prepare
      const random = generator(seed);
      const group: FilterGroup = {
        filters: Array.from({ length: 1 + Math.floor(random.next() * 4) }, () =>
          randomFilter(random),
        ),
      };
      const record = contact(
        Object.fromEntries(
          NAMES.filter(() => random.next() < 0.7).map((name) => [name, random.pick(VALUES)]),
        ),
      );

      // Act
      const both =
        groupMatches(group, state(record)) && triggersMatch(negation(group), state(record));

      // Assess
      expect(both, `seed ${seed}`).toBe(false);
    }
  });

  it("EQ, IN and HAS_PROPERTY and their negations split every record between them", () => {
    for (let seed = 1; seed <= 1_000; seed++) {
      // Prepare
      const random = generator(seed);
      let filter = randomFilter(random);
      while (
        !["EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"].includes(filter.operator)
      ) {
        filter = randomFilter(random);
      }
      const record = contact({ [filter.property]: random.pick(VALUES) });
      const negated = { ...filter, operator: NEGATION[filter.operator] as PropertyOperator };

      // Act
      const matches = [filterMatches(filter, state(record)), filterMatches(negated, state(record))];

      // Assess
      expect(matches.filter(Boolean), `seed ${seed}`).toHaveLength(1);
    }
  });
});

describe("newly meeting the criteria", () => {
  const isLead = triggers([property("lifecyclestage", "EQ", { value: "lead" })]);

  it("is true when a change makes the record meet them", () => {
    // Prepare
    const before = contact({ lifecyclestage: "subscriber" });

    // Act
    const newly = newlyMeets(isLead, before, changed(before, { lifecyclestage: "lead" }));

    // Assess
    expect(newly).toBe(true);
  });

  it("is false when the record met them already before the change", () => {
    // Prepare
    const before = contact({ lifecyclestage: "lead" });

    // Act
    const newly = newlyMeets(isLead, before, changed(before, { firstname: "Ada" }));

    // Assess
    expect(newly).toBe(false);
  });

  it("is false when the change leaves the criteria unmet", () => {
    // Prepare
    const before = contact({ lifecyclestage: "subscriber" });

    // Act
    const newly = newlyMeets(isLead, before, changed(before, { lifecyclestage: "customer" }));

    // Assess
    expect(newly).toBe(false);
  });

  it("is true for a record created meeting them, even by a negative filter", () => {
    // Prepare
    const noEmail = triggers([property("email", "NOT_HAS_PROPERTY")]);

    // Act
    const newly = newlyMeets(noEmail, undefined, contact({ firstname: "Ada" }));

    // Assess
    expect(newly).toBe(true);
  });

  it("is true when a second group becomes met while the first was not", () => {
    // Prepare
    const either = triggers(
      [property("lifecyclestage", "EQ", { value: "lead" })],
      [property("score", "GTE", { value: 50 })],
    );
    const before = contact({ score: "10" });

    // Act
    const newly = newlyMeets(either, before, changed(before, { score: "75" }));

    // Assess
    expect(newly).toBe(true);
  });

  it("is true at every submission of the form, whatever the contact met before", () => {
    // Prepare
    const submitted = triggers(
      [{ type: "formSubmission", formId: "contact-us" }],
      [property("lifecyclestage", "EQ", { value: "lead" })],
    );
    const lead = contact({ lifecyclestage: "lead" });
    const first = withFormSubmission(lead, {
      formId: "contact-us",
      conversionId: "c1",
      timestamp: T0,
      pageUrl: null,
    });
    const second = withFormSubmission(first, {
      formId: "contact-us",
      conversionId: "c2",
      timestamp: T0 + 1,
      pageUrl: null,
    });

    // Act
    const atFirst = newlyMeets(submitted, lead, first);
    const atSecond = newlyMeets(submitted, first, second);
    const onAnotherChange = newlyMeets(submitted, second, changed(second, { city: "Paris" }));

    // Assess
    expect(atFirst).toBe(true);
    expect(atSecond).toBe(true);
    expect(onAnotherChange).toBe(false);
  });

  it("is false for a submission of another form", () => {
    // Prepare
    const submitted = triggers([{ type: "formSubmission", formId: "contact-us" }]);
    const before = contact({});

    // Act
    const newly = newlyMeets(
      submitted,
      before,
      withFormSubmission(before, {
        formId: "newsletter",
        conversionId: "c1",
        timestamp: T0,
        pageUrl: null,
      }),
    );

    // Assess
    expect(newly).toBe(false);
  });

  it("is true when the contact joins the list, and not when it leaves or stays", () => {
    // Prepare
    const inList = triggers([{ type: "listMembership", listId: "7" }]);
    const before = contact({});
    const member = joinList(before, "7", T0) as CrmRecord;

    // Act
    const joining = newlyMeets(inList, before, member);
    const staying = newlyMeets(inList, member, changed(member, { city: "Paris" }));
    const leaving = newlyMeets(inList, member, leaveList(member, "7", T0) as CrmRecord);

    // Assess
    expect([joining, staying, leaving]).toEqual([true, false, false]);
  });
});

describe("re-enrollment", () => {
  const base = { workflowId: "wf-1", objectType: "contacts" as const, objectId: "101" };

  it("gives the same change the same enrollment id, so a repeated stream record starts nothing", () => {
    // Act
    const first = triggeredEnrollmentId({ ...base, reenroll: true, revision: 4 });
    const again = triggeredEnrollmentId({ ...base, reenroll: true, revision: 4 });

    // Assess
    expect(again).toBe(first);
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it("without reenroll, gives every change of the record the same id: at most one enrollment", () => {
    // Act
    const ids = new Set(
      [1, 2, 3].map((revision) => triggeredEnrollmentId({ ...base, reenroll: false, revision })),
    );

    // Assess
    expect(ids.size).toBe(1);
  });

  it("with reenroll, gives each change its own id, and other records and workflows others", () => {
    // Act
    const ids = new Set([
      triggeredEnrollmentId({ ...base, reenroll: true, revision: 1 }),
      triggeredEnrollmentId({ ...base, reenroll: true, revision: 2 }),
      triggeredEnrollmentId({ ...base, objectId: "102", reenroll: true, revision: 1 }),
      triggeredEnrollmentId({ ...base, workflowId: "wf-2", reenroll: true, revision: 1 }),
      triggeredEnrollmentId({ ...base, reenroll: false, revision: 1 }),
    ]);

    // Assess
    expect(ids.size).toBe(5);
  });
});
