import { RemovalPolicy } from "aws-cdk-lib";
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  StreamViewType,
  Table,
  TableEncryption,
  TableGrants,
} from "aws-cdk-lib/aws-dynamodb";
import { Grant, type IGrantable } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import {
  type IndexDefinition,
  type KeyAttribute,
  type TableDefinition,
  type TableKey,
  tables,
} from "#shared/contract";

export interface StateTableProps {
  readonly definition: TableDefinition;
  /** Refuse deletes, and keep the table when the stack goes away. */
  readonly deletionProtection: boolean;
}

/**
 * One table of the system's state, built from its definition: on-demand, point-in-time recovery,
 * encrypted with the AWS managed key, `pk`/`sk` string keys, TTL where the definition names an
 * expiry attribute, and the definition's global secondary indexes and change stream.
 *
 * Its data grants cover the table's items only, not its indexes as CDK's grants do (with an
 * `index/*` wildcard): a function that lists through an index is granted that index by name
 * ({@link StateTable.grantQueryIndex}), and the others cannot read it.
 */
export class StateTable extends Table {
  readonly definition: TableDefinition;

  constructor(scope: Construct, id: string, props: StateTableProps) {
    super(scope, id, {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      // Traffic follows enrollments and receivers, not a steady rate: pay per request.
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The AWS managed key encrypts with KMS and logs key use in CloudTrail, without a key to
      // pay for or callers needing kms permissions of their own.
      encryption: TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: props.definition.ttlAttribute,
      deletionProtection: props.deletionProtection,
      removalPolicy: props.deletionProtection ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      ...(props.definition.stream === "NEW_AND_OLD_IMAGES"
        ? { stream: StreamViewType.NEW_AND_OLD_IMAGES }
        : {}),
    });
    this.definition = props.definition;
    for (const index of props.definition.indexes ?? []) {
      this.addGlobalSecondaryIndex(indexProps(index));
    }
  }

  /** Grants on the table's items alone: no index of it. */
  override get grants(): TableGrants {
    return TableGrants.fromTable(this, undefined, false);
  }

  /** Lets `grantee` query the index named in `index`, and no other. */
  grantQueryIndex(grantee: IGrantable, index: IndexDefinition): Grant {
    if (!this.definition.indexes?.some((declared) => declared.name === index.name)) {
      throw new Error(
        `${this.node.path}: the ${this.definition.name} table has no index ${index.name}`,
      );
    }
    return Grant.addToPrincipal({
      grantee,
      actions: ["dynamodb:Query"],
      resourceArns: [`${this.tableArn}/index/${index.name}`],
    });
  }
}

function keyAttribute(key: KeyAttribute) {
  return { name: key.name, type: key.type === "N" ? AttributeType.NUMBER : AttributeType.STRING };
}

function indexProps(index: IndexDefinition) {
  const { projection } = index;
  return {
    indexName: index.name,
    partitionKey: keyAttribute(index.partitionKey),
    ...(index.sortKey ? { sortKey: keyAttribute(index.sortKey) } : {}),
    ...(projection === "ALL"
      ? { projectionType: ProjectionType.ALL }
      : projection === "KEYS_ONLY"
        ? { projectionType: ProjectionType.KEYS_ONLY }
        : { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...projection] }),
  };
}

export interface StateTablesProps {
  /** Whether the tables refuse deletes and outlive the stack; off only for throwaway stacks. */
  readonly deletionProtection: boolean;
}

/** Every table of `tables` in functions/shared/contract.ts, by key. */
export class StateTables extends Construct {
  readonly tables: { readonly [K in TableKey]: StateTable };

  constructor(scope: Construct, id: string, props: StateTablesProps) {
    super(scope, id);
    const table = (definition: TableDefinition) =>
      new StateTable(this, tableConstructId(definition), {
        definition,
        deletionProtection: props.deletionProtection,
      });
    this.tables = {
      apps: table(tables.apps),
      workflows: table(tables.workflows),
      records: table(tables.records),
      enrollments: table(tables.enrollments),
      deliveries: table(tables.deliveries),
    };
  }
}

/** `apps` → `AppsTable`. */
function tableConstructId(definition: TableDefinition): string {
  return `${definition.name.charAt(0).toUpperCase()}${definition.name.slice(1)}Table`;
}
