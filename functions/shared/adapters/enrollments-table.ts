import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally, isConditionFailure } from "#adapters/dynamo-errors";
import type { TransactItem } from "#adapters/dynamodb-client";
import {
  ended,
  type OpenWorkClauses,
  OpenWorkIndex,
  type OpenWorkMarks,
  openWorkAttributes,
  progressed,
  splitOpenWork,
  stillOpen,
} from "#adapters/open-work-index";
import {
  type ActionStatus,
  type Enrollment,
  type EnrollmentStatus,
  hasEnded,
  statusAfter,
} from "#domain/enrollment";
import { ConflictError } from "#domain/errors";
import { OpenWorkDeadlines } from "#domain/open-work";

const SK = "ENROLLMENT";
const LOCK_SK = "ACTIVE";
/**
 * The condition every move of an enrollment carries besides its action's: only a running
 * enrollment moves, so a step or a delivery that ends after a cancel cannot revive it.
 */
const STILL_RUNNING = "#status IN (:active, :waiting)";
const RUNNING_VALUES = { ":active": "active", ":waiting": "waiting" } as const;

/**
 * Enrollments, plus one lock item per (workflow, record) naming the record's latest enrollment
 * in the workflow, so a record is active in a workflow at most once. An enrollment that ends
 * keeps its lock: the record's next enrollment takes it over once it reads that the holder has
 * ended, which saves a write on every enrollment that ends, and most records are enrolled in a
 * workflow once. Every move of an enrollment is a conditional write on its current action: a
 * step processed twice moves it once.
 * An unfinished enrollment is in the open-work index, due by when its current action should
 * have moved (`deadlines`); the writes that move it keep its place there.
 */
export class EnrollmentsTable {
  private readonly openWork: OpenWorkIndex;

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly deadlines: OpenWorkDeadlines = new OpenWorkDeadlines(),
  ) {
    this.openWork = new OpenWorkIndex(documents, tableName);
  }

  /**
   * Stores a new enrollment; ConflictError when the record is already active in the workflow, or
   * when an enrollment with this id exists already (a caller that derives its ids relies on it).
   * The lock goes first, then the enrollment: two plain writes, at half a transaction's cost. The
   * lock of an enrollment that ended, or that was never stored, is taken over.
   */
  async create(enrollment: Enrollment): Promise<void> {
    await this.takeLock(enrollment);
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: enrollment.enrollmentId,
            sk: SK,
            ...enrollment,
            workflowRecord: workflowRecordKey(enrollment.workflowId, enrollment.objectId),
            // Due when its first step should have run, whether that action is pending or a
            // webhook stored running: until its delivery exists, that step may still create it.
            ...(hasEnded(enrollment)
              ? {}
              : openWorkAttributes(
                  enrollment.enrollmentId,
                  this.deadlines.step(enrollment.updatedAt),
                )),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      // An enrollment under this id exists: a caller that derives ids asked twice. The lock
      // names that enrollment, so it is left as it is, to be taken over once that one ends.
      if (isConditionFailure(error)) {
        throw new ConflictError(`enrollment ${enrollment.enrollmentId} was started already`);
      }
      await this.releaseLock(enrollment).catch(() => {});
      throw error;
    }
  }

  /** Removes an enrollment that never started, with its lock. */
  async discard(enrollment: Enrollment): Promise<void> {
    await this.documents.send(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { pk: enrollment.enrollmentId, sk: SK },
      }),
    );
    await this.releaseLock(enrollment);
  }

  /**
   * Releases the record's place in the workflow, if this enrollment holds it; a lock another
   * enrollment took since is left alone. Safe to repeat.
   */
  async releaseLock(enrollment: Enrollment): Promise<void> {
    try {
      await this.documents.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: lockKey(enrollment), sk: LOCK_SK },
          ConditionExpression: "enrollmentId = :id",
          ExpressionAttributeValues: { ":id": enrollment.enrollmentId },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  private async takeLock(enrollment: Enrollment): Promise<void> {
    const lock = { pk: lockKey(enrollment), sk: LOCK_SK, enrollmentId: enrollment.enrollmentId };
    const conflict = new ConflictError(
      `${enrollment.objectType}/${enrollment.objectId} is already active in workflow ${enrollment.workflowId}`,
    );
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: lock,
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const { Item: held } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: lock.pk, sk: LOCK_SK },
        ConsistentRead: true,
      }),
    );
    const holderId = held?.enrollmentId;
    const holder = typeof holderId === "string" ? await this.get(holderId) : undefined;
    if (holder !== undefined && !hasEnded(holder)) throw conflict;
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: lock,
          ConditionExpression: held ? "enrollmentId = :holder" : "attribute_not_exists(pk)",
          ...(held ? { ExpressionAttributeValues: { ":holder": holderId } } : {}),
        }),
      );
    } catch (error) {
      // Another enrollment took the lock between our read and our write.
      if (isConditionFailure(error)) throw conflict;
      throw error;
    }
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
    return toEnrollment(Item).enrollment;
  }

  /** An enrollment with its place in the open-work index, for the sweeper. */
  async getForSweep(
    enrollmentId: string,
  ): Promise<{ enrollment: Enrollment; marks: OpenWorkMarks } | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: enrollmentId, sk: SK },
        ConsistentRead: true,
      }),
    );
    return Item ? toEnrollment(Item) : undefined;
  }

  /** Ids of unfinished enrollments of one index shard due at `now` or before; see OpenWorkIndex. */
  overdue(shard: number, now: number, limit: number): Promise<string[]> {
    return this.openWork.overdue(shard, now, limit);
  }

  /**
   * Leaves an unfinished enrollment due again at `until` (counting a resume when the sweeper
   * resumed it), as long as it stands where it stood when read. StaleStateError otherwise.
   */
  async postponeSweep(
    enrollment: Enrollment,
    change: { until: number; resumed: boolean },
  ): Promise<void> {
    await this.openWork.postpone(
      { pk: enrollment.enrollmentId, sk: SK },
      change,
      standingCondition(enrollment),
    );
  }

  /** Takes an enrollment that has ended out of the open-work index. StaleStateError if it moved. */
  async clearSweep(enrollment: Enrollment): Promise<void> {
    await this.openWork.clear(
      { pk: enrollment.enrollmentId, sk: SK },
      standingCondition(enrollment),
    );
  }

  /**
   * Marks the pending action at `index` as running and the enrollment as waiting on it: a delay
   * until `resumeAt`, when given; a webhook's delivery keeps the time by which the action should
   * have moved. StaleStateError when another consumer started it first.
   */
  async startAction(
    enrollment: Enrollment,
    index: number,
    change: { now: number; deliveryId?: string; resumeAt?: number },
  ): Promise<void> {
    const action = `actions[${index}]`;
    const openWork =
      change.resumeAt === undefined
        ? progressed
        : stillOpen(enrollment.enrollmentId, this.deadlines.delay(change.resumeAt));
    await conditionally(`action ${index} of ${enrollment.enrollmentId} already started`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: enrollment.enrollmentId, sk: SK },
          UpdateExpression: `SET ${action}.#status = :running, ${action}.startedAt = :now, #status = :waiting, updatedAt = :now${setDeliveryId(action, change.deliveryId)}${openWork.set} REMOVE ${openWork.remove}`,
          ConditionExpression: `currentIndex = :index AND ${action}.#status = :pending AND ${STILL_RUNNING}`,
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ...RUNNING_VALUES,
            ":running": "running",
            ":pending": "pending",
            ":now": change.now,
            ":index": index,
            ...(change.deliveryId ? { ":deliveryId": change.deliveryId } : {}),
            ...openWork.values,
          },
        }),
      ),
    );
  }

  /**
   * Finishes the action at `index` and moves to the next one; on the last action the enrollment
   * completes, and its lock stays for the record's next enrollment to take over (see `create`).
   * StaleStateError when the enrollment already moved on.
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
    const openWork: OpenWorkClauses =
      next === "completed"
        ? ended
        : stillOpen(enrollment.enrollmentId, this.deadlines.step(change.now));
    const update = {
      TableName: this.tableName,
      Key: { pk: enrollment.enrollmentId, sk: SK },
      UpdateExpression: `SET ${action}.#status = :done, ${action}.finishedAt = :now, currentIndex = :next, #status = :enrollmentStatus, updatedAt = :now${setDeliveryId(action, change.deliveryId)}${openWork.set} REMOVE ${openWork.remove}`,
      ConditionExpression: `currentIndex = :index AND ${action}.#status IN (:pending, :running) AND ${STILL_RUNNING}`,
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ...RUNNING_VALUES,
        ":done": change.status,
        ":now": change.now,
        ":next": index + 1,
        ":index": index,
        ":enrollmentStatus": next,
        ":pending": "pending",
        ":running": "running",
        ...(change.deliveryId ? { ":deliveryId": change.deliveryId } : {}),
        ...openWork.values,
      },
    };
    await conditionally(`action ${index} of ${enrollment.enrollmentId} already finished`, () =>
      this.documents.send(new UpdateCommand(update)),
    );
    return next;
  }

  /**
   * Ends the enrollment at the action at `index`, which can never run: the action and the
   * enrollment fail with `reason`, and the record may be enrolled again (its next enrollment takes
   * over the lock). StaleStateError when the enrollment already moved on.
   */
  async failAction(
    enrollment: Enrollment,
    index: number,
    change: { now: number; reason: string },
  ): Promise<void> {
    const action = `actions[${index}]`;
    await conditionally(`action ${index} of ${enrollment.enrollmentId} already finished`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: enrollment.enrollmentId, sk: SK },
          UpdateExpression: `SET ${action}.#status = :failed, ${action}.finishedAt = :now, #status = :failed, failureReason = :reason, updatedAt = :now REMOVE ${ended.remove}`,
          ConditionExpression: `currentIndex = :index AND ${action}.#status IN (:pending, :running) AND ${STILL_RUNNING}`,
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ...RUNNING_VALUES,
            ":failed": "failed",
            ":now": change.now,
            ":reason": change.reason,
            ":index": index,
            ":pending": "pending",
            ":running": "running",
          },
        }),
      ),
    );
  }

  /**
   * Cancels a running enrollment where it was read (at its current action), in one transaction
   * with `alongside`: the writes that stop what that action started. The record's place in the
   * workflow is released after. StaleStateError when the enrollment moved or ended since it was
   * read, or a write alongside lost its condition; nothing is written then.
   */
  async cancel(
    enrollment: Enrollment,
    now: number,
    alongside: readonly TransactItem[] = [],
  ): Promise<void> {
    await conditionally(`${enrollment.enrollmentId} changed while being cancelled`, () =>
      this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: { pk: enrollment.enrollmentId, sk: SK },
                UpdateExpression: `SET #status = :cancelled, updatedAt = :now REMOVE ${ended.remove}`,
                ConditionExpression: `${STILL_RUNNING} AND currentIndex = :index`,
                ExpressionAttributeNames: { "#status": "status" },
                ExpressionAttributeValues: {
                  ...RUNNING_VALUES,
                  ":cancelled": "cancelled",
                  ":now": now,
                  ":index": enrollment.currentIndex,
                },
              },
            },
            ...alongside,
          ],
        }),
      ),
    );
    await this.releaseLock(enrollment);
  }
}

/** The `workflowRecord` attribute of an enrollment: the key of the per-record index. */
export function workflowRecordKey(workflowId: string, objectId: string): string {
  return `${workflowId}#${objectId}`;
}

/** The enrollment's state as read, item and action, so a sweeper's write never undoes a move. */
function standingCondition(enrollment: Enrollment) {
  const index = enrollment.currentIndex;
  const current = enrollment.actions[index];
  return {
    expression: `currentIndex = :index AND #status = :status${current ? ` AND actions[${index}].#status = :actionStatus` : ""}`,
    names: { "#status": "status" },
    values: {
      ":index": index,
      ":status": enrollment.status,
      ...(current ? { ":actionStatus": current.status } : {}),
    },
  };
}

/** An enrollment as stored, without its keys, and its place in the open-work index. */
function toEnrollment(item: Record<string, unknown>): {
  enrollment: Enrollment;
  marks: OpenWorkMarks;
} {
  const { rest, marks } = splitOpenWork(item);
  const { pk: _pk, sk: _sk, workflowRecord: _workflowRecord, ...enrollment } = rest;
  return { enrollment: enrollment as unknown as Enrollment, marks };
}

/** The clause that records an action's delivery id, when it has one. */
function setDeliveryId(action: string, deliveryId: string | undefined): string {
  return deliveryId ? `, ${action}.deliveryId = :deliveryId` : "";
}

function lockKey(enrollment: Pick<Enrollment, "workflowId" | "objectType" | "objectId">): string {
  return `active#${enrollment.workflowId}#${enrollment.objectType}#${enrollment.objectId}`;
}
