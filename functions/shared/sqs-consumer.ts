import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { logger, publishMetrics } from "#shared/observability";

/**
 * A Lambda handler for an SQS lane with partial batch responses: each record is processed on its
 * own, and only the records that threw are reported back for retry, so one bad message never
 * fails its neighbours. A batch that fails whole is reported the same way rather than thrown,
 * so it does not count as a function error.
 */
export function sqsConsumer(
  processRecord: (record: SQSRecord) => Promise<void>,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const processor = new BatchProcessor(EventType.SQS);
  return async (event, context) => {
    logger.addContext(context);
    try {
      return await processPartialResponse(event, processRecord, processor, {
        context,
        throwOnFullBatchFailure: false,
      });
    } finally {
      publishMetrics();
    }
  };
}
