import { type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { batchGetItems } from "#adapters/batch-reads";
import { workflowRecordKey } from "#adapters/enrollments-table";
import { decodePageToken, encodePageToken, hasExactly, type PageKey } from "#adapters/page-tokens";
import type { Enrollment } from "#domain/enrollment";
import { ENROLLMENTS_BY_WORKFLOW, ENROLLMENTS_BY_WORKFLOW_RECORD } from "#shared/contract";

const SK = "ENROLLMENT";
/**
 * Index pages read for one page of results. A status filter drops enrollments after they are
 * read, so a page may need more than one read; the bound keeps one request's cost in check, and
 * a short page still carries `nextToken` when more may follow.
 */
const MAX_READS_PER_PAGE = 5;

export interface WorkflowEnrollmentsQuery {
  readonly workflowId: string;
  readonly objectId?: string | undefined;
  readonly status?: string | undefined;
  readonly limit: number;
  readonly nextToken?: string | undefined;
}

/**
 * A workflow's enrollments, newest first, read through the keys-only indexes of the enrollments
 * table (by workflow, or by workflow and record) and then the items themselves.
 */
export class WorkflowEnrollments {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async page(
    query: WorkflowEnrollmentsQuery,
  ): Promise<{ enrollments: Enrollment[]; nextToken: string | null }> {
    const index =
      query.objectId === undefined ? ENROLLMENTS_BY_WORKFLOW : ENROLLMENTS_BY_WORKFLOW_RECORD;
    const partition =
      query.objectId === undefined
        ? query.workflowId
        : workflowRecordKey(query.workflowId, query.objectId);
    let startKey =
      query.nextToken === undefined
        ? undefined
        : decodePageToken(query.nextToken, (key) =>
            pageKeyWithin(key, index.partitionKey.name, partition),
          );
    const enrollments: Enrollment[] = [];
    for (let read = 0; read < MAX_READS_PER_PAGE && enrollments.length < query.limit; read++) {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index.name,
          KeyConditionExpression: "#partition = :partition",
          ExpressionAttributeNames: { "#partition": index.partitionKey.name },
          ExpressionAttributeValues: { ":partition": partition },
          ScanIndexForward: false,
          Limit: query.limit - enrollments.length,
          ExclusiveStartKey: startKey,
        }),
      );
      const found = await this.items((page.Items ?? []).map((item) => String(item.pk)));
      enrollments.push(
        ...found.filter(
          (enrollment) => query.status === undefined || enrollment.status === query.status,
        ),
      );
      startKey = page.LastEvaluatedKey;
      if (!startKey) break;
    }
    return { enrollments, nextToken: encodePageToken(startKey) };
  }

  /** The enrollments with these ids, in the same order; ids no longer there are left out. */
  private async items(ids: readonly string[]): Promise<Enrollment[]> {
    const found = await batchGetItems(
      this.documents,
      this.tableName,
      ids.map((pk) => ({ pk, sk: SK })),
      // Read as they stand now: the status filter applies to what an enrollment is, not was.
      { consistentRead: true },
    );
    const byId = new Map<string, Enrollment>();
    for (const { pk, sk: _sk, workflowRecord: _workflowRecord, ...enrollment } of found) {
      byId.set(String(pk), enrollment as unknown as Enrollment);
    }
    return ids.flatMap((id) => {
      const enrollment = byId.get(id);
      return enrollment ? [enrollment] : [];
    });
  }
}

/** An enrollment id, as the API and the triggers make them: the `pk` of an index position. */
const MAX_ID_LENGTH = 100;

/**
 * The index position, if it is one this query could have stopped at: its own partition, an
 * enrollment's key and a creation time in epoch milliseconds. Anything else is forged.
 */
function pageKeyWithin(
  key: Readonly<Record<string, unknown>>,
  partitionName: string,
  partition: string,
): PageKey | undefined {
  const { pk, createdAt } = key;
  const fits =
    hasExactly(key, [partitionName, "pk", "sk", "createdAt"]) &&
    key[partitionName] === partition &&
    key.sk === SK &&
    typeof pk === "string" &&
    pk.length > 0 &&
    pk.length <= MAX_ID_LENGTH &&
    typeof createdAt === "number" &&
    Number.isSafeInteger(createdAt) &&
    createdAt >= 0;
  return fits ? { ...key } : undefined;
}
