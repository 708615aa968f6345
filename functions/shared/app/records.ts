import type { RecordsTable } from "#adapters/records-table";
import { NotFoundError } from "#domain/errors";
import { recordPayload } from "#domain/payload";
import { applyPropertyChanges } from "#domain/record";
import type { RequestBody } from "#domain/request-schemas";
import type { ObjectType } from "#domain/workflow";

export interface RecordsDeps {
  readonly records: RecordsTable;
  readonly now: () => number;
  readonly portalId: number;
}

/** Creates or updates a record; every changed value becomes a new version from source API. */
export async function putRecord(
  deps: RecordsDeps,
  objectType: ObjectType,
  objectId: string,
  input: RequestBody<"putObject">,
) {
  let created = false;
  const record = await deps.records.update({ objectType, objectId }, (current) => {
    created = current === undefined;
    const { record: next, changed } = applyPropertyChanges(
      current,
      { objectType, objectId },
      input.properties,
      {
        sourceType: "API",
        sourceId: null,
        sourceLabel: null,
        timestamp: deps.now(),
      },
    );
    return current && changed.length === 0 ? undefined : next;
  });
  if (!record) throw new Error(`record ${objectType}/${objectId} vanished while being written`);
  return { created, payload: recordPayload(record, { portalId: deps.portalId }) };
}

/** A record in exactly the JSON a webhook for it sends. */
export async function readRecord(
  deps: Pick<RecordsDeps, "records" | "portalId">,
  objectType: ObjectType,
  objectId: string,
) {
  const record = await deps.records.get({ objectType, objectId });
  if (!record) throw new NotFoundError(`${objectType}/${objectId} not found`);
  return recordPayload(record, { portalId: deps.portalId });
}
