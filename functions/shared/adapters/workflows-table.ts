import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally } from "#adapters/dynamo-errors";
import type { EnrollmentTriggers } from "#domain/enrollment-triggers";
import type { ObjectType, Workflow } from "#domain/workflow";
import { WORKFLOWS_BY_TRIGGER_TYPE } from "#shared/contract";

/** What the trigger index keeps of a workflow: enough to judge a change against it. */
export type TriggeredWorkflow = Pick<Workflow, "id" | "objectType" | "createdAt" | "updatedAt"> & {
  readonly enrollmentTriggers: EnrollmentTriggers;
};

const SK = "WORKFLOW";

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

  /** Every workflow, oldest first. */
  async list(): Promise<Workflow[]> {
    const workflows: Workflow[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new ScanCommand({ TableName: this.tableName, ExclusiveStartKey: startKey }),
      );
      for (const item of page.Items ?? []) workflows.push(toWorkflow(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return workflows.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
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
