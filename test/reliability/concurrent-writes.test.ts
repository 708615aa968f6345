import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalSystem, startLocalSystem } from "#test/local-system";
import { reportFigures } from "#test/reliability-figures";

/**
 * Many clients writing one record, or enrolling one record, at the same moment, through the
 * local system: a request that lost the race is retried or answered 409, never 500.
 */
let system: LocalSystem;
let call: LocalSystem["call"];

beforeAll(async () => {
  system = await startLocalSystem({ timeScale: 0.001 });
  ({ call } = system);
});

afterAll(async () => {
  await system?.stop();
});

const CLIENTS = 150;

function countStatuses(statuses: readonly number[]): string {
  const counts = new Map<number, number>();
  for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${count} × ${status}`)
    .join(", ");
}

describe("one record, many clients at once", () => {
  it(`answers each of ${CLIENTS} concurrent PUTs of one record with a 2xx or a 409, and keeps every change it accepted`, async () => {
    // Act
    const responses = await Promise.all(
      Array.from({ length: CLIENTS }, (_, index) =>
        call("PUT", "/objects/contacts/contended", { properties: { n: `v${index}` } }),
      ),
    );

    // Assess
    const statuses = responses.map((response) => response.status);
    reportFigures({
      suite: `${CLIENTS} concurrent PUTs of one record`,
      inputs: CLIENTS,
      serverErrors: statuses.filter((status) => status >= 500).length,
      notes: countStatuses(statuses),
    });
    expect(statuses.filter((status) => ![200, 201, 409].includes(status))).toEqual([]);
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    const accepted = responses.flatMap((response, index) =>
      response.status < 300 ? [`v${index}`] : [],
    );
    const record = await call("GET", "/objects/contacts/contended");
    const versions = record.body.properties.n.versions.map((v: { value: string }) => v.value);
    expect(versions).toHaveLength(Math.min(20, accepted.length));
    expect(accepted).toEqual(expect.arrayContaining(versions));
  });

  it(`enrolls one record once when ${CLIENTS} clients enroll it at the same moment, and answers the others 409`, async () => {
    // Prepare
    await call("PUT", "/objects/contacts/enrolled-once", {
      properties: { email: "o@example.com" },
    });
    const workflow = await call("POST", "/workflows", {
      name: "Once",
      objectType: "contacts",
      actions: [{ type: "delay", seconds: 3600 }],
    });

    // Act
    const responses = await Promise.all(
      Array.from({ length: CLIENTS }, () =>
        call("POST", `/workflows/${workflow.body.id}/enrollments`, { objectId: "enrolled-once" }),
      ),
    );

    // Assess
    const statuses = responses.map((response) => response.status);
    reportFigures({
      suite: `${CLIENTS} concurrent enrollments of one record`,
      inputs: CLIENTS,
      serverErrors: statuses.filter((status) => status >= 500).length,
      notes: countStatuses(statuses),
    });
    expect(statuses.filter((status) => status === 202)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(CLIENTS - 1);
  });
});
