import type { DeliveriesTable, DeliveryState } from "#adapters/deliveries-table";
import type { WebhookLaneQueue } from "#adapters/lane-queues";
import { attemptMessage, type Delivery, deliveryListView, deliveryView } from "#domain/delivery";
import { ConflictError, NotFoundError, StaleStateError } from "#domain/errors";
import type { DeliveryListQuery } from "#domain/list-queries";

export interface DeliveriesDeps {
  readonly deliveries: DeliveriesTable;
  readonly webhookLane: WebhookLaneQueue;
  readonly now: () => number;
}

/** One delivery with its attempts. */
export async function readDelivery(deps: Pick<DeliveriesDeps, "deliveries">, deliveryId: string) {
  const found = await deps.deliveries.getWithAttempts(deliveryId);
  if (!found) throw new NotFoundError(`delivery ${deliveryId} not found`);
  return deliveryView(found.delivery, found.attempts);
}

/**
 * Re-fires a delivery now. A failed delivery gets one more attempt; a retrying one makes its
 * next attempt now instead of at its scheduled time, and keeps its retry policy. While an attempt
 * of the delivery is in flight it is refused (409): that attempt's outcome is not known yet, and
 * re-firing it would send the same attempt twice.
 */
export async function retryDelivery(deps: DeliveriesDeps, deliveryId: string) {
  const state = await deps.deliveries.readState(deliveryId);
  if (!state) throw new NotFoundError(`delivery ${deliveryId} not found`);
  const { delivery } = state;
  if (delivery.status !== "failed" && delivery.status !== "retrying") {
    throw new ConflictError(
      `delivery ${deliveryId} is ${delivery.status}; only failed or retrying deliveries can be retried`,
    );
  }
  if (delivery.attemptCount === 0 && delivery.status === "failed") {
    throw new ConflictError(
      `delivery ${deliveryId} was never sent because it could not be built (${delivery.failureReason}); it cannot be retried`,
    );
  }
  if (attemptInFlight(state, deps.now())) throw inFlightConflict(delivery);
  let attempt: number;
  try {
    attempt = await deps.deliveries.requestManualRetry(delivery, deps.now());
  } catch (error) {
    // An attempt that started after our read refuses the write too, as it should.
    if (error instanceof StaleStateError) {
      throw new ConflictError(
        `delivery ${deliveryId} changed while being retried (an attempt may be in flight); try again`,
      );
    }
    throw error;
  }
  await deps.webhookLane.send(attemptMessage(delivery, attempt));
  return readDelivery(deps, deliveryId);
}

/** A page of a workflow's deliveries, newest first, each without its attempts. */
export async function listDeliveries(
  deps: Pick<DeliveriesDeps, "deliveries">,
  query: DeliveryListQuery,
) {
  const page = await deps.deliveries.listByWorkflow(query);
  return { deliveries: page.deliveries.map(deliveryListView), nextToken: page.nextToken };
}

/** Whether a consumer holds the lease on an attempt of the delivery: the attempt is being made. */
function attemptInFlight(state: DeliveryState, now: number): boolean {
  return state.leaseUntil !== undefined && state.leaseUntil > now;
}

function inFlightConflict(delivery: Delivery): ConflictError {
  return new ConflictError(
    `attempt ${delivery.nextAttempt} of delivery ${delivery.deliveryId} is in flight; retry once it has been recorded`,
  );
}
