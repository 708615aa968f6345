import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { logger, publishMetrics } from "#shared/observability";

/**
 * A Lambda handler for an SQS lane with partial batch responses: every record of the batch is
 * processed on its own, at once, and only the records that threw are reported back for retry, by
 * message id, so one bad message never fails its neighbours. A batch that fails whole is reported
 * the same way rather than thrown, so it does not count as a function error.
 *
 * Written out rather than taken from Powertools' batch processor, as `stream-consumer.ts` is for
 * the stream: this is all of it that a lane needs, and the processor added 6 kB to the bundles of
 * both lane consumers.
 */
export function sqsConsumer(
  processRecord: (record: SQSRecord) => Promise<void>,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    logger.addContext(context);
    try {
      const results = await Promise.allSettled(
        // async, so that a record whose processing throws at once fails alone too.
        event.Records.map(async (record) => processRecord(record)),
      );
      return {
        batchItemFailures: results.flatMap((result, index) =>
          result.status === "rejected"
            ? [{ itemIdentifier: event.Records[index]?.messageId ?? "" }]
            : [],
        ),
      };
    } finally {
      publishMetrics();
    }
  };
}
