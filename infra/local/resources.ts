import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import {
  enrollmentStream,
  type IndexDefinition,
  type QueueDefinition,
  type QueueKey,
  queues,
  type TableDefinition,
  type TableKey,
  tables,
  visibilityTimeoutSeconds,
} from "#shared/contract";

/** Dead-letter queues keep messages for SQS's maximum, 14 days, to leave time to look at them. */
const DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600;

export interface LocalQueue {
  readonly definition: QueueDefinition;
  readonly name: string;
  readonly url: string;
  readonly arn: string;
  readonly visibilityTimeoutSeconds: number;
  readonly deadLetterUrl: string;
  readonly deadLetterArn: string;
}

/** The enrollment function's stream and the queue where records it gave up on are described. */
export interface LocalEnrollmentStream {
  readonly streamArn: string;
  readonly onFailureQueueUrl: string;
  readonly onFailureQueueArn: string;
}

export interface LocalResources {
  readonly tables: Record<TableKey, string>;
  readonly queues: Record<QueueKey, LocalQueue>;
  readonly enrollmentStream: LocalEnrollmentStream;
  /** The variables through which the functions find these tables and queues. */
  readonly env: Record<string, string>;
}

export interface ResourceOptions {
  /** Put before every table and queue name, so several runtimes can share one DynamoDB Local. */
  readonly namePrefix?: string;
  /** Replaces each queue's visibility timeout (six times its consumer's timeout by default). */
  readonly visibilityTimeoutSeconds?: number;
}

/**
 * Creates every table (with its indexes) and queue of the definitions, each queue with its
 * dead-letter queue.
 */
export async function createResources(
  clients: { readonly dynamodb: DynamoDBClient; readonly sqs: SQSClient },
  options: ResourceOptions = {},
): Promise<LocalResources> {
  const prefix = options.namePrefix ?? "";
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) {
    throw new Error(
      `name prefix "${prefix}" may hold only letters, digits, "-" and "_" (SQS queue names allow no more)`,
    );
  }
  const tableEntries = await Promise.all(
    (Object.entries(tables) as [TableKey, TableDefinition][]).map(
      async ([key, definition]) =>
        [key, await createTable(clients.dynamodb, prefix + definition.name, definition)] as const,
    ),
  );
  const queueEntries = await Promise.all(
    (Object.entries(queues) as [QueueKey, QueueDefinition][]).map(
      async ([key, definition]) =>
        [key, await createQueue(clients.sqs, prefix, definition, options)] as const,
    ),
  );
  const tableNames = Object.fromEntries(tableEntries) as Record<TableKey, string>;
  const streamArn = await latestStreamArn(clients.dynamodb, tableNames[enrollmentStream.table]);
  const onFailure = await createAndDescribe(
    clients.sqs,
    prefix + enrollmentStream.onFailureQueue.name,
    {
      MessageRetentionPeriod: String(enrollmentStream.onFailureQueue.messageRetentionSeconds),
    },
  );
  const env: Record<string, string> = {};
  for (const [key, name] of tableEntries) env[tables[key].envVar] = name;
  for (const [, queue] of queueEntries) {
    env[queue.definition.urlEnvVar] = queue.url;
    if (queue.definition.arnEnvVar) env[queue.definition.arnEnvVar] = queue.arn;
  }
  return {
    tables: tableNames,
    queues: Object.fromEntries(queueEntries) as Record<QueueKey, LocalQueue>,
    enrollmentStream: {
      streamArn,
      onFailureQueueUrl: onFailure.url,
      onFailureQueueArn: onFailure.arn,
    },
    env,
  };
}

async function latestStreamArn(dynamodb: DynamoDBClient, tableName: string): Promise<string> {
  const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
  if (!Table?.LatestStreamArn) throw new Error(`table ${tableName} has no stream`);
  return Table.LatestStreamArn;
}

/** The key attributes of the table and of its indexes, each named once. */
function attributeDefinitions(indexes: readonly IndexDefinition[]): AttributeDefinition[] {
  const types = new Map<string, "S" | "N">([
    ["pk", "S"],
    ["sk", "S"],
  ]);
  for (const index of indexes) {
    for (const key of [index.partitionKey, index.sortKey]) {
      if (key) types.set(key.name, key.type);
    }
  }
  return [...types].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType }));
}

function globalSecondaryIndex(index: IndexDefinition): GlobalSecondaryIndex {
  const { projection } = index;
  return {
    IndexName: index.name,
    KeySchema: [
      { AttributeName: index.partitionKey.name, KeyType: "HASH" },
      ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: "RANGE" as const }] : []),
    ],
    Projection:
      typeof projection === "string"
        ? { ProjectionType: projection }
        : { ProjectionType: "INCLUDE", NonKeyAttributes: [...projection] },
  };
}

async function createTable(
  dynamodb: DynamoDBClient,
  name: string,
  definition: TableDefinition,
): Promise<string> {
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: name,
        AttributeDefinitions: attributeDefinitions(definition.indexes ?? []),
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        BillingMode: "PAY_PER_REQUEST",
        ...(definition.indexes?.length
          ? { GlobalSecondaryIndexes: definition.indexes.map(globalSecondaryIndex) }
          : {}),
        ...(definition.stream
          ? { StreamSpecification: { StreamEnabled: true, StreamViewType: definition.stream } }
          : {}),
      }),
    );
  } catch (error) {
    // A persistent DynamoDB Local may already hold the table from an earlier run: keep it.
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  if (definition.ttlAttribute) {
    const current = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: name }));
    if (current.TimeToLiveDescription?.TimeToLiveStatus !== "ENABLED") {
      await dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: definition.ttlAttribute, Enabled: true },
        }),
      );
    }
  }
  return name;
}

async function createQueue(
  sqs: SQSClient,
  prefix: string,
  definition: QueueDefinition,
  options: ResourceOptions,
): Promise<LocalQueue> {
  const name = prefix + definition.name;
  const size = String(definition.maximumMessageSizeBytes);
  const deadLetter = await createAndDescribe(sqs, `${name}-dlq`, {
    MessageRetentionPeriod: String(DEAD_LETTER_RETENTION_SECONDS),
    MaximumMessageSize: size,
  });
  const visibility = options.visibilityTimeoutSeconds ?? visibilityTimeoutSeconds(definition);
  const queue = await createAndDescribe(sqs, name, {
    VisibilityTimeout: String(visibility),
    MessageRetentionPeriod: String(definition.messageRetentionSeconds),
    MaximumMessageSize: size,
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: deadLetter.arn,
      maxReceiveCount: definition.maxReceiveCount,
    }),
  });
  return {
    definition,
    name,
    url: queue.url,
    arn: queue.arn,
    visibilityTimeoutSeconds: visibility,
    deadLetterUrl: deadLetter.url,
    deadLetterArn: deadLetter.arn,
  };
}

async function createAndDescribe(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  const { QueueUrl: url } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
  );
  if (!url) throw new Error(`SQS returned no URL for queue ${name}`);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS returned no ARN for queue ${name}`);
  return { url, arn };
}
