import { describe, expect, it } from "vitest";
import { ValidationError } from "#domain/errors";
import {
  DEFAULT_DELIVERY_PAGE_SIZE,
  DEFAULT_ENROLLMENT_PAGE_SIZE,
  DEFAULT_WORKFLOW_PAGE_SIZE,
  parseDeliveryListQuery,
  parseEnrollmentListQuery,
  parseWorkflowListQuery,
  type RawQuery,
} from "#domain/list-queries";

/** The message a parse throws, or undefined when it parses. */
function refusal(parse: () => unknown): string | undefined {
  try {
    parse();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).message;
  }
}

describe("the query of GET /deliveries", () => {
  it("takes a workflow, a status, a window of ISO-8601 times, a limit and a token", () => {
    // Act
    const query = parseDeliveryListQuery({
      workflowId: "wf-1",
      status: "failed",
      since: "2024-05-01T00:00:00Z",
      until: "2024-05-01T02:00:00.500+02:00",
      limit: "100",
      nextToken: "eyJ4IjoxfQ",
    });

    // Assess
    expect(query).toEqual({
      workflowId: "wf-1",
      status: "failed",
      since: Date.UTC(2024, 4, 1),
      until: Date.UTC(2024, 4, 1, 0, 0, 0, 500),
      limit: 100,
      nextToken: "eyJ4IjoxfQ",
    });
  });

  it("reads every value API Gateway hands over of each parameter, when each is given once", () => {
    expect(parseDeliveryListQuery({ workflowId: ["wf-1"], limit: ["3"] })).toEqual({
      workflowId: "wf-1",
      limit: 3,
    });
  });

  it("needs only the workflow, and pages by 25 without a limit", () => {
    expect(parseDeliveryListQuery({ workflowId: "wf-1" })).toEqual({
      workflowId: "wf-1",
      limit: DEFAULT_DELIVERY_PAGE_SIZE,
    });
    expect(DEFAULT_DELIVERY_PAGE_SIZE).toBe(25);
  });

  it.each([
    [null, "workflowId: is required"],
    [{ status: "failed" }, "workflowId: is required"],
    [{ workflowId: "a b" }, "workflowId: must contain only letters"],
    [{ workflowId: "w", status: "lost" }, "status: must be one of pending, retrying"],
    [{ workflowId: "w", since: "yesterday" }, "since: must be an ISO-8601 date and time"],
    [{ workflowId: "w", until: "2024-05-01" }, "until: must be an ISO-8601 date and time"],
    [
      { workflowId: "w", since: "2024-05-02T00:00:00Z", until: "2024-05-01T00:00:00Z" },
      "until: must not be before since",
    ],
    [{ workflowId: "w", limit: "0" }, "limit: must be at least 1"],
    [{ workflowId: "w", limit: "101" }, "limit: must be at most 100"],
    [{ workflowId: "w", limit: "ten" }, "limit: must be a whole number from 1 to 100"],
    [{ workflowId: "w", limit: "1e2" }, "limit: must be a whole number from 1 to 100"],
    [{ workflowId: "w", limit: "99999999999999999999" }, "limit: must be a whole number"],
    [{ workflowId: "w", nextToken: "not+base64/url=" }, "nextToken: must be a nextToken"],
    [{ workflowId: "w", nextToken: "x".repeat(2049) }, "nextToken: must be at most 2048"],
    [{ workflowId: "w", page: "2" }, "page: unknown query parameter"],
    [{ workflowId: ["w"], limit: ["5", "50"] }, "limit: is given more than once; give it once"],
    [{ workflowId: ["w", "w"] }, "workflowId: is given more than once"],
  ])("refuses %j, naming the parameter", (raw, message) => {
    expect(refusal(() => parseDeliveryListQuery(raw as RawQuery))).toContain(message);
  });
});

describe("the query of GET /workflows", () => {
  it("pages by 100 without a limit, so a client that ignores paging sees up to 100", () => {
    expect(parseWorkflowListQuery(null)).toEqual({ limit: DEFAULT_WORKFLOW_PAGE_SIZE });
    expect(DEFAULT_WORKFLOW_PAGE_SIZE).toBe(100);
    expect(parseWorkflowListQuery({ limit: "2", nextToken: "abc" })).toEqual({
      limit: 2,
      nextToken: "abc",
    });
  });

  it("refuses a parameter it does not take, and a limit out of bounds", () => {
    expect(refusal(() => parseWorkflowListQuery({ workflowId: "w" }))).toContain(
      "workflowId: unknown query parameter",
    );
    expect(refusal(() => parseWorkflowListQuery({ limit: "-1" }))).toContain("limit:");
  });
});

describe("the query of GET /workflows/{id}/enrollments", () => {
  it("takes a record, a status, a limit and a token, and pages by 20 without a limit", () => {
    expect(
      parseEnrollmentListQuery({
        objectId: "101",
        status: "completed",
        limit: "5",
        nextToken: "a",
      }),
    ).toEqual({ objectId: "101", status: "completed", limit: 5, nextToken: "a" });
    expect(parseEnrollmentListQuery(null)).toEqual({ limit: DEFAULT_ENROLLMENT_PAGE_SIZE });
    expect(DEFAULT_ENROLLMENT_PAGE_SIZE).toBe(20);
  });

  it.each([
    [{ objectId: "a b" }, "objectId: must contain only letters"],
    [{ status: "paused" }, "status: must be one of active, waiting, completed, failed, cancelled"],
    [{ limit: "0" }, "limit: must be at least 1"],
    [{ limit: "500" }, "limit: must be at most 100"],
    [{ limit: "0x10" }, "limit: must be a whole number from 1 to 100"],
    [{ limit: " 5" }, "limit: must be a whole number from 1 to 100"],
    [{ nextToken: "not+base64/url=" }, "nextToken: must be a nextToken"],
    [{ sort: "asc" }, "sort: unknown query parameter; this route takes objectId, status, limit"],
  ])("refuses %j, naming the parameter", (raw, message) => {
    expect(refusal(() => parseEnrollmentListQuery(raw))).toContain(message);
  });
});
