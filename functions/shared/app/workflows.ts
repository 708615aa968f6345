import type { AppsTable } from "#adapters/apps-table";
import type { ListsTable } from "#adapters/lists-table";
import type { WorkflowsTable } from "#adapters/workflows-table";
import {
  NotFoundError,
  PayloadTooLargeError,
  StaleStateError,
  ValidationError,
} from "#domain/errors";
import type { WorkflowListQuery } from "#domain/list-queries";
import { classifyAddress, isIpLiteral, parseTargetUrl, unbracket } from "#domain/target-url";
import {
  assignActionIds,
  MAX_WORKFLOW_BYTES,
  oversizeWorkflowBytes,
  PREVIOUS_SECRET_LIFETIME_MS,
  REDACTED_SECRET,
  redactWorkflow,
  type StoredStandardWebhooksAuthentication,
  type Workflow,
  type WorkflowAction,
  type WorkflowDefinition,
} from "#domain/workflow";

export interface WorkflowsDeps {
  readonly workflows: WorkflowsTable;
  readonly apps: AppsTable;
  readonly lists: ListsTable;
  readonly now: () => number;
  readonly newId: () => string;
  readonly allowPrivateTargets: boolean;
}

/** Creates a workflow; every action gets an id. */
export async function createWorkflow(deps: WorkflowsDeps, definition: WorkflowDefinition) {
  await checkActions(deps, definition.actions);
  await checkTriggers(deps, definition);
  const now = new Date(deps.now()).toISOString();
  const workflow: Workflow = {
    id: deps.newId(),
    name: definition.name,
    objectType: definition.objectType,
    actions: refuseHiddenSecrets(assignActionIds(definition, deps.newId)),
    ...(definition.enrollmentTriggers ? { enrollmentTriggers: definition.enrollmentTriggers } : {}),
    createdAt: now,
    updatedAt: now,
  };
  refuseOversize(workflow);
  await deps.workflows.create(workflow);
  return redactWorkflow(workflow);
}

/**
 * Replaces a workflow. An action keeps its id when an action of the same type stood at the same
 * position, so links to an action (such as its test URL) survive edits. Running enrollments
 * finish the version they started with.
 */
export async function replaceWorkflow(
  deps: WorkflowsDeps,
  id: string,
  definition: WorkflowDefinition,
) {
  const current = await deps.workflows.get(id);
  if (!current) throw new NotFoundError(`workflow ${id} not found`);
  await checkActions(deps, definition.actions);
  await checkTriggers(deps, definition);
  const fresh = assignActionIds(definition, deps.newId);
  const now = deps.now();
  const actions = refuseHiddenSecrets(
    fresh.map((action, index) => {
      const previous = current.actions[index];
      if (previous?.type !== action.type) return action;
      const kept = carryStandardWebhooksSecret(
        keepHiddenApiKey(action, previous, index),
        previous,
        now,
      );
      return { ...kept, id: previous.id };
    }),
  );
  const workflow: Workflow = {
    ...current,
    name: definition.name,
    objectType: definition.objectType,
    actions,
    enrollmentTriggers: definition.enrollmentTriggers,
    updatedAt: new Date(now).toISOString(),
  };
  refuseOversize(workflow);
  try {
    await deps.workflows.replace(workflow);
  } catch (error) {
    if (error instanceof StaleStateError) throw new NotFoundError(`workflow ${id} not found`);
    throw error;
  }
  return redactWorkflow(workflow);
}

export async function readWorkflow(deps: Pick<WorkflowsDeps, "workflows">, id: string) {
  const workflow = await deps.workflows.get(id);
  if (!workflow) throw new NotFoundError(`workflow ${id} not found`);
  return redactWorkflow(workflow);
}

/** A page of workflows, oldest first; `nextToken` is null on the last page. */
export async function listWorkflows(
  deps: Pick<WorkflowsDeps, "workflows">,
  query: WorkflowListQuery,
) {
  const page = await deps.workflows.page(query);
  return { workflows: page.workflows.map(redactWorkflow), nextToken: page.nextToken };
}

/** Deletes a workflow; enrollments already running finish their copy of it. */
export async function deleteWorkflow(deps: Pick<WorkflowsDeps, "workflows">, id: string) {
  try {
    await deps.workflows.delete(id);
  } catch (error) {
    if (error instanceof StaleStateError) throw new NotFoundError(`workflow ${id} not found`);
    throw error;
  }
}

/**
 * Responses show API keys as `***`; a workflow read, edited and put back carries that mask, which
 * means "keep the key it had", not a new key. The key was given for one host, though: a URL that
 * now points elsewhere needs the key again, or the stored key would go to a host nobody gave it to.
 */
function keepHiddenApiKey<A extends WorkflowAction>(
  action: A,
  previous: WorkflowAction,
  index: number,
): A {
  if (action.type !== "webhook" || previous.type !== "webhook") return action;
  const auth = action.authentication;
  const before = previous.authentication;
  if (auth?.type !== "apiKey" || before?.type !== "apiKey" || auth.value !== REDACTED_SECRET)
    return action;
  if (new URL(action.url).host !== new URL(previous.url).host) {
    throw new ValidationError(
      `actions[${index}].authentication.value`,
      `must be given again when the URL's host changes; ${REDACTED_SECRET} keeps the stored key only for the host it was given for`,
    );
  }
  return { ...action, authentication: { ...auth, value: before.value } };
}

/**
 * A Standard Webhooks secret sent back as `***` keeps the action's secret. A new secret replaces
 * it, and the secret it replaces keeps signing beside the new one for a day (a rotation).
 */
function carryStandardWebhooksSecret<A extends WorkflowAction>(
  action: A,
  previous: WorkflowAction,
  now: number,
): A {
  if (action.type !== "webhook" || previous.type !== "webhook") return action;
  const auth = action.authentication;
  const before = previous.authentication;
  if (auth?.type !== "standardWebhooks" || before?.type !== "standardWebhooks") return action;
  if (auth.secret === REDACTED_SECRET || auth.secret === before.secret) {
    return { ...action, authentication: before };
  }
  const rotated: StoredStandardWebhooksAuthentication = {
    ...auth,
    previousSecret: { secret: before.secret, expiresAt: now + PREVIOUS_SECRET_LIFETIME_MS },
  };
  return { ...action, authentication: rotated };
}

/** A `***` secret with no secret behind it to keep is a mistake, not a secret. */
function refuseHiddenSecrets<A extends WorkflowAction>(actions: A[]): A[] {
  for (const [index, action] of actions.entries()) {
    if (
      action.type === "webhook" &&
      action.authentication?.type === "standardWebhooks" &&
      action.authentication.secret === REDACTED_SECRET
    ) {
      throw new ValidationError(
        `actions[${index}].authentication.secret`,
        "is hidden (***); give the secret (*** keeps a secret only when the same action already has one)",
      );
    }
  }
  return actions;
}

/** A workflow too large to store, or to copy into its enrollments, is refused (413). */
function refuseOversize(workflow: Workflow): void {
  const bytes = oversizeWorkflowBytes(workflow);
  if (bytes !== undefined) {
    throw new PayloadTooLargeError(
      `actions: the workflow would take ${bytes} bytes stored; at most ${MAX_WORKFLOW_BYTES} are kept`,
    );
  }
}

/** Rules that need more than the schema: signing apps exist, literal addresses are public. */
async function checkActions(deps: WorkflowsDeps, actions: readonly WorkflowAction[]) {
  for (const [index, action] of actions.entries()) {
    if (action.type !== "webhook") continue;
    const field = `actions[${index}].url`;
    const url = parseTargetUrl(action.url, field);
    if (!deps.allowPrivateTargets && isIpLiteral(url.hostname)) {
      const verdict = classifyAddress(unbracket(url.hostname));
      if (!verdict.public) {
        throw new ValidationError(field, `must not target a non-public address (${verdict.range})`);
      }
    }
    if (action.authentication?.type === "signature") {
      const app = await deps.apps.get(action.authentication.appId);
      if (!app) {
        throw new ValidationError(
          `actions[${index}].authentication.appId`,
          `no app ${action.authentication.appId}; register it with POST /apps`,
        );
      }
    }
  }
}

/** Rules of the triggers that need the store: the lists they name exist. */
async function checkTriggers(deps: WorkflowsDeps, definition: WorkflowDefinition) {
  for (const [groupIndex, group] of (definition.enrollmentTriggers?.filterGroups ?? []).entries()) {
    for (const [filterIndex, filter] of group.filters.entries()) {
      if (filter.type !== "listMembership") continue;
      if (!(await deps.lists.get(filter.listId))) {
        throw new ValidationError(
          `enrollmentTriggers.filterGroups[${groupIndex}].filters[${filterIndex}].listId`,
          `no list ${filter.listId}; create it with POST /lists`,
        );
      }
    }
  }
}
