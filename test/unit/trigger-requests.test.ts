import { describe, expect, it } from "vitest";
import { ConflictError, ValidationError } from "#domain/errors";
import {
  joinList,
  MAX_FORM_SUBMISSIONS,
  MAX_LIST_MEMBERSHIPS,
  withFormSubmission,
} from "#domain/forms-and-lists";
import { recordPayload } from "#domain/payload";
import { applyPropertyChanges, type CrmRecord } from "#domain/record";
import { parseRequestBody } from "#domain/request-schemas";

function refusal(act: () => unknown): string {
  try {
    act();
  } catch (error) {
    if (error instanceof ValidationError) return error.message;
    throw error;
  }
  throw new Error("expected a ValidationError, but the input was accepted");
}

function workflow(filters: unknown[], extra: Record<string, unknown> = {}) {
  return {
    name: "Leads",
    objectType: "contacts",
    actions: [{ type: "delay", seconds: 1 }],
    enrollmentTriggers: { filterGroups: [{ filters }] },
    ...extra,
  };
}

describe("enrollment triggers in a workflow", () => {
  it("accept every filter kind, and default reenroll to false", () => {
    // Act
    const parsed = parseRequestBody(
      "workflow",
      workflow([
        { type: "property", property: "lifecyclestage", operator: "EQ", value: "lead" },
        { type: "property", property: "score", operator: "GT", value: "10" },
        { type: "property", property: "country", operator: "IN", values: ["FR", "DE"] },
        { type: "property", property: "email", operator: "HAS_PROPERTY" },
        { type: "formSubmission", formId: "contact-us" },
        { type: "listMembership", listId: "7" },
      ]),
    );

    // Assess
    expect(parsed.enrollmentTriggers?.reenroll).toBe(false);
    expect(parsed.enrollmentTriggers?.filterGroups[0]?.filters).toHaveLength(6);
  });

  it.each([
    [
      "a value missing",
      [{ type: "property", property: "a", operator: "EQ" }],
      "enrollmentTriggers.filterGroups[0].filters[0].value: is required with operator EQ",
    ],
    [
      "a number operator on text",
      [{ type: "property", property: "a", operator: "GTE", value: "ten" }],
      "enrollmentTriggers.filterGroups[0].filters[0].value: must be a number with operator GTE",
    ],
    [
      "values missing for IN",
      [{ type: "property", property: "a", operator: "NOT_IN", value: "x" }],
      "enrollmentTriggers.filterGroups[0].filters[0].values: is required with operator NOT_IN",
    ],
    [
      "a value given to HAS_PROPERTY",
      [
        { type: "property", property: "a", operator: "EQ", value: "x" },
        { type: "property", property: "a", operator: "HAS_PROPERTY", value: "x" },
      ],
      "enrollmentTriggers.filterGroups[0].filters[1].value: must be left out with operator HAS_PROPERTY",
    ],
    [
      "an empty CONTAINS",
      [{ type: "property", property: "a", operator: "CONTAINS", value: "" }],
      "enrollmentTriggers.filterGroups[0].filters[0].value: must not be empty with operator CONTAINS",
    ],
    [
      "an unknown operator",
      [{ type: "property", property: "a", operator: "LIKE", value: "x" }],
      "enrollmentTriggers.filterGroups[0].filters[0].operator: must be one of EQ, NEQ, CONTAINS, GT, GTE, LT, LTE, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY",
    ],
    [
      "an unknown filter type",
      [{ type: "pageView", url: "x" }],
      "enrollmentTriggers.filterGroups[0].filters[0].type: must be one of property, formSubmission, listMembership",
    ],
    ["an empty group", [], "enrollmentTriggers.filterGroups[0].filters: must have at least 1 item"],
  ])("refuse %s, naming the filter and the rule", (_, filters, message) => {
    // Act
    const refused = refusal(() => parseRequestBody("workflow", workflow(filters)));

    // Assess
    expect(refused).toBe(message);
  });

  it("refuse form and list filters on other object types than contacts", () => {
    // Act
    const refused = refusal(() =>
      parseRequestBody(
        "workflow",
        workflow([{ type: "listMembership", listId: "7" }], { objectType: "deals" }),
      ),
    );

    // Assess
    expect(refused).toBe(
      "enrollmentTriggers.filterGroups[0].filters[0].type: must be property for deals (forms and lists hold contacts only)",
    );
  });

  it("refuse more than 20 outputs on a webhook action, and a path that is not dot notation", () => {
    // Prepare
    const webhook = (outputs: unknown) => ({
      name: "Enrich",
      objectType: "contacts",
      actions: [{ type: "webhook", url: "https://crm.example.com/x", method: "GET", outputs }],
    });
    const many = Array.from({ length: 21 }, (_, i) => ({ path: `a.${i}`, property: `p${i}` }));

    // Act
    const tooMany = refusal(() => parseRequestBody("workflow", webhook(many)));
    const badPath = refusal(() =>
      parseRequestBody("workflow", webhook([{ path: "data..id", property: "x" }])),
    );
    const accepted = parseRequestBody(
      "workflow",
      webhook([{ path: "data.items.0.id", property: "x" }]),
    );

    // Assess
    expect(tooMany).toBe("actions[0].outputs: must have at most 20 items");
    expect(badPath).toMatch(/^actions\[0\]\.outputs\[0\]\.path: must be dot notation/);
    expect(accepted.actions[0]).toMatchObject({
      outputs: [{ path: "data.items.0.id", property: "x" }],
    });
  });
});

describe("forms and lists on a contact", () => {
  const contact = (): CrmRecord =>
    applyPropertyChanges(
      undefined,
      { objectType: "contacts", objectId: "101" },
      { email: "ada@example.com" },
      { sourceType: "API", sourceId: null, sourceLabel: null, timestamp: 1_000 },
    ).record;

  it("appear in the payload in HubSpot's legacy shape, newest submission first", () => {
    // Prepare
    let record = withFormSubmission(contact(), {
      formId: "contact-us",
      conversionId: "c-1",
      timestamp: 2_000,
      pageUrl: "https://example.com/contact",
    });
    record = withFormSubmission(record, {
      formId: "newsletter",
      conversionId: "c-2",
      timestamp: 3_000,
      pageUrl: null,
    });
    record = joinList(record, "7", 4_000) as CrmRecord;

    // Act
    const payload = recordPayload(record, { portalId: 1 });

    // Assess
    expect(payload).toMatchObject({
      "form-submissions": [
        { "form-id": "newsletter", "conversion-id": "c-2", timestamp: 3_000, "page-url": null },
        {
          "form-id": "contact-us",
          "conversion-id": "c-1",
          timestamp: 2_000,
          "page-url": "https://example.com/contact",
        },
      ],
      "list-memberships": [
        {
          "static-list-id": 7,
          "internal-list-id": 7,
          timestamp: 4_000,
          vid: 101,
          "is-member": true,
        },
      ],
    });
  });

  it("keep the newest submissions only, like property history", () => {
    // Prepare
    let record = contact();
    for (let i = 0; i < MAX_FORM_SUBMISSIONS + 5; i++) {
      record = withFormSubmission(record, {
        formId: "f",
        conversionId: `c-${i}`,
        timestamp: i,
        pageUrl: null,
      });
    }

    // Assess
    expect(record.formSubmissions).toHaveLength(MAX_FORM_SUBMISSIONS);
    expect(record.formSubmissions?.[0]?.conversionId).toBe(`c-${MAX_FORM_SUBMISSIONS + 4}`);
  });

  it("refuse one list more than a contact may be in, and treat joining twice as no change", () => {
    // Prepare
    let record = contact();
    for (let i = 0; i < MAX_LIST_MEMBERSHIPS; i++)
      record = joinList(record, `${i}`, i) as CrmRecord;

    // Act
    const again = joinList(record, "0", 9_999);

    // Assess
    expect(again).toBeUndefined();
    expect(() => joinList(record, "one-more", 9_999)).toThrow(ConflictError);
  });
});
