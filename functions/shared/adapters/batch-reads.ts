import { setTimeout as sleep } from "node:timers/promises";
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";

/** BatchGetItem takes at most this many keys in one request. */
export const BATCH_GET_MAX_KEYS = 100;
/**
 * Requests for one set of keys at most. DynamoDB leaves keys unprocessed when a partition is
 * throttled or the answer would pass 16 MB; with the backoff below, the last request goes out
 * about 3 seconds after the first at worst, well within any caller's time limit.
 */
const MAX_BATCH_GET_ROUNDS = 8;
/** Wait before asking again for unprocessed keys, doubled each round, jittered in full. */
const FIRST_BACKOFF_MS = 25;

/** Keys DynamoDB kept leaving unprocessed, round after round. */
export class UnreadKeysError extends Error {
  override name = "UnreadKeysError";
}

/** What a batch read reads of each item: an expression with its attribute names. */
export interface BatchProjection {
  readonly expression: string;
  readonly names: Readonly<Record<string, string>>;
}

/**
 * The items of `tableName` with these keys, in no particular order; keys with no item are left
 * out. Unprocessed keys are asked for again after a growing, jittered wait (as AWS advises for
 * BatchGetItem), at most `MAX_BATCH_GET_ROUNDS` times, then UnreadKeysError.
 */
export async function batchGetItems(
  documents: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: {
    readonly projection?: BatchProjection;
    /** Strongly consistent reads, at twice the cost: for lists that filter on what changes. */
    readonly consistentRead?: boolean;
    readonly random?: () => number;
  } = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let start = 0; start < keys.length; start += BATCH_GET_MAX_KEYS) {
    let pending: Record<string, unknown>[] = keys.slice(start, start + BATCH_GET_MAX_KEYS);
    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_BATCH_GET_ROUNDS) {
        throw new UnreadKeysError(
          `DynamoDB left ${pending.length} keys of ${tableName} unread after ${round} requests`,
        );
      }
      if (round > 0) {
        await sleep(Math.floor((options.random ?? Math.random)() * FIRST_BACKOFF_MS * 2 ** round));
      }
      const result: BatchGetCommandOutput = await documents.send(
        new BatchGetCommand({
          RequestItems: {
            [tableName]: {
              Keys: pending,
              ...(options.consistentRead ? { ConsistentRead: true } : {}),
              ...(options.projection
                ? {
                    ProjectionExpression: options.projection.expression,
                    ExpressionAttributeNames: { ...options.projection.names },
                  }
                : {}),
            },
          },
        }),
      );
      items.push(...(result.Responses?.[tableName] ?? []));
      pending = result.UnprocessedKeys?.[tableName]?.Keys ?? [];
    }
  }
  return items;
}
