import type {
  Context,
  DynamoDBBatchResponse,
  DynamoDBRecord,
  DynamoDBStreamEvent,
} from "aws-lambda";
import { logger, publishMetrics } from "#shared/observability";

/**
 * A Lambda handler for a DynamoDB stream with partial batch responses, as `sqs-consumer.ts` is for
 * a lane: every record of the batch is processed on its own, at once, and those that threw are
 * reported back by sequence number. Lambda resumes the shard at the first of them, so a change
 * that fails holds up only what follows it, and is retried. `startBatch` makes what the records
 * of one invocation share.
 *
 * Written out rather than taken from Powertools' batch processor: this is all of it that a stream
 * needs, and the processor would add 6 kB to the bundle of a function that is kept small.
 */
export function streamConsumer<Batch>(
  startBatch: () => Batch,
  processRecord: (record: DynamoDBRecord, batch: Batch) => Promise<void>,
): (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse> {
  return async (event, context) => {
    logger.addContext(context);
    try {
      const batch = startBatch();
      const results = await Promise.allSettled(
        event.Records.map((record) => processRecord(record, batch)),
      );
      return {
        batchItemFailures: results.flatMap((result, index) =>
          result.status === "rejected"
            ? // A record without a sequence number fails the whole batch, as Lambda reads it.
              [{ itemIdentifier: event.Records[index]?.dynamodb?.SequenceNumber ?? "" }]
            : [],
        ),
      };
    } finally {
      publishMetrics();
    }
  };
}
