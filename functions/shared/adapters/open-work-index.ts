import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { conditionally } from "#adapters/dynamo-errors";
import { sweepShardOf } from "#domain/open-work";
import { openWorkIndex } from "#shared/contract";

const SHARD = openWorkIndex.partitionKey.name;
const DUE = openWorkIndex.sortKey.name;
/** How often the sweeper resumed the work since it last moved by itself; not in the index. */
const RESUMES = "sweepResumes";

/**
 * The writes that keep an item in the open-work index, as clauses to add to the update the
 * adapter makes anyway: an item enters the index, moves in it, or leaves it in the same request
 * that changes its state, never in a request of its own.
 */
export interface OpenWorkClauses {
  /** For `SET`: empty, or assignments that start with `, `. */
  readonly set: string;
  /** For `REMOVE`: attribute names, separated by `, `. */
  readonly remove: string;
  readonly values: Readonly<Record<string, unknown>>;
}

/** The attributes a new open item is written with, due at `due`. */
export function openWorkAttributes(id: string, due: number): Record<string, number> {
  return { [SHARD]: sweepShardOf(id), [DUE]: due };
}

/**
 * The item made progress by itself and is due again at `due`: it takes its (new) place in the
 * index, and the sweeper's count of resumes starts over.
 */
export function stillOpen(id: string, due: number): OpenWorkClauses {
  return {
    set: `, ${SHARD} = :sweepShard, ${DUE} = :sweepAt`,
    remove: RESUMES,
    values: { ":sweepShard": sweepShardOf(id), ":sweepAt": due },
  };
}

/** The item made progress by itself; its place in the index stays as it was. */
export const progressed: OpenWorkClauses = { set: "", remove: RESUMES, values: {} };

/** The item ended: it leaves the index. */
export const ended: OpenWorkClauses = {
  set: "",
  remove: `${SHARD}, ${DUE}, ${RESUMES}`,
  values: {},
};

/** What the sweeper reads of an item's place in the index, besides the item itself. */
export interface OpenWorkMarks {
  /** When the item is due (epoch ms), while it is open. */
  readonly sweepAt: number | undefined;
  /** How often the sweeper resumed it since it last moved by itself. */
  readonly resumes: number;
}

/** Splits a stored item into what the rest of the code sees and its place in the index. */
export function splitOpenWork(item: Record<string, unknown>): {
  rest: Record<string, unknown>;
  marks: OpenWorkMarks;
} {
  const { [SHARD]: _shard, [DUE]: due, [RESUMES]: resumes, ...rest } = item;
  return {
    rest,
    marks: {
      sweepAt: typeof due === "number" ? due : undefined,
      resumes: typeof resumes === "number" ? resumes : 0,
    },
  };
}

/** Where one table's items sit in the open-work index, and the sweeper's writes to it. */
export class OpenWorkIndex {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * The partition keys of the items of one shard due at `now` or before, most overdue first, at
   * most `limit`. The index is eventually consistent: read each item before acting on it.
   */
  async overdue(shard: number, now: number, limit: number): Promise<string[]> {
    const { Items } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: openWorkIndex.name,
        KeyConditionExpression: `${SHARD} = :shard AND ${DUE} <= :now`,
        ExpressionAttributeValues: { ":shard": shard, ":now": now },
        Limit: limit,
      }),
    );
    return (Items ?? []).map((item) => String(item.pk));
  }

  /**
   * The sweeper looked at an item and leaves it due again at `until`, counting one more resume
   * when it resumed it; only while `condition` (the state it read) still holds.
   * StaleStateError otherwise.
   */
  async postpone(
    key: { readonly pk: string; readonly sk: string },
    change: { readonly until: number; readonly resumed: boolean },
    condition: {
      readonly expression: string;
      readonly names?: Record<string, string>;
      readonly values: Record<string, unknown>;
    },
  ): Promise<void> {
    const counted = change.resumed ? `, ${RESUMES} = if_not_exists(${RESUMES}, :zero) + :one` : "";
    await conditionally(`${key.pk} moved since the sweeper read it`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: `SET ${SHARD} = :sweepShard, ${DUE} = :sweepAt${counted}`,
          ConditionExpression: condition.expression,
          ...(condition.names ? { ExpressionAttributeNames: condition.names } : {}),
          ExpressionAttributeValues: {
            ...condition.values,
            ":sweepShard": sweepShardOf(key.pk),
            ":sweepAt": change.until,
            ...(change.resumed ? { ":zero": 0, ":one": 1 } : {}),
          },
        }),
      ),
    );
  }

  /**
   * Takes an item that ended out of the index, where a writer that does not keep the index left
   * it; only while `condition` holds. StaleStateError otherwise.
   */
  async clear(
    key: { readonly pk: string; readonly sk: string },
    condition: {
      readonly expression: string;
      readonly names?: Record<string, string>;
      readonly values: Record<string, unknown>;
    },
  ): Promise<void> {
    await conditionally(`${key.pk} moved since the sweeper read it`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: `REMOVE ${ended.remove}`,
          ConditionExpression: condition.expression,
          ...(condition.names ? { ExpressionAttributeNames: condition.names } : {}),
          ExpressionAttributeValues: condition.values,
        }),
      ),
    );
  }
}
