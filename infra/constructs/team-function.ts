import { join } from "node:path";
import { type Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct, IConstruct } from "constructs";
import type { Lane } from "#infra/constructs/lanes";
import type { StateTable } from "#infra/constructs/state-tables";
import { aliasArguments, functionBundling, PROJECT_ROOT } from "#infra/function-bundling";
import { type IndexDefinition, metrics } from "#shared/contract";

/** Log levels Powertools Logger accepts through `POWERTOOLS_LOG_LEVEL`. */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How a function may use a table. */
export type TableAccess = "read" | "readWrite";

export interface TeamFunctionProps {
  /** The handler module, relative to the project root (`functions/<name>/handler.ts`). */
  readonly entry: string;
  /**
   * `POWERTOOLS_SERVICE_NAME`, and so the `service` dimension of every custom metric: keep it a
   * short lowercase word, one per function.
   */
  readonly serviceName: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly logRetention: RetentionDays;
  readonly logLevel: LogLevel;
  /** @default 512 (CPU scales with memory; 512 MB keeps TLS handshakes and JSON work quick) */
  readonly memorySize?: number;
  /**
   * Concurrency set aside for this function, and at the same time its ceiling. Lane consumers
   * need it so that a busy lane can neither starve nor be starved by the rest of the account.
   * @default - no reservation
   */
  readonly reservedConcurrency?: number;
}

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,29}$/;

/**
 * The team's Lambda function: the newest Node.js runtime, arm64, active tracing, an ESM bundle
 * built locally by esbuild (AWS SDK included), source maps, its own log group and role, and
 * Powertools configured through the environment.
 *
 * Grants and the environment variable that names the granted resource are always set together,
 * by {@link TeamFunction.useTable} and {@link TeamFunction.sendsTo}, so a function can never
 * learn of a resource it may not use, nor be allowed one it is not told about.
 */
export class TeamFunction extends NodejsFunction {
  /** The Powertools service name, also the `service` dimension of the metrics it emits. */
  readonly serviceName: string;
  /** Reserved concurrency, when the function has one. */
  readonly reservedConcurrency: number | undefined;
  /** The role the function runs with; it starts with nothing but writing to its own log group. */
  readonly executionRole: Role;
  private readonly tablesUsed = new Set<StateTable>();

  /** The role's policy, where grants land and where findings about them are acknowledged. */
  get rolePolicy(): IConstruct {
    return this.executionRole.node.findChild("DefaultPolicy");
  }

  constructor(scope: Construct, id: string, props: TeamFunctionProps) {
    if (!SERVICE_NAME.test(props.serviceName)) {
      throw new Error(
        `${id}: serviceName "${props.serviceName}" must be a short lowercase word (it becomes a metric dimension)`,
      );
    }
    if (
      props.reservedConcurrency !== undefined &&
      (!Number.isInteger(props.reservedConcurrency) || props.reservedConcurrency < 1)
    ) {
      throw new Error(`${id}: reservedConcurrency must be a positive whole number`);
    }
    // The log group and role are created before the function because it takes both as props;
    // they sit next to it in the tree, named after it.
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      // Logs expire by retention anyway; keeping orphaned groups after a stack is deleted only
      // leaves clutter behind.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // An explicit role instead of the default one: AWSLambdaBasicExecutionRole would let the
    // function write to every log group of the account.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Runs the ${props.serviceName} function`,
    });
    logGroup.grantWrite(role);

    super(scope, id, {
      entry: join(PROJECT_ROOT, props.entry),
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, "package-lock.json"),
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      tracing: Tracing.ACTIVE,
      logGroup,
      role,
      reservedConcurrentExecutions: props.reservedConcurrency,
      // The options live in function-bundling.ts, which the bundle report builds with too.
      bundling: {
        target: functionBundling.target,
        format: OutputFormat.ESM,
        mainFields: [...functionBundling.mainFields],
        minify: functionBundling.minify,
        sourceMap: functionBundling.sourcemap,
        sourcesContent: functionBundling.sourcesContent,
        // Pinned, tree-shaken clients instead of the runtime's SDK (the README says why).
        bundleAwsSDK: true,
        banner: functionBundling.banner,
        tsconfig: functionBundling.tsconfig,
        define: { ...functionBundling.define },
        esbuildArgs: aliasArguments(),
      },
      environment: {
        NODE_OPTIONS: "--enable-source-maps",
        ALLOW_PRIVATE_TARGETS: "false",
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: metrics.namespace,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        // Events carry client secrets and API keys (docs/contract.md, section 6): never copy them
        // into logs.
        POWERTOOLS_LOGGER_LOG_EVENT: "false",
      },
    });
    this.serviceName = props.serviceName;
    this.reservedConcurrency = props.reservedConcurrency;
    this.executionRole = role;

    Validations.of(this.rolePolicy).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "Active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions.",
    });
  }

  /** Lets the function use `table` and tells it the table's name, under the table's variable. */
  useTable(table: StateTable, access: TableAccess): void {
    if (access === "read") {
      table.grantReadData(this);
    } else {
      table.grantReadWriteData(this);
    }
    this.addEnvironment(table.definition.envVar, table.tableName);
    this.tablesUsed.add(table);
  }

  /**
   * Lets the function query one index of a table it uses; the index's name comes from the
   * contract, so there is no variable to set.
   */
  queriesIndex(table: StateTable, index: IndexDefinition): void {
    if (!this.tablesUsed.has(table)) {
      throw new Error(
        `${this.node.id}: grant the ${table.definition.name} table with useTable before its index ${index.name}`,
      );
    }
    table.grantQueryIndex(this, index);
  }

  /** Lets the function send messages to `lane` and tells it the queue URL. */
  sendsTo(lane: Lane): void {
    lane.grantSendMessages(this);
    this.addEnvironment(lane.definition.urlEnvVar, lane.queue.queueUrl);
  }
}
