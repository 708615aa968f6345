import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally } from "#adapters/dynamo-errors";
import type { Replay, ReplayStepOutcome } from "#domain/replay";
import { tables } from "#shared/contract";

const SK = "REPLAY";
/** A replay's progress stays readable this long after it started, then expires (TTL). */
const REPLAY_RETENTION_DAYS = 30;

/**
 * Replays, as items of their own in the deliveries table (`REPLAY#<id>` / `REPLAY`), so they need
 * no table, grant or variable of their own, and expire by the table's TTL. A replay item carries
 * neither `workflowId` nor `createdAt` at its top level: those are the keys of the deliveries'
 * index, which therefore never lists a replay.
 */
export class ReplaysTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    /** The deliveries table. */
    private readonly tableName: string,
  ) {}

  async create(replay: Replay): Promise<void> {
    await conditionally(`replay ${replay.replayId} exists`, () =>
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: pk(replay.replayId),
            sk: SK,
            ...replay,
            [tables.deliveries.ttlAttribute]:
              Math.floor(replay.startedAt / 1000) + REPLAY_RETENTION_DAYS * 86_400,
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      ),
    );
  }

  /** Removes a replay that never started. */
  async discard(replayId: string): Promise<void> {
    await this.documents.send(
      new DeleteCommand({ TableName: this.tableName, Key: { pk: pk(replayId), sk: SK } }),
    );
  }

  async get(replayId: string): Promise<Replay | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: pk(replayId), sk: SK },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, [tables.deliveries.ttlAttribute]: _expiresAt, ...replay } = Item;
    return replay as Replay;
  }

  /**
   * Counts step `step` of the replay in and moves its cursor on; the replay completes when the
   * index is exhausted. Only the first to record a step counts it: StaleStateError for the rest,
   * so a step run twice is counted once.
   */
  async recordStep(
    replay: Replay,
    step: number,
    outcome: ReplayStepOutcome,
    now: number,
  ): Promise<Replay> {
    const done = outcome.cursor === undefined;
    const { Attributes } = await conditionally(
      `step ${step} of replay ${replay.replayId} was recorded already`,
      () =>
        this.documents.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: pk(replay.replayId), sk: SK },
            UpdateExpression:
              "SET matched = matched + :matched, replayed = replayed + :replayed, #steps = :next, #cursor = :cursor, #status = :status, updatedAt = :now, completedAt = :completedAt",
            ConditionExpression: "#steps = :step AND #status = :running",
            // CURSOR and STATUS are reserved words of DynamoDB's expressions.
            ExpressionAttributeNames: {
              "#status": "status",
              "#cursor": "cursor",
              "#steps": "steps",
            },
            ExpressionAttributeValues: {
              ":matched": outcome.matched,
              ":replayed": outcome.replayed,
              ":next": step + 1,
              ":step": step,
              ":cursor": outcome.cursor ?? null,
              ":status": done ? "completed" : "running",
              ":running": "running",
              ":now": now,
              ":completedAt": done ? now : null,
            },
            ReturnValues: "ALL_NEW",
          }),
        ),
    );
    const {
      pk: _pk,
      sk: _sk,
      [tables.deliveries.ttlAttribute]: _expiresAt,
      ...updated
    } = Attributes ?? {};
    return updated as Replay;
  }
}

function pk(replayId: string): string {
  return `REPLAY#${replayId}`;
}
