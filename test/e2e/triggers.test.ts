import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import type { ReceivedRequest } from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";

/** A triggered enrollment starts within a second locally (docs/contract.md). */
const TRIGGER_LATENCY_MS = 1_000;

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 0.001, visibilityTimeoutSeconds: 2 });
  ({ call, receiver, answers } = system);
});

afterAll(async () => {
  await system?.stop();
});

const newId = () => String(Math.floor(Math.random() * 1e9));

/** A contacts workflow with these triggers whose one action posts the contact to `path`. */
async function triggeredWorkflow(path: string, filterGroups: unknown[], reenroll = false) {
  const created = await call("POST", "/workflows", {
    name: `triggered ${path}`,
    objectType: "contacts",
    actions: [{ type: "webhook", url: receiver.url(path) }],
    enrollmentTriggers: { filterGroups, reenroll },
  });
  expect(created.status).toBe(201);
  return created.body as { id: string };
}

function arrivals(path: string): Promise<ReceivedRequest> {
  return eventually(`a webhook at ${path}`, () => {
    const [first] = receiver.requestsTo(path);
    expect(first).toBeDefined();
    return first as ReceivedRequest;
  });
}

async function enrollmentsOf(workflowId: string, query = "") {
  const listed = await call("GET", `/workflows/${workflowId}/enrollments${query}`);
  expect(listed.status).toBe(200);
  return listed.body as { enrollments: Array<Record<string, unknown>>; nextToken: string | null };
}

describe("workflows that enroll records by themselves", () => {
  it("enrolls a contact that becomes a lead, and its webhook arrives within a second", async () => {
    // Prepare
    const workflow = await triggeredWorkflow("/leads", [
      {
        filters: [
          { type: "property", property: "lifecyclestage", operator: "EQ", value: "lead" },
          { type: "property", property: "email", operator: "HAS_PROPERTY" },
        ],
      },
    ]);
    // A first lead warms every function up, as a deployed system is warm.
    await call("PUT", `/objects/contacts/${newId()}`, {
      properties: { email: "warm@example.com", lifecyclestage: "lead" },
    });
    await arrivals("/leads");
    const contactIds = [newId(), newId(), newId()];
    for (const id of contactIds) {
      await call("PUT", `/objects/contacts/${id}`, {
        properties: { email: `${id}@example.com`, lifecyclestage: "subscriber" },
      });
    }

    // Act
    // Three leads one after the other: on a machine busy with other work one sample may stall,
    // so the fastest of three stands for what the system does.
    const latencies: number[] = [];
    for (const id of contactIds) {
      const changedAt = Date.now();
      await call("PUT", `/objects/contacts/${id}`, { properties: { lifecyclestage: "lead" } });
      const request = await eventually("the lead's webhook", () => {
        const found = receiver
          .requestsTo("/leads")
          .find((r) => JSON.parse(r.body).vid === Number(id));
        expect(found).toBeDefined();
        return found as ReceivedRequest;
      });
      expect(JSON.parse(request.body).properties.lifecyclestage.value).toBe("lead");
      latencies.push(request.receivedAt - changedAt);
    }

    // Assess
    expect(Math.min(...latencies), `latencies ${latencies.join(", ")} ms`).toBeLessThan(
      TRIGGER_LATENCY_MS,
    );
    const contactId = contactIds[0] as string;
    const { enrollments } = await enrollmentsOf(workflow.id, `?objectId=${contactId}`);
    expect(enrollments).toEqual([
      expect.objectContaining({ workflowId: workflow.id, objectId: contactId }),
    ]);
  });

  it("enrolls a contact when it submits the form, and the webhook lists the submission", async () => {
    // Prepare
    await triggeredWorkflow("/contact-us", [
      { filters: [{ type: "formSubmission", formId: "contact-us" }] },
    ]);
    const contactId = newId();

    // Act
    const submitted = await call("POST", "/forms/contact-us/submissions", {
      objectId: contactId,
      values: { email: "grace@example.com", firstname: "Grace" },
      pageUrl: "https://example.com/contact",
    });
    const request = await arrivals("/contact-us");

    // Assess
    expect(submitted.status).toBe(201);
    const body = JSON.parse(request.body);
    expect(body.vid).toBe(Number(contactId));
    expect(body["form-submissions"]).toEqual([
      {
        "form-id": "contact-us",
        "conversion-id": submitted.body.conversionId,
        timestamp: expect.any(Number),
        "page-url": "https://example.com/contact",
      },
    ]);
    expect(body.properties.firstname.versions[0]["source-type"]).toBe("FORM");
  });

  it("enrolls a contact added to a list, and the webhook lists the membership", async () => {
    // Prepare
    const list = await call("POST", "/lists", { name: "Webinar attendees" });
    const listId = list.body.listId as string;
    await triggeredWorkflow("/webinar", [{ filters: [{ type: "listMembership", listId }] }]);
    const contactId = newId();
    await call("PUT", `/objects/contacts/${contactId}`, { properties: { email: "x@example.com" } });

    // Act
    const added = await call("PUT", `/lists/${listId}/members/${contactId}`);
    const addedAgain = await call("PUT", `/lists/${listId}/members/${contactId}`);
    const request = await arrivals("/webinar");

    // Assess
    expect([list.status, added.status, addedAgain.status]).toEqual([201, 200, 200]);
    expect(addedAgain.body).toEqual({ listId, name: "Webinar attendees", size: 1 });
    expect(JSON.parse(request.body)["list-memberships"]).toEqual([
      {
        "static-list-id": Number(listId),
        "internal-list-id": Number(listId),
        timestamp: expect.any(Number),
        vid: Number(contactId),
        "is-member": true,
      },
    ]);
    const removed = await call("DELETE", `/lists/${listId}/members/${contactId}`);
    expect(removed.status).toBe(204);
    expect((await call("GET", `/lists/${listId}`)).body.size).toBe(0);
  });

  it("without reenroll, enrolls a record once however often it meets the criteria again", async () => {
    // Prepare
    const workflow = await triggeredWorkflow("/once", [
      { filters: [{ type: "property", property: "stage", operator: "EQ", value: "hot" }] },
    ]);
    const contactId = newId();

    // Act
    for (const stage of ["hot", "cold", "hot"]) {
      await call("PUT", `/objects/contacts/${contactId}`, { properties: { stage } });
      await eventually("the enrollment to end", async () => {
        const { enrollments } = await enrollmentsOf(workflow.id);
        expect(enrollments.map((enrollment) => enrollment.status)).not.toContain("active");
        expect(enrollments.map((enrollment) => enrollment.status)).not.toContain("waiting");
      });
    }
    // Another change after the last: time for a wrong second enrollment to show.
    await call("PUT", `/objects/contacts/${contactId}`, { properties: { note: "x" } });
    await arrivals("/once");
    await new Promise((resolve) => setTimeout(resolve, 500));

    // Assess
    expect((await enrollmentsOf(workflow.id)).enrollments).toHaveLength(1);
    expect(receiver.requestsTo("/once")).toHaveLength(1);
  });

  it("with reenroll, enrolls a record again each time it newly meets the criteria", async () => {
    // Prepare
    const workflow = await triggeredWorkflow(
      "/again",
      [{ filters: [{ type: "property", property: "stage", operator: "EQ", value: "hot" }] }],
      true,
    );
    const contactId = newId();

    // Act
    for (const stage of ["hot", "cold", "hot"]) {
      await call("PUT", `/objects/contacts/${contactId}`, { properties: { stage } });
      if (stage === "hot") {
        await eventually("the enrollment to end", async () => {
          const { enrollments } = await enrollmentsOf(workflow.id, "?status=completed");
          expect(enrollments.length).toBeGreaterThan(0);
          expect(enrollments).toHaveLength(receiver.requestsTo("/again").length);
        });
      }
    }

    // Assess
    await eventually("two enrollments", async () =>
      expect((await enrollmentsOf(workflow.id, "?status=completed")).enrollments).toHaveLength(2),
    );
    expect(receiver.requestsTo("/again")).toHaveLength(2);
  });

  it("does not enroll records that met the criteria before the workflow existed", async () => {
    // Prepare
    const contactId = newId();
    await call("PUT", `/objects/contacts/${contactId}`, { properties: { tier: "gold" } });
    const workflow = await triggeredWorkflow("/gold", [
      { filters: [{ type: "property", property: "tier", operator: "EQ", value: "gold" }] },
    ]);

    // Act
    await call("PUT", `/objects/contacts/${contactId}`, { properties: { city: "Paris" } });
    const other = newId();
    await call("PUT", `/objects/contacts/${other}`, { properties: { tier: "gold" } });
    await arrivals("/gold");

    // Assess
    const { enrollments } = await enrollmentsOf(workflow.id);
    expect(enrollments.map((enrollment) => enrollment.objectId)).toEqual([other]);
  });
});

describe("a workflow's enrollments", () => {
  it("are listed newest first, paged, and filtered by record and status", async () => {
    // Prepare
    const created = await call("POST", "/workflows", {
      name: "listed",
      objectType: "deals",
      actions: [{ type: "delay", seconds: 3_600_000 }],
    });
    const workflowId = created.body.id as string;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const dealId = `deal-${i}`;
      await call("PUT", `/objects/deals/${dealId}`, { properties: { amount: String(i) } });
      const enrolled = await call("POST", `/workflows/${workflowId}/enrollments`, {
        objectId: dealId,
      });
      ids.push(enrolled.body.enrollmentId);
    }

    // Act
    const first = await enrollmentsOf(workflowId, "?limit=2");
    const second = await enrollmentsOf(workflowId, `?limit=2&nextToken=${first.nextToken}`);
    const third = await enrollmentsOf(workflowId, `?limit=2&nextToken=${second.nextToken}`);
    const oneDeal = await enrollmentsOf(workflowId, "?objectId=deal-3");
    const none = await enrollmentsOf(workflowId, "?status=completed");
    const badToken = await call("GET", `/workflows/${workflowId}/enrollments?nextToken=abc`);
    const unknown = await call("GET", "/workflows/no-such-workflow/enrollments");

    // Assess
    const listed = [...first.enrollments, ...second.enrollments, ...third.enrollments];
    expect(listed.map((enrollment) => enrollment.enrollmentId)).toEqual([...ids].reverse());
    expect(third.nextToken).toBeNull();
    expect(listed[0]).not.toHaveProperty("deliveries");
    expect(listed[0]).toMatchObject({ objectType: "deals", status: expect.any(String) });
    expect(oneDeal.enrollments.map((enrollment) => enrollment.objectId)).toEqual(["deal-3"]);
    expect(none).toEqual({ enrollments: [], nextToken: null });
    expect(badToken.status).toBe(400);
    expect(badToken.body.error.message).toMatch(/^nextToken: /);
    expect(unknown.status).toBe(404);
  });
});

describe("webhook outputs", () => {
  it("a GET webhook's outputs set a property that the next webhook sends", async () => {
    // Prepare
    answers.set("/lookup", () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ company: { tier: "enterprise", seats: 250 }, tags: ["a"] }),
    }));
    const created = await call("POST", "/workflows", {
      name: "enrich then sync",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          method: "GET",
          url: receiver.url("/lookup"),
          outputs: [
            { path: "company.tier", property: "tier" },
            { path: "company.seats", property: "seats" },
            { path: "company.missing", property: "nothing" },
          ],
        },
        {
          type: "webhook",
          url: receiver.url("/sync"),
          body: {
            type: "custom",
            fields: [
              { key: "tier", property: "tier" },
              { key: "seats", property: "seats" },
            ],
          },
        },
      ],
    });
    const contactId = newId();
    await call("PUT", `/objects/contacts/${contactId}`, { properties: { email: "e@example.com" } });

    // Act
    const enrolled = await call("POST", `/workflows/${created.body.id}/enrollments`, {
      objectId: contactId,
    });
    const enrollment = await eventually("the enrollment to complete", async () => {
      const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
      expect(body.status).toBe("completed");
      return body;
    });

    // Assess
    const sync = receiver.requestsTo("/sync").at(-1) as ReceivedRequest;
    expect(JSON.parse(sync.body)).toEqual({ tier: "enterprise", seats: "250" });
    expect(enrollment.actions[0].outputs).toEqual([
      { path: "company.tier", property: "tier", written: true, value: "enterprise" },
      { path: "company.seats", property: "seats", written: true, value: "250" },
      { path: "company.missing", property: "nothing", written: false, reason: "path not found" },
    ]);
    const record = await call("GET", `/objects/contacts/${contactId}`);
    expect(record.body.properties.tier.versions[0]).toMatchObject({
      value: "enterprise",
      "source-type": "WORKFLOW",
      "source-id": created.body.id,
    });
  });
});
