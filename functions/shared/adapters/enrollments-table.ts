import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally, isConditionFailure } from "#adapters/dynamo-errors";
import {
  type ActionStatus,
  type Enrollment,
  type EnrollmentStatus,
  statusAfter,
} from "#domain/enrollment";
import { ConflictError } from "#domain/errors";

const SK = "ENROLLMENT";
const LOCK_SK = "ACTIVE";

/**
 * Enrollments, plus one lock item per (workflow, record) while an enrollment is unfinished, so a
 * record is active in a workflow at most once. Every move of an enrollment is a conditional
 * write on its current action: a step processed twice moves it once.
 */
export class EnrollmentsTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Stores a new enrollment; ConflictError when the record is already active in the workflow. */
  async create(enrollment: Enrollment): Promise<void> {
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: {
                  pk: lockKey(enrollment),
                  sk: LOCK_SK,
                  enrollmentId: enrollment.enrollmentId,
                },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: { pk: enrollment.enrollmentId, sk: SK, ...enrollment },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) {
        throw new ConflictError(
          `${enrollment.objectType}/${enrollment.objectId} is already active in workflow ${enrollment.workflowId}`,
        );
      }
      throw error;
    }
  }

  /** Removes an enrollment that never started, with its lock. */
  async discard(enrollment: Enrollment): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: this.tableName, Key: { pk: enrollment.enrollmentId, sk: SK } } },
          { Delete: { TableName: this.tableName, Key: { pk: lockKey(enrollment), sk: LOCK_SK } } },
        ],
      }),
    );
  }

  async get(enrollmentId: string): Promise<Enrollment | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: enrollmentId, sk: SK },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...enrollment } = Item;
    return enrollment as Enrollment;
  }

  /**
   * Marks the pending action at `index` as running and the enrollment as waiting on it.
   * StaleStateError when another consumer started it first.
   */
  async startAction(
    enrollment: Enrollment,
    index: number,
    change: { now: number; deliveryId?: string },
  ): Promise<void> {
    const action = `actions[${index}]`;
    await conditionally(`action ${index} of ${enrollment.enrollmentId} already started`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: enrollment.enrollmentId, sk: SK },
          UpdateExpression: `SET ${action}.#status = :running, ${action}.startedAt = :now, #status = :waiting, updatedAt = :now${setDeliveryId(action, change.deliveryId)}`,
          ConditionExpression: `currentIndex = :index AND ${action}.#status = :pending`,
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":running": "running",
            ":pending": "pending",
            ":waiting": "waiting",
            ":now": change.now,
            ":index": index,
            ...(change.deliveryId ? { ":deliveryId": change.deliveryId } : {}),
          },
        }),
      ),
    );
  }

  /**
   * Finishes the action at `index` and moves to the next one; on the last action the enrollment
   * completes and releases its lock. StaleStateError when the enrollment already moved on.
   */
  async finishAction(
    enrollment: Enrollment,
    index: number,
    change: {
      now: number;
      status: Extract<ActionStatus, "succeeded" | "failed">;
      deliveryId?: string;
    },
  ): Promise<EnrollmentStatus> {
    const next = statusAfter(enrollment, index);
    const action = `actions[${index}]`;
    const update = {
      TableName: this.tableName,
      Key: { pk: enrollment.enrollmentId, sk: SK },
      UpdateExpression: `SET ${action}.#status = :done, ${action}.finishedAt = :now, currentIndex = :next, #status = :enrollmentStatus, updatedAt = :now${setDeliveryId(action, change.deliveryId)}`,
      ConditionExpression: `currentIndex = :index AND ${action}.#status IN (:pending, :running)`,
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":done": change.status,
        ":now": change.now,
        ":next": index + 1,
        ":index": index,
        ":enrollmentStatus": next,
        ":pending": "pending",
        ":running": "running",
        ...(change.deliveryId ? { ":deliveryId": change.deliveryId } : {}),
      },
    };
    await conditionally<unknown>(
      `action ${index} of ${enrollment.enrollmentId} already finished`,
      () =>
        next === "completed"
          ? this.documents.send(
              new TransactWriteCommand({
                TransactItems: [
                  { Update: update },
                  {
                    Delete: {
                      TableName: this.tableName,
                      Key: { pk: lockKey(enrollment), sk: LOCK_SK },
                    },
                  },
                ],
              }),
            )
          : this.documents.send(new UpdateCommand(update)),
    );
    return next;
  }
}

/** The clause that records an action's delivery id, when it has one. */
function setDeliveryId(action: string, deliveryId: string | undefined): string {
  return deliveryId ? `, ${action}.deliveryId = :deliveryId` : "";
}

function lockKey(enrollment: Pick<Enrollment, "workflowId" | "objectType" | "objectId">): string {
  return `active#${enrollment.workflowId}#${enrollment.objectType}#${enrollment.objectId}`;
}
