import { randomUUID } from "node:crypto";
import type { AppsTable } from "#adapters/apps-table";
import type { RecordsTable } from "#adapters/records-table";
import { DEFAULT_CONNECT_TIMEOUT_MS, type WebhookClient } from "#adapters/webhook-client";
import type { WorkflowsTable } from "#adapters/workflows-table";
import { NotFoundError, ValidationError } from "#domain/errors";
import { webhookBody } from "#domain/payload";
import type { RequestBody } from "#domain/request-schemas";
import {
  buildAttemptRequest,
  redactRequest,
  redactSecrets,
  requestSecrets,
} from "#domain/webhook-request";
import { API_TIME_LIMIT_SECONDS } from "#shared/contract";

/**
 * Time kept aside from the API's limit for reading the workflow, record and app before the request
 * and for the client's own backstop second after it, so the answer beats API Gateway's timeout.
 */
const TEST_ACTION_MARGIN_MS = 5_000;

/**
 * How long the test action waits for a response: what the API's time limit leaves after
 * connecting and the margin. A slower receiver gives a response timeout in `error`,
 * rather than the API's own timeout, which would also count as a function error.
 */
export const TEST_ACTION_RESPONSE_TIMEOUT_MS =
  API_TIME_LIMIT_SECONDS * 1000 - DEFAULT_CONNECT_TIMEOUT_MS - TEST_ACTION_MARGIN_MS;

export interface TestActionDeps {
  readonly workflows: WorkflowsTable;
  readonly records: RecordsTable;
  readonly apps: AppsTable;
  /** Waits at most `TEST_ACTION_RESPONSE_TIMEOUT_MS` for a response. */
  readonly webhookClient: WebhookClient;
  readonly now: () => number;
  readonly portalId: number;
}

/** Sends one request of a webhook action now, without retries, and shows what happened. */
export async function testWebhookAction(
  deps: TestActionDeps,
  workflowId: string,
  actionId: string,
  input: RequestBody<"testAction">,
) {
  const workflow = await deps.workflows.get(workflowId);
  if (!workflow) throw new NotFoundError(`workflow ${workflowId} not found`);
  const action = workflow.actions.find((candidate) => candidate.id === actionId);
  if (!action) throw new NotFoundError(`action ${actionId} not found in workflow ${workflowId}`);
  if (action.type !== "webhook") {
    throw new ValidationError(
      "actionId",
      `action ${actionId} is a ${action.type} action, not a webhook`,
    );
  }
  const record = await deps.records.get({
    objectType: workflow.objectType,
    objectId: input.objectId,
  });
  if (!record) throw new NotFoundError(`${workflow.objectType}/${input.objectId} not found`);
  const auth = action.authentication;
  const app = auth?.type === "signature" ? await deps.apps.get(auth.appId) : undefined;
  if (auth?.type === "signature" && !app) throw new NotFoundError(`app ${auth.appId} not found`);
  const request = buildAttemptRequest({
    deliveryId: `test-${randomUUID()}`,
    attempt: 1,
    method: action.method,
    url: action.url,
    authentication: auth,
    body: webhookBody(action.body, action.method, record, { portalId: deps.portalId }),
    clientSecret: app?.clientSecret,
    previousClientSecret: app?.previousClientSecret,
    now: deps.now(),
  });
  const result = await deps.webhookClient.send(request);
  const shown = redactRequest(request, auth);
  // A receiver may echo the request: its secrets must not come back through the response either.
  const secrets = requestSecrets(auth, app);
  return {
    request: {
      method: shown.method,
      url: shown.url,
      headers: shown.headers,
      body: shown.body ?? null,
    },
    response: result.ok
      ? {
          statusCode: result.response.statusCode,
          headers: Object.fromEntries(
            Object.entries(result.response.headers).map(([name, value]) => [
              name,
              redactSecrets(value, secrets),
            ]),
          ),
          body: redactSecrets(result.response.body, secrets, result.response.bodyTruncated),
          durationMs: result.durationMs,
        }
      : null,
    error: result.ok ? null : redactSecrets(result.error, secrets),
  };
}
