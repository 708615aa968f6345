import { gunzipSync, gzipSync } from "node:zlib";
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally, isConditionFailure } from "#adapters/dynamo-errors";
import type { Attempt, AttemptVerdict, Delivery } from "#domain/delivery";
import { PayloadTooLargeError } from "#domain/errors";

const SK = "DELIVERY";
const ATTEMPT_PREFIX = "ATTEMPT#";
/** Attempt logs expire (DynamoDB TTL) this long after the attempt was sent. */
const ATTEMPT_LOG_RETENTION_DAYS = 30;
/** The compressed body must leave room in the 400 KB item for the rest of the delivery. */
const MAX_STORED_BODY_BYTES = 300_000;

/**
 * Deliveries and their attempt logs: one item per delivery (`DELIVERY`) and one per attempt
 * (`ATTEMPT#0001`...), under the delivery id. Bodies are stored gzip-compressed.
 */
export class DeliveriesTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Stores a new delivery; false when it already exists (the action ran before). */
  async create(delivery: Delivery): Promise<boolean> {
    const { body, ...rest } = delivery;
    const bodyGzip = body === undefined ? undefined : gzipSync(body);
    if (bodyGzip && bodyGzip.byteLength > MAX_STORED_BODY_BYTES) {
      throw new PayloadTooLargeError(
        `webhook body is ${Buffer.byteLength(body ?? "")} bytes (${bodyGzip.byteLength} compressed); at most ${MAX_STORED_BODY_BYTES} compressed bytes are stored`,
      );
    }
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: delivery.deliveryId, sk: SK, ...rest, bodyGzip },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async get(deliveryId: string): Promise<Delivery | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: deliveryId, sk: SK },
        ConsistentRead: true,
      }),
    );
    return Item ? toDelivery(Item) : undefined;
  }

  /** A delivery with its attempt log, oldest attempt first, in one query. */
  async getWithAttempts(
    deliveryId: string,
  ): Promise<{ delivery: Delivery; attempts: Attempt[] } | undefined> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": deliveryId },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const deliveryItem = items.find((item) => item.sk === SK);
    if (!deliveryItem) return undefined;
    const attempts = items
      .filter((item) => String(item.sk).startsWith(ATTEMPT_PREFIX))
      .map(toAttempt)
      .sort((a, b) => a.number - b.number);
    return { delivery: toDelivery(deliveryItem), attempts };
  }

  /**
   * Takes the lease on attempt `attempt` for `leaseMs`: only the holder sends it. False when the
   * attempt is not the next one or another consumer holds an unexpired lease.
   */
  async claimAttempt(
    deliveryId: string,
    attempt: number,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: deliveryId, sk: SK },
          UpdateExpression: "SET leaseUntil = :until, leaseAttempt = :attempt",
          ConditionExpression:
            "nextAttempt = :attempt AND #status IN (:pending, :retrying) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":until": now + leaseMs,
            ":attempt": attempt,
            ":now": now,
            ":pending": "pending",
            ":retrying": "retrying",
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Writes an attempt to the log and moves the delivery by the verdict, in one transaction,
   * only while this consumer's lease on that attempt stands.
   */
  async recordAttempt(
    delivery: Delivery,
    attempt: Attempt,
    verdict: AttemptVerdict,
    now: number,
  ): Promise<void> {
    const values: Record<string, unknown> = {
      ":attempt": attempt.number,
      ":status": verdict.status,
      ":now": now,
    };
    let set = "#status = :status, attemptCount = :attempt, updatedAt = :now";
    const remove = "leaseUntil, leaseAttempt";
    if (verdict.status === "retrying") {
      set +=
        ", nextAttempt = :next, nextAttemptAt = :nextAt, firstFailedAt = :firstFailedAt, retryFiresAt = :firesAt";
      values[":firesAt"] = verdict.firesAt;
      values[":next"] = verdict.nextAttempt;
      values[":nextAt"] = verdict.nextAttemptAt;
      values[":firstFailedAt"] = verdict.firstFailedAt;
    } else {
      set += ", nextAttempt = :null, nextAttemptAt = :null, failureReason = :reason";
      values[":null"] = null;
      values[":reason"] = verdict.status === "failed" ? verdict.reason : null;
    }
    await conditionally(
      `attempt ${attempt.number} of ${delivery.deliveryId} was recorded already`,
      () =>
        this.documents.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.tableName,
                  Item: {
                    pk: delivery.deliveryId,
                    sk: attemptKey(attempt.number),
                    ...attempt,
                    expiresAt:
                      Math.floor(attempt.sentAt / 1000) + ATTEMPT_LOG_RETENTION_DAYS * 86_400,
                  },
                  ConditionExpression: "attribute_not_exists(pk)",
                },
              },
              {
                Update: {
                  TableName: this.tableName,
                  Key: { pk: delivery.deliveryId, sk: SK },
                  UpdateExpression: `SET ${set} REMOVE ${remove}`,
                  ConditionExpression: "nextAttempt = :attempt AND leaseAttempt = :attempt",
                  ExpressionAttributeNames: { "#status": "status" },
                  ExpressionAttributeValues: values,
                },
              },
            ],
          }),
        ),
    );
  }

  /**
   * Makes an ended or retrying delivery due again now, as attempt `attemptCount + 1`.
   * A failed delivery gets one attempt (`once`); a retrying one keeps its retry policy.
   * StaleStateError when the delivery changed since it was read.
   */
  async requestManualRetry(delivery: Delivery, now: number): Promise<number> {
    const attempt = delivery.attemptCount + 1;
    await conditionally(`delivery ${delivery.deliveryId} changed; read it again`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: delivery.deliveryId, sk: SK },
          UpdateExpression:
            "SET #status = :pending, retryMode = :mode, nextAttempt = :attempt, nextAttemptAt = :now, failureReason = :null, updatedAt = :now REMOVE leaseUntil, leaseAttempt",
          ConditionExpression: "#status = :current AND attemptCount = :count",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":pending": "pending",
            ":mode": delivery.status === "failed" ? "once" : delivery.retryMode,
            ":attempt": attempt,
            ":now": now,
            ":null": null,
            ":current": delivery.status,
            ":count": delivery.attemptCount,
          },
        }),
      ),
    );
    return attempt;
  }
}

function attemptKey(number: number): string {
  return `${ATTEMPT_PREFIX}${String(number).padStart(4, "0")}`;
}

function toDelivery(item: Record<string, unknown>): Delivery {
  const {
    pk: _pk,
    sk: _sk,
    bodyGzip,
    leaseUntil: _lease,
    leaseAttempt: _leaseAttempt,
    ...rest
  } = item;
  const body = bodyGzip instanceof Uint8Array ? gunzipSync(bodyGzip).toString("utf8") : undefined;
  return { ...rest, ...(body === undefined ? {} : { body }) } as Delivery;
}

function toAttempt(item: Record<string, unknown>): Attempt {
  const { pk: _pk, sk: _sk, expiresAt: _expiresAt, ...attempt } = item;
  return attempt as unknown as Attempt;
}
