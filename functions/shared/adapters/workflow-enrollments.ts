import { type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { batchGetItems } from "#adapters/batch-reads";
import { workflowRecordKey } from "#adapters/enrollments-table";
import type { Enrollment } from "#domain/enrollment";
import { ValidationError } from "#domain/errors";
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
    let startKey = decodeToken(query.nextToken, index.partitionKey.name, partition);
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
    return { enrollments, nextToken: startKey ? encodeToken(startKey) : null };
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

function encodeToken(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

/** The index position a token stands for; a token from another query or made up is refused. */
function decodeToken(
  token: string | undefined,
  partitionName: string,
  partition: string,
): Record<string, unknown> | undefined {
  if (token === undefined) return undefined;
  const refused = new ValidationError("nextToken", "is not a token this API gave for this query");
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw refused;
  }
  if (
    typeof key !== "object" ||
    key === null ||
    Array.isArray(key) ||
    Object.keys(key).length !== 4
  ) {
    throw refused;
  }
  const fields = key as Record<string, unknown>;
  if (
    fields[partitionName] !== partition ||
    typeof fields.pk !== "string" ||
    fields.sk !== SK ||
    typeof fields.createdAt !== "number"
  ) {
    throw refused;
  }
  return fields;
}
