import { setTimeout as sleep } from "node:timers/promises";
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { isConditionFailure, isRefusedRequest } from "#adapters/dynamo-errors";
import { PayloadTooLargeError, StaleStateError, ValidationError } from "#domain/errors";
import type { CrmRecord } from "#domain/record";
import type { ObjectType } from "#domain/workflow";
import { RECORD_SORT_KEY } from "#shared/contract";

const SK = RECORD_SORT_KEY;
/** DynamoDB items stop at 400 KB; leave room for keys and attribute names. */
const MAX_RECORD_BYTES = 350_000;
const MAX_WRITE_RACES = 8;
/**
 * A writer that lost a race waits a random time below this, doubled after every loss, so that
 * racing writers spread out instead of colliding again; eight losses wait 2.5 s at most.
 */
const RACE_BACKOFF_MS = 10;

/** The conditional put of a record's next revision, as `update` builds it. */
export type RecordPut = Pick<
  PutCommandInput,
  "TableName" | "Item" | "ConditionExpression" | "ExpressionAttributeValues"
>;

/**
 * Sends a record's put. A caller that must change another item with it, or not at all, sends the
 * put inside its own transaction; a lost condition, alone or in the transaction, is a race.
 */
export type RecordWrite = (put: RecordPut) => Promise<void>;

interface RecordKey {
  readonly objectType: ObjectType;
  readonly objectId: string;
}

/** CRM records with their property history, keyed by type and id. */
export class RecordsTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(key: RecordKey): Promise<CrmRecord | undefined> {
    return (await this.read(key))?.record;
  }

  /**
   * Reads, changes and writes a record under optimistic locking: a concurrent writer makes it
   * read again and re-apply, so no change is lost. `change` returns undefined for "no change";
   * `write` sends the put, a plain PutItem unless the caller says otherwise.
   */
  async update(
    key: RecordKey,
    change: (current: CrmRecord | undefined) => CrmRecord | undefined,
    write: RecordWrite = async (put) => {
      await this.documents.send(new PutCommand(put));
    },
  ): Promise<CrmRecord | undefined> {
    for (let race = 0; race < MAX_WRITE_RACES; race++) {
      const current = await this.read(key);
      const next = change(current?.record);
      if (next === undefined) return current?.record;
      const bytes = Buffer.byteLength(JSON.stringify(next));
      if (bytes > MAX_RECORD_BYTES) {
        throw new PayloadTooLargeError(
          `record would take ${bytes} bytes with its history; at most ${MAX_RECORD_BYTES} are kept`,
        );
      }
      const put: RecordPut = {
        TableName: this.tableName,
        Item: {
          pk: pk(key),
          sk: SK,
          ...next,
          // As a Map, so that the marshaller takes every name as a key: a plain object with a
          // property named `constructor` looks to it like a class instance, and it refuses it.
          properties: new Map(Object.entries(next.properties)),
          revision: (current?.revision ?? 0) + 1,
        },
        ConditionExpression: current ? "revision = :revision" : "attribute_not_exists(pk)",
        ExpressionAttributeValues: current ? { ":revision": current.revision } : undefined,
      };
      try {
        await write(put);
        return next;
      } catch (error) {
        if (isRefusedRequest(error)) {
          throw new ValidationError("properties", `cannot be stored: ${(error as Error).message}`);
        }
        if (!isConditionFailure(error)) throw error;
      }
      await sleep(Math.random() * RACE_BACKOFF_MS * 2 ** race);
    }
    throw new StaleStateError(
      `record ${pk(key)} kept changing while being written; gave up after ${MAX_WRITE_RACES} tries, try again`,
    );
  }

  private async read(key: RecordKey): Promise<{ record: CrmRecord; revision: number } | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: pk(key), sk: SK },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, revision, ...record } = Item;
    return { record: record as CrmRecord, revision: revision as number };
  }
}

function pk(key: RecordKey): string {
  return `${key.objectType}#${key.objectId}`;
}
