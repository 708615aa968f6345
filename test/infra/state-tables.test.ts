import { Duration } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { StateTable } from "#infra/constructs/state-tables";
import { TeamFunction } from "#infra/constructs/team-function";
import { indexes, openWorkIndex, tables, WORKFLOWS_BY_TRIGGER_TYPE } from "#shared/contract";
import { scratchStack, synthesize, synthesizeDefault } from "#test/synth";

const { stack, template } = synthesizeDefault();

describe("the state tables", () => {
  it("are one per definition, on demand, with point-in-time recovery and KMS encryption", () => {
    // Act
    const found = Object.values(template.findResources("AWS::DynamoDB::Table"));

    // Assess
    expect(found).toHaveLength(Object.keys(tables).length);
    for (const table of found) {
      expect(table.Properties).toMatchObject({
        BillingMode: "PAY_PER_REQUEST",
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
      });
    }
  });

  it("expire attempt logs by TTL where the definition names an expiry attribute, and only there", () => {
    // Act
    const ttl = Object.values(template.findResources("AWS::DynamoDB::Table"))
      .map((table) => table.Properties.TimeToLiveSpecification)
      .filter((specification) => specification !== undefined);

    // Assess
    expect(ttl).toEqual([{ AttributeName: tables.deliveries.ttlAttribute, Enabled: true }]);
  });

  it("refuse deletion and outlive the stack by default", () => {
    // Act
    const found = Object.values(template.findResources("AWS::DynamoDB::Table"));

    // Assess
    for (const table of found) {
      expect(table.Properties.DeletionProtectionEnabled).toBe(true);
      expect(table.DeletionPolicy).toBe("Retain");
    }
  });

  it("can be made disposable with tableDeletionProtection=false", () => {
    // Act
    const disposable = synthesize({ tableDeletionProtection: "false" }).template;

    // Assess
    for (const table of Object.values(disposable.findResources("AWS::DynamoDB::Table"))) {
      expect(table.Properties.DeletionProtectionEnabled).toBe(false);
      expect(table.DeletionPolicy).toBe("Delete");
    }
  });

  it("have the indexes their definitions declare, each projecting only what its lists show", () => {
    for (const table of Object.values(stack.state.tables)) {
      // Act
      const resource =
        template.findResources("AWS::DynamoDB::Table")[
          stack.getLogicalId(table.node.defaultChild as never)
        ];
      const declared = table.definition.indexes ?? [];

      // Assess
      expect(resource?.Properties.GlobalSecondaryIndexes ?? []).toEqual(
        declared.map((index) => ({
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: "HASH" },
            ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: "RANGE" }] : []),
          ],
          Projection:
            index.projection === "ALL" || index.projection === "KEYS_ONLY"
              ? { ProjectionType: index.projection }
              : { ProjectionType: "INCLUDE", NonKeyAttributes: [...index.projection] },
        })),
      );
    }
    expect(tables.deliveries.indexes).toEqual([indexes.deliveriesByWorkflow, openWorkIndex]);
    // The writes of every attempt leave a keys-only index alone: its keys never change.
    expect(indexes.deliveriesByWorkflow.projection).toBe("KEYS_ONLY");
    expect(tables.workflows.indexes).toEqual([
      WORKFLOWS_BY_TRIGGER_TYPE,
      indexes.workflowsByCreation,
    ]);
  });

  it("refuse to grant an index a table does not have, or to a function not told of the table", () => {
    // Prepare
    const scope = scratchStack();
    const apps = new StateTable(scope, "Apps", {
      definition: tables.apps,
      deletionProtection: false,
    });
    const deliveries = new StateTable(scope, "Deliveries", {
      definition: tables.deliveries,
      deletionProtection: false,
    });
    const fn = new TeamFunction(scope, "Fn", {
      entry: "functions/api/handler.ts",
      serviceName: "api",
      description: "test",
      timeout: Duration.seconds(3),
      logRetention: RetentionDays.ONE_DAY,
      logLevel: "INFO",
    });

    // Act
    const onApps = () => apps.grantQueryIndex(fn, indexes.deliveriesByWorkflow);
    const untold = () => fn.queriesIndex(deliveries, indexes.deliveriesByWorkflow);

    // Assess
    expect(onApps).toThrow(/has no index byWorkflow/);
    expect(untold).toThrow(/useTable/);
  });
});
