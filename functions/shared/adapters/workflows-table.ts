import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally } from "#adapters/dynamo-errors";
import {
  countWithinPageBudget,
  decodePageToken,
  encodePageToken,
  hasExactly,
} from "#adapters/page-tokens";
import type { EnrollmentTriggers } from "#domain/enrollment-triggers";
import type { WorkflowListQuery } from "#domain/list-queries";
import type { ObjectType, Workflow } from "#domain/workflow";
import { indexes, WORKFLOWS_BY_TRIGGER_TYPE } from "#shared/contract";

/** What the trigger index keeps of a workflow: enough to judge a change against it. */
export type TriggeredWorkflow = Pick<Workflow, "id" | "objectType" | "createdAt" | "updatedAt"> & {
  readonly enrollmentTriggers: EnrollmentTriggers;
};

const SK = "WORKFLOW";
const BY_CREATION = indexes.workflowsByCreation;
/** An ISO-8601 UTC time as `Date.toISOString` writes it, which is how workflows keep theirs. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Longer than any id the server assigns; a page token naming a longer one is forged. */
const MAX_ID_LENGTH = 100;

/** A page of workflows, oldest first. */
export interface WorkflowPage {
  readonly workflows: Workflow[];
  readonly nextToken: string | null;
}

/** Workflow definitions, keyed by id. */
export class WorkflowsTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(workflow: Workflow): Promise<void> {
    await conditionally(`workflow ${workflow.id} exists`, () =>
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: toItem(workflow),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      ),
    );
  }

  /** Replaces a workflow; StaleStateError when it no longer exists. */
  async replace(workflow: Workflow): Promise<void> {
    await conditionally(`workflow ${workflow.id} does not exist`, () =>
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: toItem(workflow),
          ConditionExpression: "attribute_exists(pk)",
        }),
      ),
    );
  }

  async get(id: string): Promise<Workflow | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: id, sk: SK }, ConsistentRead: true }),
    );
    return Item ? toWorkflow(Item) : undefined;
  }

  /**
   * One page of workflows, oldest first, from the index of creation times: one query, so a page
   * holds at most `limit` workflows and at most the 1 MB DynamoDB reads at once (fewer, with a
   * `nextToken`, when workflows are large).
   */
  async page(query: WorkflowListQuery): Promise<WorkflowPage> {
    const page = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: BY_CREATION.name,
        KeyConditionExpression: "#partition = :workflow",
        ExpressionAttributeNames: { "#partition": BY_CREATION.partitionKey.name },
        ExpressionAttributeValues: { ":workflow": SK },
        ScanIndexForward: true,
        Limit: query.limit,
        ExclusiveStartKey:
          query.nextToken === undefined ? undefined : decodePageToken(query.nextToken, pageKey),
      }),
    );
    const workflows = (page.Items ?? []).map(toWorkflow);
    const fit = countWithinPageBudget(workflows);
    const last = workflows[fit - 1];
    if (fit < workflows.length && last !== undefined) {
      // The page ends after the last workflow that fits; the next one starts there.
      return { workflows: workflows.slice(0, fit), nextToken: encodePageToken(indexKeyOf(last)) };
    }
    return { workflows, nextToken: encodePageToken(page.LastEvaluatedKey) };
  }

  /** Every workflow with enrollment triggers over `objectType`, from the trigger index. */
  async withTriggers(objectType: ObjectType): Promise<TriggeredWorkflow[]> {
    const found: TriggeredWorkflow[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: WORKFLOWS_BY_TRIGGER_TYPE.name,
          KeyConditionExpression: "triggerObjectType = :objectType",
          ExpressionAttributeValues: { ":objectType": objectType },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        found.push({
          id: item.id,
          objectType: item.objectType,
          createdAt: item.createdAt,
          updatedAt: item.updatedAt,
          enrollmentTriggers: item.enrollmentTriggers,
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return found;
  }

  /** Deletes a workflow; StaleStateError when it does not exist. */
  async delete(id: string): Promise<void> {
    await conditionally(`workflow ${id} does not exist`, () =>
      this.documents.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: id, sk: SK },
          ConditionExpression: "attribute_exists(pk)",
        }),
      ),
    );
  }
}

/** The workflow's item; one with triggers also enters the trigger index under its object type. */
function toItem(workflow: Workflow): Record<string, unknown> {
  return {
    pk: workflow.id,
    sk: SK,
    ...workflow,
    ...(workflow.enrollmentTriggers ? { triggerObjectType: workflow.objectType } : {}),
  };
}

function toWorkflow(item: Record<string, unknown>): Workflow {
  const { pk: _pk, sk: _sk, triggerObjectType: _triggerObjectType, ...workflow } = item;
  return workflow as unknown as Workflow;
}

/** Where the index of creation times stands at `workflow`, as DynamoDB would have stopped there. */
function indexKeyOf(workflow: Workflow): Record<string, unknown> {
  return { pk: workflow.id, sk: SK, [BY_CREATION.sortKey.name]: workflow.createdAt };
}

/** The key, if it is one the index of creation times could stop at: anything else is forged. */
function pageKey(key: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const fits =
    hasExactly(key, ["pk", "sk", BY_CREATION.sortKey.name]) &&
    key.sk === SK &&
    typeof key.pk === "string" &&
    key.pk.length > 0 &&
    key.pk.length <= MAX_ID_LENGTH &&
    typeof key.createdAt === "string" &&
    ISO_TIME.test(key.createdAt);
  return fits ? { ...key } : undefined;
}
