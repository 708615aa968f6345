import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { CrmRecord } from "#domain/record";
import { OBJECT_TYPES, type ObjectType } from "#domain/workflow";
import { RECORD_SORT_KEY } from "#shared/contract";

/** One write of a record, as the records table's stream tells it: the item before and after. */
export interface RecordChange {
  /** Undefined when the write created the record. */
  readonly before: CrmRecord | undefined;
  readonly after: CrmRecord;
  /** The record's revision after the write: one per write, so it names the change. */
  readonly revision: number;
}

/** A stream image in DynamoDB's attribute-value form, as the stream hands it over. */
export type StreamImage = Record<string, unknown>;

/** A stream record whose images are not a record item as the records table writes them. */
export class MalformedRecordChangeError extends Error {
  override name = "MalformedRecordChangeError";
}

/**
 * The change a stream record describes, or undefined when it is none of the enrollment
 * function's business: a removal, or an item that is not a record (lists, counters).
 */
export function recordChangeOf(
  eventName: string | undefined,
  oldImage: StreamImage | undefined,
  newImage: StreamImage | undefined,
): RecordChange | undefined {
  if (eventName === "REMOVE" || newImage === undefined) return undefined;
  const after = unmarshall(newImage as Record<string, AttributeValue>);
  if (after.sk !== RECORD_SORT_KEY) return undefined;
  const before =
    oldImage === undefined ? undefined : unmarshall(oldImage as Record<string, AttributeValue>);
  return {
    before: before === undefined ? undefined : toRecord(before),
    after: toRecord(after),
    revision: revisionOf(after),
  };
}

function toRecord(item: Record<string, unknown>): CrmRecord {
  const { pk: _pk, sk: _sk, revision: _revision, ...record } = item;
  if (
    !OBJECT_TYPES.includes(record.objectType as ObjectType) ||
    typeof record.objectId !== "string" ||
    typeof record.properties !== "object" ||
    record.properties === null ||
    typeof record.updatedAt !== "number"
  ) {
    throw new MalformedRecordChangeError(`stream image of ${String(item.pk)} is not a record item`);
  }
  return record as unknown as CrmRecord;
}

function revisionOf(item: Record<string, unknown>): number {
  if (typeof item.revision !== "number" || !Number.isSafeInteger(item.revision)) {
    throw new MalformedRecordChangeError(`stream image of ${String(item.pk)} has no revision`);
  }
  return item.revision;
}
