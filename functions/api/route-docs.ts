/**
 * What the OpenAPI document says of each route of the contract: a route without its description
 * does not compile. Path parameters and request bodies come from the contract and the request
 * schemas; only what they cannot say is written here.
 */
import * as z from "zod/mini";
import { LIST_READ_BUDGET } from "#adapters/deliveries-table";
import { DEFAULT_REPLAY_PACE } from "#app/replays";
import {
  deliveryListParameters,
  enrollmentListParameters,
  workflowListParameters,
} from "#domain/list-queries";
import type { RouteKey } from "#shared/contract";
import type { RouteDoc } from "./openapi.ts";

const appSchema = z.object({ appId: z.string(), name: z.string() });

const registeredAppSchema = z.extend(appSchema, {
  clientSecret: z.string().check(z.meta({ description: "Shown only in this response" })),
});

const rotatedSecretSchema = z.extend(registeredAppSchema, {
  previousSecretExpiresAt: z.string().check(
    z.meta({
      format: "date-time",
      description: "Until then, requests are signed with the replaced secret too",
    }),
  ),
});

const enrolledSchema = z.object({ enrollmentId: z.string(), status: z.string() });

const enrollmentsPageSchema = z.object({
  enrollments: z.array(z.record(z.string(), z.unknown())).check(
    z.meta({
      description: "Newest first, each as GET /enrollments/{id} shows it, without deliveries",
    }),
  ),
  nextToken: z
    .nullable(z.string())
    .check(z.meta({ description: "Pass it back for the next page; null on the last page" })),
});

const listSchema = z.object({ listId: z.string(), name: z.string(), size: z.number() });
const nextTokenSchema = z
  .nullable(z.string())
  .check(z.meta({ description: "Pass as nextToken for the next page; null on the last page" }));

const time = (description: string) =>
  z.string().check(z.meta({ format: "date-time", description }));

const replayStartedSchema = z.object({ replayId: z.string() });

const replaySchema = z.object({
  replayId: z.string(),
  workflowId: z.string(),
  since: time("Deliveries created from this time..."),
  until: time("...to this time are replayed"),
  status: z.enum(["running", "completed"]),
  matched: z.int().check(z.meta({ description: "Deliveries found that had failed for good" })),
  replayed: z.int().check(
    z.meta({
      description:
        "Of those, the ones re-fired (not: never built, failed because their enrollment was cancelled, or changed meanwhile)",
    }),
  ),
  startedAt: time("When the replay was asked for"),
  completedAt: z.nullable(time("When the last step ended")),
});

/** The description of every route of `apiRoutes`, keyed by method and path. */
export const routeDocs: { readonly [K in RouteKey]: RouteDoc } = {
  "GET /health": {
    operationId: "health",
    summary: "Whether the API answers",
    tag: "system",
    success: { status: 200, description: "It does", schema: z.object({ ok: z.literal(true) }) },
  },
  "POST /apps": {
    operationId: "registerApp",
    summary: "Register a signing app",
    description:
      "A client secret is generated when none is given. The secret is shown only in this response.",
    tag: "apps",
    success: { status: 201, description: "The app and its secret", schema: registeredAppSchema },
  },
  "GET /apps/{appId}": {
    operationId: "readApp",
    summary: "Read an app (never its secret)",
    tag: "apps",
    success: { status: 200, description: "The app", schema: appSchema },
  },
  "PUT /objects/{objectType}/{objectId}": {
    operationId: "putRecord",
    summary: "Create or update a record",
    description:
      "Every changed value is kept as a new version. Returns the record exactly as a webhook for it sends it.",
    tag: "records",
    success: { status: 200, description: "Updated (201 when created): the record as sent" },
  },
  "GET /objects/{objectType}/{objectId}": {
    operationId: "readRecord",
    summary: "Read a record, in exactly the JSON a webhook for it sends",
    tag: "records",
    success: { status: 200, description: "The record as sent" },
  },
  "GET /workflows": {
    operationId: "listWorkflows",
    summary: "List the workflows, oldest first, a page at a time",
    tag: "workflows",
    success: {
      status: 200,
      description: "`{workflows: [...], nextToken}`, secrets shown as ***",
      schema: z.object({ workflows: z.array(z.unknown()), nextToken: nextTokenSchema }),
    },
    query: workflowListParameters,
  },
  "POST /workflows": {
    operationId: "createWorkflow",
    summary: "Create a workflow",
    tag: "workflows",
    success: { status: 201, description: "The workflow, with an id on it and on every action" },
  },
  "GET /workflows/{workflowId}": {
    operationId: "readWorkflow",
    summary: "Read a workflow",
    tag: "workflows",
    success: { status: 200, description: "The workflow, secrets shown as ***" },
  },
  "PUT /workflows/{workflowId}": {
    operationId: "replaceWorkflow",
    summary: "Replace a workflow",
    description:
      "An action keeps its id when an action of the same type stood at the same position; a secret sent back as *** keeps the stored one. A new Standard Webhooks secret rotates: the one it replaces signs too for 24 hours.",
    tag: "workflows",
    success: { status: 200, description: "The workflow, secrets shown as ***" },
  },
  "DELETE /workflows/{workflowId}": {
    operationId: "deleteWorkflow",
    summary: "Delete a workflow (running enrollments finish their copy)",
    tag: "workflows",
    success: { status: 204, description: "Deleted" },
  },
  "POST /workflows/{workflowId}/enrollments": {
    operationId: "enroll",
    summary: "Enroll a record into a workflow",
    tag: "enrollments",
    success: {
      status: 202,
      description: "Enrolled; it runs asynchronously",
      schema: enrolledSchema,
    },
    refusals: [409],
  },
  "POST /workflows/{workflowId}/actions/{actionId}/test": {
    operationId: "testWebhookAction",
    summary: "Send one request of a webhook action now, without retries",
    tag: "workflows",
    success: {
      status: 200,
      description:
        "`{request, response, error}`: what was sent (API keys as ***) and what came back",
    },
  },
  "GET /enrollments/{enrollmentId}": {
    operationId: "readEnrollment",
    summary: "Read an enrollment with each action's outcome and every delivery attempt",
    tag: "enrollments",
    success: { status: 200, description: "The enrollment" },
  },
  "GET /deliveries/{deliveryId}": {
    operationId: "readDelivery",
    summary: "Read a delivery with its attempts",
    tag: "deliveries",
    success: { status: 200, description: "The delivery" },
  },
  "POST /deliveries/{deliveryId}/retry": {
    operationId: "retryDelivery",
    summary: "Re-fire a failed (or retrying) delivery now",
    tag: "deliveries",
    success: { status: 202, description: "The delivery, its next attempt due now" },
    refusals: [409],
  },
  "POST /apps/{appId}/rotate-secret": {
    operationId: "rotateAppSecret",
    summary: "Give an app a new client secret",
    description:
      "The new secret (the one given, or a generated one) is shown only in this response. For 24 hours the replaced secret signs too, in X-HubSpot-Signature-Previous and X-HubSpot-Signature-v3-Previous.",
    tag: "apps",
    success: {
      status: 200,
      description: "The app and its new secret",
      schema: rotatedSecretSchema,
    },
    refusals: [409],
  },
  "GET /openapi.json": {
    operationId: "openApiDocument",
    summary: "This document",
    tag: "system",
    success: { status: 200, description: "The OpenAPI 3.1 document of the API" },
  },
  "GET /workflows/{workflowId}/enrollments": {
    operationId: "listWorkflowEnrollments",
    summary: "List a workflow's enrollments, newest first, a page at a time",
    description:
      "Enrollments through the API and through the workflow's triggers alike. A status filter applies to what one page read, so a page may hold fewer than limit and still have a nextToken.",
    tag: "enrollments",
    success: { status: 200, description: "One page", schema: enrollmentsPageSchema },
    query: enrollmentListParameters,
  },
  "POST /forms/{formId}/submissions": {
    operationId: "submitForm",
    summary: "Record a form submission of a contact",
    description:
      "The contact takes the submitted values (source FORM) and is created if it does not exist; the submission joins its form-submissions.",
    tag: "forms and lists",
    success: {
      status: 201,
      description: "Recorded",
      schema: z.object({ conversionId: z.string() }),
    },
  },
  "POST /lists": {
    operationId: "createList",
    summary: "Create a list of contacts",
    tag: "forms and lists",
    success: {
      status: 201,
      description: "The list, empty",
      schema: z.object({ listId: z.string(), name: z.string() }),
    },
  },
  "GET /lists/{listId}": {
    operationId: "readList",
    summary: "Read a list and its size",
    tag: "forms and lists",
    success: { status: 200, description: "The list", schema: listSchema },
  },
  "PUT /lists/{listId}/members/{objectId}": {
    operationId: "addListMember",
    summary: "Add a contact to a list (adding a member again changes nothing)",
    tag: "forms and lists",
    success: { status: 200, description: "The list", schema: listSchema },
    refusals: [409],
  },
  "DELETE /lists/{listId}/members/{objectId}": {
    operationId: "removeListMember",
    summary: "Remove a contact from a list",
    tag: "forms and lists",
    success: { status: 204, description: "Removed, or was no member" },
  },
  "DELETE /enrollments/{enrollmentId}": {
    operationId: "cancelEnrollment",
    summary: "Cancel an active or waiting enrollment",
    description:
      "The enrollment becomes cancelled and moves no more. The delivery of the webhook action it waits at, if pending or retrying, fails with reason `enrollment cancelled`, and its scheduled retry is deleted; a webhook action that has no delivery yet gets one, failed with that reason and never sent. The record can be enrolled in the workflow again. 409 for an enrollment that has ended (completed, failed or cancelled).",
    tag: "enrollments",
    success: { status: 200, description: "The enrollment, cancelled" },
    refusals: [409],
  },
  "GET /deliveries": {
    operationId: "listDeliveries",
    summary: "List a workflow's deliveries, newest first, a page at a time",
    description: `Each delivery as GET /deliveries/{deliveryId} shows it, without its attempts. With a status, a page may hold fewer than limit deliveries (a request reads at most ${LIST_READ_BUDGET} of the workflow's deliveries) and still have a nextToken: follow it until it is null.`,
    tag: "deliveries",
    success: {
      status: 200,
      description: "`{deliveries: [...], nextToken}`",
      schema: z.object({ deliveries: z.array(z.unknown()), nextToken: nextTokenSchema }),
    },
    query: deliveryListParameters,
  },
  "POST /deliveries/replay": {
    operationId: "replayDeliveries",
    summary: "Re-fire a workflow's deliveries that failed for good in a window",
    description: `Among the workflow's deliveries created from since to until (now when absent), re-fires every one that failed for good, once each: a new attempt, then the retry policy from the start. Runs in the background at ${DEFAULT_REPLAY_PACE.perSecond} deliveries a second; GET /replays/{replayId} shows its progress. Deliveries never built, or failed because their enrollment was cancelled, are left as they are.`,
    tag: "deliveries",
    success: { status: 202, description: "The replay has started", schema: replayStartedSchema },
  },
  "GET /replays/{replayId}": {
    operationId: "readReplay",
    summary: "Read a replay's progress",
    tag: "deliveries",
    success: { status: 200, description: "The replay", schema: replaySchema },
  },
};
