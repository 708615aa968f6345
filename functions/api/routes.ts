import type { APIGatewayProxyEvent } from "aws-lambda";
import type { AppsDeps } from "#app/apps";
import { readApp, registerApp, rotateAppSecret } from "#app/apps";
import { type DeliveriesDeps, listDeliveries, readDelivery, retryDelivery } from "#app/deliveries";
import { type CancellationDeps, cancelEnrollment } from "#app/enrollment-cancellation";
import { type EnrollDeps, type EnrollmentViewDeps, enroll, readEnrollment } from "#app/enrollments";
import {
  addListMember,
  createList,
  type FormsAndListsDeps,
  readList,
  removeListMember,
  submitForm,
} from "#app/forms-and-lists";
import { putRecord, type RecordsDeps, readRecord } from "#app/records";
import { type ReplaysDeps, readReplay, startReplay } from "#app/replays";
import { type TestActionDeps, testWebhookAction } from "#app/test-action";
import { listWorkflowEnrollments, type WorkflowEnrollmentsDeps } from "#app/workflow-enrollments";
import {
  createWorkflow,
  deleteWorkflow,
  listWorkflows,
  readWorkflow,
  replaceWorkflow,
  type WorkflowsDeps,
} from "#app/workflows";
import {
  parseDeliveryListQuery,
  parseEnrollmentListQuery,
  parseWorkflowListQuery,
} from "#domain/list-queries";
import { parseId, parseObjectType, parseRequestBody } from "#domain/request-schemas";
import type { RouteKey } from "#shared/contract";
import { metricNames, metrics } from "#shared/observability";
import { header, jsonBody, type Reply } from "./http.ts";
import { openApiDocument } from "./openapi.ts";

export type ApiDeps = AppsDeps &
  RecordsDeps &
  WorkflowsDeps &
  EnrollDeps &
  EnrollmentViewDeps &
  DeliveriesDeps &
  TestActionDeps &
  FormsAndListsDeps &
  WorkflowEnrollmentsDeps &
  CancellationDeps &
  ReplaysDeps;

type Operation = (deps: ApiDeps, event: APIGatewayProxyEvent) => Promise<Reply>;

const param = (event: APIGatewayProxyEvent, name: string) =>
  parseId(name, event.pathParameters?.[name]);
const body = <N extends Parameters<typeof parseRequestBody>[0]>(
  name: N,
  event: APIGatewayProxyEvent,
) => parseRequestBody(name, jsonBody(event));
const ok = (payload: unknown, statusCode = 200): Reply => ({ statusCode, body: payload });
/** Every value of each query parameter, so that a list can refuse one given twice. */
const query = (event: APIGatewayProxyEvent) =>
  event.multiValueQueryStringParameters ?? event.queryStringParameters;

/**
 * The operation of every route of `apiRoutes`, keyed by method and API Gateway resource path; a
 * route without an operation, or an operation without a route, does not compile.
 */
export const operations: { readonly [K in RouteKey]: Operation } = {
  "GET /health": async () => ok({ ok: true }),
  "POST /apps": async (deps, event) => ok(await registerApp(deps, body("createApp", event)), 201),
  "GET /apps/{appId}": async (deps, event) => ok(await readApp(deps, param(event, "appId"))),
  "PUT /objects/{objectType}/{objectId}": async (deps, event) => {
    const objectType = parseObjectType(event.pathParameters?.objectType);
    const objectId = param(event, "objectId");
    const { created, payload } = await putRecord(
      deps,
      objectType,
      objectId,
      body("putObject", event),
    );
    return ok(payload, created ? 201 : 200);
  },
  "GET /objects/{objectType}/{objectId}": async (deps, event) =>
    ok(
      await readRecord(
        deps,
        parseObjectType(event.pathParameters?.objectType),
        param(event, "objectId"),
      ),
    ),
  "GET /workflows": async (deps, event) =>
    ok(await listWorkflows(deps, parseWorkflowListQuery(query(event)))),
  "POST /workflows": async (deps, event) =>
    ok(await createWorkflow(deps, body("workflow", event)), 201),
  "GET /workflows/{workflowId}": async (deps, event) =>
    ok(await readWorkflow(deps, param(event, "workflowId"))),
  "PUT /workflows/{workflowId}": async (deps, event) =>
    ok(await replaceWorkflow(deps, param(event, "workflowId"), body("workflow", event))),
  "DELETE /workflows/{workflowId}": async (deps, event) => {
    await deleteWorkflow(deps, param(event, "workflowId"));
    return { statusCode: 204 };
  },
  "POST /workflows/{workflowId}/enrollments": async (deps, event) => {
    const enrolled = await enroll(deps, param(event, "workflowId"), body("enroll", event));
    metrics.addMetric(metricNames.enrollmentStarted, "Count", 1);
    return ok(enrolled, 202);
  },
  "POST /workflows/{workflowId}/actions/{actionId}/test": async (deps, event) =>
    ok(
      await testWebhookAction(
        deps,
        param(event, "workflowId"),
        param(event, "actionId"),
        body("testAction", event),
      ),
    ),
  "GET /enrollments/{enrollmentId}": async (deps, event) =>
    ok(await readEnrollment(deps, param(event, "enrollmentId"))),
  "GET /deliveries/{deliveryId}": async (deps, event) =>
    ok(await readDelivery(deps, param(event, "deliveryId"))),
  "POST /deliveries/{deliveryId}/retry": async (deps, event) =>
    ok(await retryDelivery(deps, param(event, "deliveryId")), 202),
  "POST /apps/{appId}/rotate-secret": async (deps, event) =>
    ok(await rotateAppSecret(deps, param(event, "appId"), body("rotateSecret", event))),
  "GET /openapi.json": async (_deps, event) => ok(openApiDocument(serverUrlOf(event))),
  "GET /workflows/{workflowId}/enrollments": async (deps, event) =>
    ok(
      await listWorkflowEnrollments(
        deps,
        param(event, "workflowId"),
        parseEnrollmentListQuery(query(event)),
      ),
    ),
  "POST /forms/{formId}/submissions": async (deps, event) =>
    ok(await submitForm(deps, param(event, "formId"), body("formSubmission", event)), 201),
  "POST /lists": async (deps, event) => ok(await createList(deps, body("createList", event)), 201),
  "GET /lists/{listId}": async (deps, event) => ok(await readList(deps, param(event, "listId"))),
  "PUT /lists/{listId}/members/{objectId}": async (deps, event) =>
    ok(await addListMember(deps, param(event, "listId"), param(event, "objectId"))),
  "DELETE /lists/{listId}/members/{objectId}": async (deps, event) => {
    await removeListMember(deps, param(event, "listId"), param(event, "objectId"));
    return { statusCode: 204 };
  },
  "DELETE /enrollments/{enrollmentId}": async (deps, event) =>
    ok(await cancelEnrollment(deps, param(event, "enrollmentId"))),
  "GET /deliveries": async (deps, event) =>
    ok(await listDeliveries(deps, parseDeliveryListQuery(query(event)))),
  "POST /deliveries/replay": async (deps, event) =>
    ok(await startReplay(deps, body("replayDeliveries", event)), 202),
  "GET /replays/{replayId}": async (deps, event) =>
    ok(await readReplay(deps, param(event, "replayId"))),
};

/**
 * The URL the client called the API at, without the route: scheme, host and, on API Gateway, the
 * stage (`requestContext.path` is the path as called, `path` the route's part of it).
 */
function serverUrlOf(event: APIGatewayProxyEvent): string | undefined {
  const host = header(event, "host");
  if (host === undefined) return undefined;
  const scheme = header(event, "x-forwarded-proto") ?? "http";
  const called = event.requestContext?.path ?? event.path;
  const prefix = called.endsWith(event.path)
    ? called.slice(0, called.length - event.path.length)
    : "";
  return `${scheme}://${host}${prefix}`;
}
