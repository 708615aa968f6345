import { Duration, Validations } from "aws-cdk-lib";
import { Grant } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { FilterCriteria, FilterRule, StartingPosition } from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { StateTable } from "#infra/constructs/state-tables";
import type { TeamFunction } from "#infra/constructs/team-function";
import type { StreamConsumerDefinition } from "#shared/contract";

/** Lambda's bound on retries of a stream batch. */
const MAX_RETRY_ATTEMPTS = 10_000;

export interface EnrollmentStreamProps {
  /** How the stream is read, from functions/shared/contract.ts. */
  readonly definition: StreamConsumerDefinition;
  /** The table whose stream feeds the function; it must have one. */
  readonly table: StateTable;
  /** The function the stream feeds. */
  readonly consumer: TeamFunction;
  /** Encrypts the on-failure queue; the stack gives it the workflow-steps lane's key. */
  readonly encryptionKey: IKey;
}

/**
 * A function fed by a table's change stream: the event source mapping reads it in batches from
 * the oldest record kept (a mapping created again misses nothing, and the function is
 * idempotent), lets only items of the definition's sort keys through, takes partial batch
 * responses, bisects a failing batch on each retry, bounds retries and record age, and sends a
 * description of what it gave up on to an on-failure queue, which has an alarm in Monitoring.
 */
export class EnrollmentStream extends Construct {
  readonly definition: StreamConsumerDefinition;
  readonly consumer: TeamFunction;
  /** Lambda's descriptions of stream records the function gave up on (not the records). */
  readonly onFailureQueue: Queue;

  constructor(scope: Construct, id: string, props: EnrollmentStreamProps) {
    validateEnrollmentStream(id, props);
    super(scope, id);
    const { definition, table, consumer } = props;
    this.definition = definition;
    this.consumer = consumer;

    this.onFailureQueue = new Queue(this, "OnFailureQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(definition.onFailureQueue.messageRetentionSeconds),
    });
    Validations.of(this.onFailureQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself the dead-letter destination of the stream's event source mapping; nothing consumes it that could fail.",
    });

    // Lambda sends on-failure descriptions with the function's role: SendMessage on the queue and
    // the two key operations SQS performs for a sender, rather than the wildcards of grantSendMessages.
    Grant.addToPrincipal({
      grantee: consumer,
      actions: ["sqs:SendMessage"],
      resourceArns: [this.onFailureQueue.queueArn],
    });
    props.encryptionKey.grant(consumer, "kms:GenerateDataKey", "kms:Decrypt");
    Validations.of(consumer.rolePolicy).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "Active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, and the stream's event source mapping dynamodb:ListStreams; none supports resource-level permissions.",
    });
    consumer.addEventSource(
      new DynamoEventSource(table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: definition.batchSize,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: definition.retryAttempts,
        maxRecordAge: Duration.seconds(definition.maxRecordAgeSeconds),
        onFailure: { bind: () => ({ destination: this.onFailureQueue.queueArn }) },
        filters: [
          FilterCriteria.filter({
            dynamodb: { Keys: { sk: { S: FilterRule.or(...definition.sortKeys) } } },
          }),
        ],
      }),
    );
  }
}

function validateEnrollmentStream(id: string, props: EnrollmentStreamProps): void {
  const { definition, table, consumer } = props;
  if (table.definition.stream === undefined) {
    throw new Error(`${id}: the ${table.definition.name} table has no stream to read`);
  }
  if (table.definition.name !== definition.table) {
    throw new Error(
      `${id}: the definition reads the ${definition.table} table's stream, not the ${table.definition.name} table's`,
    );
  }
  const timeout = consumer.timeout?.toSeconds() ?? 3;
  if (timeout > definition.consumerTimeoutSeconds) {
    throw new Error(
      `${id}: the consumer's timeout (${timeout} s) exceeds consumerTimeoutSeconds (${definition.consumerTimeoutSeconds} s)`,
    );
  }
  if (
    !Number.isInteger(definition.retryAttempts) ||
    definition.retryAttempts < 0 ||
    definition.retryAttempts > MAX_RETRY_ATTEMPTS
  ) {
    throw new Error(
      `${id}: retryAttempts must be a whole number from 0 to ${MAX_RETRY_ATTEMPTS}; unbounded retries let one poison record hold its shard up`,
    );
  }
  if (definition.sortKeys.length === 0) {
    throw new Error(`${id}: sortKeys must name at least one sort key, or no change gets through`);
  }
}
