import { gunzipSync, gzipSync } from "node:zlib";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { BATCH_GET_MAX_KEYS, type BatchProjection, batchGetItems } from "#adapters/batch-reads";
import { conditionally, isConditionFailure } from "#adapters/dynamo-errors";
import type { TransactItem } from "#adapters/dynamodb-client";
import {
  ended,
  OpenWorkIndex,
  type OpenWorkMarks,
  splitOpenWork,
  stillOpen,
} from "#adapters/open-work-index";
import { decodePageToken, encodePageToken, hasExactly, type PageKey } from "#adapters/page-tokens";
import {
  type Attempt,
  type AttemptVerdict,
  type Delivery,
  type DeliverySummary,
  ENROLLMENT_CANCELLED,
  type RetryMode,
} from "#domain/delivery";
import { PayloadTooLargeError } from "#domain/errors";
import type { DeliveryListQuery } from "#domain/list-queries";
import { OpenWorkDeadlines } from "#domain/open-work";
import type { ReplayCursor, ReplaySelection } from "#domain/replay";
import type { OutputResult } from "#domain/webhook-outputs";
import { indexes } from "#shared/contract";

const SK = "DELIVERY";
/** Sorts right after the delivery, so one query reads both and no attempt. */
const BODY_SK = "DELIVERY#BODY";
const ATTEMPT_PREFIX = "ATTEMPT#";
/** Attempt logs expire (DynamoDB TTL) this long after the attempt was sent. */
const ATTEMPT_LOG_RETENTION_DAYS = 30;
/**
 * The last attempt stays in the state item (`lastAttempt`) when its response excerpt and error
 * together take at most this many bytes, as most do (an empty body, `ok`, a short JSON answer, a
 * connection error); a larger one (up to the 4 KiB excerpt) goes to its own item at once. A
 * write costs a unit per started KB of the item it changes: a state of about 550 bytes when it
 * starts and about 710 with every mark of a retried, re-fired and leased delivery, plus about
 * 110 bytes of attempt around its text, stays under 1 KB with this much text.
 */
export const MAX_INLINE_ATTEMPT_TEXT_BYTES = 200;
/** The compressed body must leave room in the 400 KB item for the rest of the delivery. */
const MAX_STORED_BODY_BYTES = 300_000;
const BY_WORKFLOW = indexes.deliveriesByWorkflow;
/**
 * Deliveries one `GET /deliveries` request reads at most. A status filter drops deliveries after
 * they are read, so a page of a rare status among many would otherwise read on and on; at this
 * bound a request reads about 520 read units (half a unit for each delivery's state, and its
 * index keys) and answers within a second, a shorter page with a `nextToken` telling the client
 * to go on.
 */
export const LIST_READ_BUDGET = 1_000;
/**
 * What a list and a replay read of each delivery: what a list shows, what a replay decides by
 * (attempts made, which replay re-fired it), and the index key a page stops at. Never its
 * authentication, which holds secrets, nor anything a list does not show.
 */
const SUMMARY_ATTRIBUTES = [
  "pk",
  "sk",
  "deliveryId",
  "enrollmentId",
  "workflowId",
  "actionId",
  "objectType",
  "objectId",
  "method",
  "url",
  "status",
  "nextAttempt",
  "nextAttemptAt",
  "failureReason",
  "createdAt",
  "attemptCount",
  "replayedBy",
] as const;
const SUMMARY_PROJECTION: BatchProjection = {
  expression: SUMMARY_ATTRIBUTES.map((_, i) => `#s${i}`).join(", "),
  names: Object.fromEntries(SUMMARY_ATTRIBUTES.map((name, i) => [`#s${i}`, name])),
};
/** What delivery ids look like (`deliveryIdFor`); a page token naming anything else is forged. */
const DELIVERY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A page of a workflow's deliveries, newest first. */
export interface DeliveryPage {
  readonly deliveries: DeliverySummary[];
  readonly nextToken: string | null;
}

/** A delivery a replay may re-fire, as a replay reads it. */
export type ReplayCandidate = DeliverySummary & Pick<Delivery, "attemptCount" | "replayedBy">;

/**
 * Deliveries and their attempt logs, under the delivery id: the delivery's state (`DELIVERY`),
 * its body (`DELIVERY#BODY`, gzip-compressed, written once), and one item per attempt
 * (`ATTEMPT#0001`...), but for the last one, which the state keeps while it is small
 * (`lastAttempt`) and moves to its own item when the next attempt is recorded: a delivery that
 * ends at its first attempt writes no attempt item. The body lives apart because every attempt
 * updates the state (its lease and its outcome), and a write costs by the size of the item it
 * changes: kept apart, a small state costs one write unit per update whatever the size of the
 * record sent.
 *
 * A retrying delivery's state is in the open-work index, due by when its retry should have been
 * made (`deadlines`), and so is one re-fired by hand; the writes that move it keep its place
 * there. Until a delivery first retries, the enrollment that waits on it is what the sweeper
 * watches: most deliveries succeed at once, and so never pay for a place in the index.
 */
export class DeliveriesTable {
  private readonly openWork: OpenWorkIndex;

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly deadlines: OpenWorkDeadlines = new OpenWorkDeadlines(),
  ) {
    this.openWork = new OpenWorkIndex(documents, tableName);
  }

  /**
   * Stores a new delivery; false when it already exists (the action ran before). The body goes
   * first and only once: a delivery never exists without its body, and a second run of the action
   * never replaces the body the first run built. A body written for a delivery that turns out to
   * exist without one (a cancel recorded it failed before it was built: `preemption`) is taken
   * back.
   */
  async create(delivery: Delivery): Promise<boolean> {
    const { body, ...state } = delivery;
    let bodyWritten = false;
    if (body !== undefined) {
      const bodyGzip = gzipSync(body);
      if (bodyGzip.byteLength > MAX_STORED_BODY_BYTES) {
        throw new PayloadTooLargeError(
          `webhook body is ${Buffer.byteLength(body)} bytes (${bodyGzip.byteLength} compressed); at most ${MAX_STORED_BODY_BYTES} compressed bytes are stored`,
        );
      }
      bodyWritten = await this.putOnce({ pk: delivery.deliveryId, sk: BODY_SK, bodyGzip });
    }
    const created = await this.putOnce({ pk: delivery.deliveryId, sk: SK, ...state });
    if (!created && bodyWritten) await this.deleteBody(delivery.deliveryId);
    return created;
  }

  private async deleteBody(deliveryId: string): Promise<void> {
    await this.documents.send(
      new DeleteCommand({ TableName: this.tableName, Key: { pk: deliveryId, sk: BODY_SK } }),
    );
  }

  /**
   * Removes a delivery whose enrollment never started, while no attempt of it was recorded: the
   * API could hand its first attempt neither to the webhook lane nor to the workflow-steps lane,
   * and answers with an error. A delivery with an attempt recorded (its message went out after
   * all) is left to end as every delivery does; false then.
   */
  async discardUnattempted(deliveryId: string): Promise<boolean> {
    try {
      await this.documents.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: deliveryId, sk: SK },
          ConditionExpression: "#status = :pending AND attemptCount = :none",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":pending": "pending", ":none": 0 },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const state = await this.readState(deliveryId);
      if (state !== undefined) return false;
    }
    await this.deleteBody(deliveryId);
    return true;
  }

  /**
   * A delivery's state without its body, with the lease of an attempt in flight and its place in
   * the open-work index: what the sweeper and a manual retry decide on.
   */
  async readState(deliveryId: string): Promise<DeliveryState | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: deliveryId, sk: SK },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { rest, marks } = splitOpenWork(Item);
    return { delivery: toDelivery([rest]) as Delivery, leaseUntil: leaseOf(rest), marks };
  }

  /** Ids of open deliveries of one index shard due at `now` or before; see OpenWorkIndex. */
  overdue(shard: number, now: number, limit: number): Promise<string[]> {
    return this.openWork.overdue(shard, now, limit);
  }

  /**
   * Leaves an open delivery due again at `until` (counting a resume when the sweeper re-sent its
   * attempt), as long as it stands where it stood when read. StaleStateError otherwise.
   */
  async postponeSweep(delivery: Delivery, change: { until: number; resumed: boolean }) {
    await this.openWork.postpone({ pk: delivery.deliveryId, sk: SK }, change, standing(delivery));
  }

  /** Takes a delivery that has ended out of the open-work index. StaleStateError if it moved. */
  async clearSweep(delivery: Delivery): Promise<void> {
    await this.openWork.clear({ pk: delivery.deliveryId, sk: SK }, standing(delivery));
  }

  /**
   * Fails an open delivery for good with `reason`, unless it moved since it was read or an
   * attempt of it is in flight (StaleStateError). Its next attempt, if it comes, is skipped.
   */
  async failOpen(delivery: Delivery, reason: string, now: number): Promise<void> {
    const condition = standing(delivery);
    await conditionally(`delivery ${delivery.deliveryId} moved or has an attempt in flight`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: delivery.deliveryId, sk: SK },
          UpdateExpression: `SET #status = :failed, nextAttempt = :null, nextAttemptAt = :null, failureReason = :reason, updatedAt = :now REMOVE leaseUntil, leaseAttempt, ${ended.remove}`,
          ConditionExpression: `${condition.expression} AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)`,
          ExpressionAttributeNames: condition.names,
          ExpressionAttributeValues: {
            ...condition.values,
            ":failed": "failed",
            ":null": null,
            ":reason": reason,
            ":now": now,
          },
        }),
      ),
    );
  }

  /** A delivery with its body, in one query. */
  async get(deliveryId: string): Promise<Delivery | undefined> {
    return (await this.getForAttempt(deliveryId))?.delivery;
  }

  /**
   * A delivery with its body, the lease of an attempt in flight and its place in the open-work
   * index, in one query: what a consumer decides an attempt on.
   */
  async getForAttempt(deliveryId: string): Promise<DeliveryState | undefined> {
    const { Items } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :delivery)",
        ExpressionAttributeValues: { ":pk": deliveryId, ":delivery": SK },
        ConsistentRead: true,
      }),
    );
    const items = Items ?? [];
    const state = items.find((item) => item.sk === SK);
    const delivery = toDelivery(items);
    if (!state || !delivery) return undefined;
    const { marks } = splitOpenWork(state);
    return { delivery, leaseUntil: leaseOf(state), marks };
  }

  /** Puts an item unless one with its key exists; false when it did. */
  private async putOnce(item: Record<string, unknown>): Promise<boolean> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
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
    const delivery = toDelivery(items);
    if (!delivery) return undefined;
    const logged = items
      .filter((item) => String(item.sk).startsWith(ATTEMPT_PREFIX))
      .map(toAttempt);
    // A recording that stopped after moving the last attempt out leaves it in both places.
    const last = delivery.lastAttempt;
    const attempts = [
      ...logged.filter((attempt) => attempt.number !== last?.number),
      ...(last ? [last] : []),
    ].sort((a, b) => a.number - b.number);
    return { delivery, attempts };
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
   * Records an attempt and moves the delivery by the verdict, in one update of the state, only
   * while this consumer's lease on that attempt stands, or, for a first attempt made without a
   * lease (`leased: false`), while no consumer took one (StaleStateError otherwise). The attempt
   * goes into the state as its `lastAttempt` when small (`MAX_INLINE_ATTEMPT_TEXT_BYTES`), to its
   * own item first otherwise; the previous `lastAttempt`, as read with `delivery`, is moved to its
   * own item just before. Separate writes, not a transaction, which would cost twice as much: an
   * item written whose update then fails is written again, the same or replaced, by the lease's
   * next holder.
   */
  async recordAttempt(
    delivery: Delivery,
    attempt: Attempt,
    verdict: AttemptVerdict,
    now: number,
    options: { readonly leased: boolean } = { leased: true },
  ): Promise<void> {
    const openWork =
      verdict.status === "retrying"
        ? stillOpen(delivery.deliveryId, this.deadlines.retry(now, verdict.firesAt))
        : ended;
    const values: Record<string, unknown> = {
      ":attempt": attempt.number,
      ":status": verdict.status,
      ":now": now,
      ...openWork.values,
    };
    let set = `#status = :status, attemptCount = :attempt, updatedAt = :now${openWork.set}`;
    let remove = `leaseUntil, leaseAttempt, ${openWork.remove}`;
    const inline = fitsInState(attempt);
    if (inline) {
      set += ", lastAttempt = :lastAttempt";
      values[":lastAttempt"] = attempt;
    } else {
      remove += ", lastAttempt";
    }
    // The state must still hold the last attempt that was moved out, or none: then no attempt
    // the update replaces is lost.
    const previous = delivery.lastAttempt;
    const holdsPrevious =
      previous === undefined
        ? "attribute_not_exists(lastAttempt)"
        : "lastAttempt.#number = :previous";
    if (previous !== undefined) values[":previous"] = previous.number;
    if (verdict.status === "retrying") {
      set +=
        ", nextAttempt = :next, nextAttemptAt = :nextAt, firstFailedAt = :firstFailedAt, retryFiresAt = :firesAt";
      values[":firesAt"] = verdict.firesAt;
      values[":next"] = verdict.nextAttempt;
      values[":nextAt"] = verdict.nextAttemptAt;
      values[":firstFailedAt"] = verdict.firstFailedAt;
    } else {
      if (verdict.status === "succeeded" && verdict.outputResults) {
        set += ", outputResults = :outputResults";
        values[":outputResults"] = verdict.outputResults;
      }
      set += ", nextAttempt = :null, nextAttemptAt = :null, failureReason = :reason";
      values[":null"] = null;
      values[":reason"] = verdict.status === "failed" ? verdict.reason : null;
    }
    if (previous !== undefined) await this.logAttempt(delivery.deliveryId, previous);
    if (!inline) await this.logAttempt(delivery.deliveryId, attempt);
    await conditionally(
      `attempt ${attempt.number} of ${delivery.deliveryId} was recorded already`,
      () =>
        this.documents.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: delivery.deliveryId, sk: SK },
            UpdateExpression: `SET ${set} REMOVE ${remove}`,
            ConditionExpression: `nextAttempt = :attempt AND ${options.leased ? "leaseAttempt = :attempt" : "attribute_not_exists(leaseUntil)"} AND ${holdsPrevious}`,
            ExpressionAttributeNames: {
              "#status": "status",
              ...(previous === undefined ? {} : { "#number": "number" }),
            },
            ExpressionAttributeValues: values,
          }),
        ),
    );
  }

  /** Writes an attempt to its own item of the log, which expires with the log's retention. */
  private async logAttempt(deliveryId: string, attempt: Attempt): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: deliveryId,
          sk: attemptKey(attempt.number),
          ...attempt,
          expiresAt: Math.floor(attempt.sentAt / 1000) + ATTEMPT_LOG_RETENTION_DAYS * 86_400,
        },
      }),
    );
  }

  /** Replaces what the delivery says became of its outputs: the record did not take them. */
  async replaceOutputResults(deliveryId: string, results: readonly OutputResult[]): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: deliveryId, sk: SK },
        UpdateExpression: "SET outputResults = :results",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeValues: { ":results": results },
      }),
    );
  }

  /**
   * Makes an ended or retrying delivery due again now, as attempt `attemptCount + 1`.
   * A failed delivery gets one attempt (`once`); a retrying one keeps its retry policy.
   * StaleStateError when the delivery changed since it was read, or an attempt of it is in
   * flight: that attempt would otherwise be sent a second time, by the consumer this retry wakes.
   */
  async requestManualRetry(delivery: Delivery, now: number): Promise<number> {
    return this.makeDue(delivery, now, {
      retryMode: delivery.status === "failed" ? "once" : delivery.retryMode,
    });
  }

  /**
   * Makes a delivery that failed for good due again now for replay `replayId`, as attempt
   * `attemptCount + 1`: the retry policy starts over from that attempt, with a new 3-day window.
   * The delivery is marked with the replay, and a delivery the replay marked already is not made
   * due again. StaleStateError when the delivery changed since it was read, or was re-fired by this
   * replay already.
   */
  async requestReplay(
    delivery: Pick<Delivery, "deliveryId" | "status" | "attemptCount">,
    replayId: string,
    now: number,
  ): Promise<number> {
    return this.makeDue(delivery, now, { retryMode: "auto", replayId });
  }

  /** The one way a delivery is made due again: conditional on the status and attempts read. */
  private async makeDue(
    delivery: Pick<Delivery, "deliveryId" | "status" | "attemptCount">,
    now: number,
    change: { readonly retryMode: RetryMode; readonly replayId?: string },
  ): Promise<number> {
    const attempt = delivery.attemptCount + 1;
    const replay = change.replayId !== undefined;
    const openWork = stillOpen(delivery.deliveryId, this.deadlines.attempt(now));
    await conditionally(
      `delivery ${delivery.deliveryId} changed or has an attempt in flight; read it again`,
      () =>
        this.documents.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: delivery.deliveryId, sk: SK },
            UpdateExpression: `SET #status = :pending, retryMode = :mode, nextAttempt = :attempt, nextAttemptAt = :now, failureReason = :null, updatedAt = :now${replay ? ", firstFailedAt = :null, policyFromAttempt = :attempt, replayedBy = :replayId" : ""}${openWork.set} REMOVE leaseUntil, leaseAttempt, ${openWork.remove}`,
            ConditionExpression: `#status = :current AND attemptCount = :count AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)${replay ? " AND (attribute_not_exists(replayedBy) OR replayedBy <> :replayId)" : ""}`,
            ExpressionAttributeNames: { "#status": "status" },
            ExpressionAttributeValues: {
              ":pending": "pending",
              ":mode": change.retryMode,
              ":attempt": attempt,
              ":now": now,
              ":null": null,
              ":current": delivery.status,
              ":count": delivery.attemptCount,
              ...(replay ? { ":replayId": change.replayId } : {}),
              ...openWork.values,
            },
          }),
        ),
    );
    return attempt;
  }

  /**
   * The write that fails a pending or retrying delivery because its enrollment is cancelled, for
   * the cancel's transaction: conditional on the delivery standing where it was read, so the
   * cancel knows which scheduled retry to delete. An attempt in flight then records nothing.
   */
  cancellation(delivery: Pick<Delivery, "deliveryId" | "status" | "nextAttempt">, now: number) {
    return {
      Update: {
        TableName: this.tableName,
        Key: { pk: delivery.deliveryId, sk: SK },
        UpdateExpression: `SET #status = :failed, failureReason = :reason, nextAttempt = :null, nextAttemptAt = :null, updatedAt = :now REMOVE leaseUntil, leaseAttempt, ${ended.remove}`,
        ConditionExpression: "#status = :current AND nextAttempt = :next",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":failed": "failed",
          ":reason": ENROLLMENT_CANCELLED,
          ":null": null,
          ":now": now,
          ":current": delivery.status,
          ":next": delivery.nextAttempt,
        },
      },
    } satisfies TransactItem;
  }

  /**
   * For a cancel's transaction, while the webhook action it stops has no delivery yet: that
   * delivery, failed already (`failedDelivery`), put only if it still does not exist. A step that
   * read the enrollment before the cancel then finds the delivery there, ended, and sends nothing;
   * a delivery created between the cancel's read and its write makes the cancel read again.
   */
  preemption(delivery: Delivery) {
    const { body: _body, ...state } = delivery;
    return {
      Put: {
        TableName: this.tableName,
        Item: { pk: delivery.deliveryId, sk: SK, ...state },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    } satisfies TransactItem;
  }

  /**
   * One page of a workflow's deliveries, newest first, filtered by creation time and status. The
   * index holds keys only: each stretch of it is read, then the deliveries themselves, and the
   * status filter applies to what those say. A page may then be short and still have a next one:
   * a filtered page stops after `LIST_READ_BUDGET` deliveries read.
   */
  async listByWorkflow(query: DeliveryListQuery): Promise<DeliveryPage> {
    const window = {
      workflowId: query.workflowId,
      since: query.since ?? 0,
      until: query.until ?? Number.MAX_SAFE_INTEGER,
    };
    const { status } = query;
    const { items, next } = await this.readIndex({
      ...window,
      ...(status === undefined ? {} : { keep: (item) => item.status === status }),
      want: query.limit,
      budget: LIST_READ_BUDGET,
      startKey:
        query.nextToken === undefined
          ? undefined
          : decodePageToken(query.nextToken, (key) => indexKeyWithin(key, window)),
    });
    return { deliveries: items.map(toSummary), nextToken: encodePageToken(next) };
  }

  /**
   * The next stretch of a replay's deliveries, newest first, from `cursor`: those that failed for
   * good, and those this replay re-fired already (so a step run again finds the same ones). At
   * most `want` of them, reading at most `budget` deliveries.
   */
  async replayCandidates(
    selection: ReplaySelection,
    replayId: string,
    cursor: ReplayCursor | null,
    bounds: { readonly want: number; readonly budget: number },
  ): Promise<{ candidates: ReplayCandidate[]; cursor: ReplayCursor | undefined }> {
    const { items, next } = await this.readIndex({
      ...selection,
      keep: (item) => item.status === "failed" || item.replayedBy === replayId,
      ...bounds,
      startKey: cursor === null ? undefined : { ...cursor },
    });
    return {
      candidates: items.map((item) => toSummary(item) as ReplayCandidate),
      cursor: next,
    };
  }

  /**
   * Reads the workflow's deliveries created within [since, until], newest first, from
   * `startKey`, until `want` of them passed `keep` or `budget` were read; `next` is where a
   * following read starts, undefined when the index is exhausted. Each stretch of index keys is
   * followed by one BatchGetItem of their deliveries: eventually consistent, as the index itself
   * is, at half a read unit each. Unfiltered, a stretch is as long as the page needs; filtered,
   * stretches grow (doubling, up to what one BatchGetItem takes), so a page whose deliveries
   * mostly pass reads few more than it shows, and one of a rare status gets on quickly.
   */
  private async readIndex(input: {
    readonly workflowId: string;
    readonly since: number;
    readonly until: number;
    readonly keep?: (item: Record<string, unknown>) => boolean;
    readonly want: number;
    readonly budget: number;
    readonly startKey: PageKey | undefined;
  }): Promise<{ items: Record<string, unknown>[]; next: PageKey | undefined }> {
    const items: Record<string, unknown>[] = [];
    let startKey = input.startKey;
    let read = 0;
    let stretch = 0;
    do {
      const missing = input.want - items.length;
      stretch =
        input.keep === undefined
          ? missing
          : Math.min(BATCH_GET_MAX_KEYS, input.budget - read, Math.max(missing, stretch * 2));
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: BY_WORKFLOW.name,
          KeyConditionExpression:
            "workflowId = :workflowId AND createdAt BETWEEN :since AND :until",
          ExpressionAttributeValues: {
            ":workflowId": input.workflowId,
            ":since": input.since,
            ":until": input.until,
          },
          ScanIndexForward: false,
          Limit: stretch,
          ExclusiveStartKey: startKey,
        }),
      );
      const keys = page.Items ?? [];
      read += keys.length;
      const found = await this.deliveriesAt(keys);
      const kept = keys.flatMap((key) => {
        // A delivery the index names is there: the index is written after the table.
        const item = found.get(String(key.pk));
        return item !== undefined && (input.keep?.(item) ?? true) ? [{ key, item }] : [];
      });
      for (const [index, { key, item }] of kept.entries()) {
        items.push(item);
        if (items.length === input.want) {
          // A stretch may hold more than the page takes: the next page starts after this one,
          // unless nothing after it passed and the index ends with this stretch.
          const more = index < kept.length - 1 || page.LastEvaluatedKey !== undefined;
          return { items, next: more ? indexKeyOf(key) : undefined };
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && read < input.budget);
    return { items, next: startKey };
  }

  /** The summaries of the deliveries whose index keys these are, by delivery id. */
  private async deliveriesAt(
    keys: readonly Record<string, unknown>[],
  ): Promise<Map<string, Record<string, unknown>>> {
    const items = await batchGetItems(
      this.documents,
      this.tableName,
      keys.map((key) => ({ pk: key.pk, sk: key.sk })),
      { projection: SUMMARY_PROJECTION },
    );
    return new Map(items.map((item) => [String(item.pk), item]));
  }
}

/** A delivery's state, as `readState` and `getForAttempt` give it. */
export interface DeliveryState {
  /** With its body from `getForAttempt` only. */
  readonly delivery: Delivery;
  /** Until when a consumer holds the lease on an attempt (epoch ms), if one took it. */
  readonly leaseUntil: number | undefined;
  readonly marks: OpenWorkMarks;
}

/** Until when the state item's lease runs (epoch ms), if a consumer took one. */
function leaseOf(state: Record<string, unknown>): number | undefined {
  return typeof state.leaseUntil === "number" ? state.leaseUntil : undefined;
}

/** The delivery's state as read, so a sweeper's write never undoes a move. */
function standing(delivery: Delivery) {
  const next = delivery.nextAttempt;
  return {
    expression: `#status = :status AND attemptCount = :count${next === null ? "" : " AND nextAttempt = :next"}`,
    names: { "#status": "status" },
    values: {
      ":status": delivery.status,
      ":count": delivery.attemptCount,
      ...(next === null ? {} : { ":next": next }),
    },
  };
}

/** Whether an attempt is small enough to stay in the state item (`MAX_INLINE_ATTEMPT_TEXT_BYTES`). */
function fitsInState(attempt: Attempt): boolean {
  const text =
    Buffer.byteLength(attempt.responseBody ?? "", "utf8") +
    Buffer.byteLength(attempt.error ?? "", "utf8");
  return text <= MAX_INLINE_ATTEMPT_TEXT_BYTES;
}

function attemptKey(number: number): string {
  return `${ATTEMPT_PREFIX}${String(number).padStart(4, "0")}`;
}

/** The delivery among a query's items, with its body when the body item is among them. */
function toDelivery(items: readonly Record<string, unknown>[]): Delivery | undefined {
  const found = items.find((item) => item.sk === SK);
  if (!found) return undefined;
  const state = splitOpenWork(found).rest;
  const { pk: _pk, sk: _sk, leaseUntil: _lease, leaseAttempt: _leaseAttempt, ...rest } = state;
  const bodyGzip = items.find((item) => item.sk === BODY_SK)?.bodyGzip;
  const body = bodyGzip instanceof Uint8Array ? gunzipSync(bodyGzip).toString("utf8") : undefined;
  return { ...rest, ...(body === undefined ? {} : { body }) } as Delivery;
}

function toAttempt(item: Record<string, unknown>): Attempt {
  const { pk: _pk, sk: _sk, expiresAt: _expiresAt, ...attempt } = item;
  return attempt as unknown as Attempt;
}

/** The state of a delivery as a list shows it, from what a list reads of it. */
function toSummary(item: Record<string, unknown>): DeliverySummary {
  const { pk: _pk, sk: _sk, ...summary } = item;
  return summary as unknown as DeliverySummary;
}

/** The key of an index entry, where a read that stops after it starts again. */
function indexKeyOf(item: Record<string, unknown>): PageKey {
  const { partitionKey, sortKey } = BY_WORKFLOW;
  return {
    [partitionKey.name]: item[partitionKey.name],
    [sortKey.name]: item[sortKey.name],
    pk: item.pk,
    sk: item.sk,
  };
}

/** The key, if it is one the index could stop at within the window: anything else is forged. */
function indexKeyWithin(
  key: Readonly<Record<string, unknown>>,
  window: { readonly workflowId: string; readonly since: number; readonly until: number },
): PageKey | undefined {
  const { createdAt } = key;
  const fits =
    hasExactly(key, [BY_WORKFLOW.partitionKey.name, BY_WORKFLOW.sortKey.name, "pk", "sk"]) &&
    key.workflowId === window.workflowId &&
    key.sk === SK &&
    typeof key.pk === "string" &&
    DELIVERY_ID.test(key.pk) &&
    typeof createdAt === "number" &&
    Number.isSafeInteger(createdAt) &&
    createdAt >= window.since &&
    createdAt <= window.until;
  return fits ? { ...key } : undefined;
}
