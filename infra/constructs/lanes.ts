import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { TeamFunction } from "#infra/constructs/team-function";
import {
  type QueueDefinition,
  VISIBILITY_TIMEOUT_FACTOR,
  visibilityTimeoutSeconds,
} from "#shared/contract";

/** Lambda's bounds for `maxConcurrency` of an SQS event source mapping. */
export const MAX_CONCURRENCY_RANGE = { min: 2, max: 1000 } as const;

/** The longest SQS keeps a message; dead letters stay this long so there is time to redrive. */
const DEAD_LETTER_RETENTION = Duration.days(14);

export interface LaneProps {
  /** The queue's definition in functions/shared/contract.ts. */
  readonly definition: QueueDefinition;
  /** The function that consumes the lane; it must have reserved concurrency. */
  readonly consumer: TeamFunction;
  /** The most consumer invocations the event source mapping runs at once. */
  readonly maxConcurrency: number;
}

/**
 * A traffic lane: an encrypted, SSL-only SQS queue with its dead-letter queue, and the event
 * source mapping that feeds it to its consumer with partial batch responses and a concurrency cap.
 *
 * The constructor refuses a consumer that could outlive the queue's visibility timeout (the
 * message would be delivered twice) or whose reserved concurrency is below the mapping's cap
 * (the surplus invocations would be throttled, and throttled messages end in the DLQ).
 */
export class Lane extends Construct {
  readonly definition: QueueDefinition;
  /** Encrypts the queue and its DLQ; whoever sends to the lane needs to use it. */
  readonly encryptionKey: Key;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly consumer: TeamFunction;
  readonly maxConcurrency: number;

  constructor(scope: Construct, id: string, props: LaneProps) {
    validateLane(id, props);
    super(scope, id);
    const { definition, consumer, maxConcurrency } = props;

    this.definition = definition;
    this.consumer = consumer;
    this.maxConcurrency = maxConcurrency;
    this.encryptionKey = new Key(this, "Key", {
      description: `Encrypts the ${definition.name} queue and its dead-letter queue`,
      enableKeyRotation: true,
      // Nothing outlives the queues it encrypts.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
      maxMessageSizeBytes: definition.maximumMessageSizeBytes,
    });
    this.queue = new Queue(this, "Queue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(definition)),
      retentionPeriod: Duration.seconds(definition.messageRetentionSeconds),
      maxMessageSizeBytes: definition.maximumMessageSizeBytes,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
    });
    consumer.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: definition.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency,
      }),
    );
  }

  /**
   * Lets `grantee` send to the lane and nothing else: `sqs:SendMessage` on the queue, and the
   * two key operations SQS performs on the sender's behalf.
   */
  grantSendMessages(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ["sqs:SendMessage"],
      resourceArns: [this.queue.queueArn],
    }).combine(this.encryptionKey.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt"));
  }
}

function validateLane(id: string, props: LaneProps): void {
  const { definition, consumer, maxConcurrency } = props;
  const { min, max } = MAX_CONCURRENCY_RANGE;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < min || maxConcurrency > max) {
    throw new Error(
      `${id}: maxConcurrency must be a whole number from ${min} to ${max}, got ${maxConcurrency}`,
    );
  }
  const consumerTimeout = consumer.timeout?.toSeconds() ?? 3;
  if (consumerTimeout * VISIBILITY_TIMEOUT_FACTOR > visibilityTimeoutSeconds(definition)) {
    throw new Error(
      `${id}: the consumer's timeout (${consumerTimeout} s) exceeds the lane's consumerTimeoutSeconds ` +
        `(${definition.consumerTimeoutSeconds} s); the visibility timeout must be at least ` +
        `${VISIBILITY_TIMEOUT_FACTOR} times the function timeout`,
    );
  }
  if (consumer.reservedConcurrency === undefined) {
    throw new Error(
      `${id}: the consumer needs reserved concurrency, or a busy lane can starve every other function`,
    );
  }
  if (consumer.reservedConcurrency < maxConcurrency) {
    throw new Error(
      `${id}: the consumer's reserved concurrency (${consumer.reservedConcurrency}) is below ` +
        `maxConcurrency (${maxConcurrency}); the surplus invocations would be throttled`,
    );
  }
  if (definition.messageRetentionSeconds >= DEAD_LETTER_RETENTION.toSeconds()) {
    throw new Error(
      `${id}: messageRetentionSeconds must be shorter than the dead-letter queue's 14 days, ` +
        "or dead letters expire before anyone can redrive them",
    );
  }
}
