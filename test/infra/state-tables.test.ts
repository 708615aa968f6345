import { describe, expect, it } from "vitest";
import { tables } from "#shared/contract";
import { synthesize, synthesizeDefault } from "#test/synth";

const { template } = synthesizeDefault();

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
});
