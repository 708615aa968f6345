import { StaleStateError } from "#domain/errors";

/** True when a write lost its condition (alone or inside a transaction). */
export function isConditionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "ConditionalCheckFailedException") return true;
  if (error.name === "TransactionCanceledException") {
    const reasons = (error as Error & { CancellationReasons?: Array<{ Code?: string }> })
      .CancellationReasons;
    return reasons?.some((reason) => reason.Code === "ConditionalCheckFailed") ?? false;
  }
  return false;
}

/**
 * True when DynamoDB refused the request as invalid (an item over its size limit, a value it cannot
 * hold): the same request would be refused again, so it is no reason to retry.
 */
export function isRefusedRequest(error: unknown): boolean {
  return error instanceof Error && error.name === "ValidationException";
}

/** Runs a conditional write; a lost condition becomes a StaleStateError with `what`. */
export async function conditionally<T>(what: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isConditionFailure(error)) throw new StaleStateError(what);
    throw error;
  }
}
