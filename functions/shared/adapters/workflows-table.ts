import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally } from "#adapters/dynamo-errors";
import type { Workflow } from "#domain/workflow";

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
          Item: { pk: workflow.id, sk: SK, ...workflow },
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
          Item: { pk: workflow.id, sk: SK, ...workflow },
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

function toWorkflow(item: Record<string, unknown>): Workflow {
  const { pk: _pk, sk: _sk, ...workflow } = item;
  return workflow as unknown as Workflow;
}
