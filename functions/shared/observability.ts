import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { metrics as metricDefinitions } from "#shared/contract";

/**
 * The one Logger and Metrics of a function. Service name and log level come from the POWERTOOLS_*
 * environment variables the stack (or the local runtime) sets.
 *
 * Traces come from Lambda's active tracing alone: each invocation's segment, with its
 * initialization and invocation times, linked to the API Gateway request or the queue message
 * that caused it (the AWS SDK passes the trace header on with every call). There is no tracer
 * library in the bundle, so calls to DynamoDB, SQS and Scheduler are not subsegments of their
 * own: the X-Ray SDK that would record them made up a quarter of each bundle and a good part of
 * its start-up time.
 */
export const logger = new Logger();
export const metrics = new Metrics({ namespace: metricDefinitions.namespace });

export const metricNames = metricDefinitions.names;

/** Flushes the invocation's metrics as one EMF line; an invocation that counted nothing prints nothing. */
export function publishMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
