/**
 * Domain errors. Each maps to one HTTP status in the API handler; SDK exceptions are turned into
 * these at the adapter edge.
 */

/** Input broke a rule: `field` is the JSON path of the offending value. */
export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(field ? `${field}: ${rule}` : rule);
  }
}

export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** The request conflicts with the current state (already enrolled, not retryable now...). */
export class ConflictError extends Error {
  override name = "ConflictError";
}

export class PayloadTooLargeError extends Error {
  override name = "PayloadTooLargeError";
}

export class UnsupportedMediaTypeError extends Error {
  override name = "UnsupportedMediaTypeError";
}

/** A conditional write lost: the state moved on since it was read. */
export class StaleStateError extends Error {
  override name = "StaleStateError";
}
