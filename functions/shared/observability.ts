import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";
import { metrics as metricDefinitions } from "#shared/contract";

/**
 * The one Logger, Metrics and Tracer of a function. Service name, log level and sampling come
 * from the POWERTOOLS_* environment variables the stack (or the local runtime) sets.
 */
export const logger = new Logger();
export const metrics = new Metrics({ namespace: metricDefinitions.namespace });
export const tracer = new Tracer();

export const metricNames = metricDefinitions.names;

/** Flushes the invocation's metrics as one EMF line; an invocation that counted nothing prints nothing. */
export function publishMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
