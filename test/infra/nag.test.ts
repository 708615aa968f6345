import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type App, Validations } from "aws-cdk-lib";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "#test/synth";

/** What synthesis reports: cdk-nag's findings, CDK's warnings and, when on, CloudFormation's. */
function validationReport(app: App): unknown[] {
  const assembly = app.synth();
  const report = readFileSync(join(assembly.directory, "validation-report.json"), "utf8");
  return JSON.parse(report).pluginReports;
}

/** `rule at path` for each finding, so that a failure names what to fix or acknowledge. */
function findings(app: IConstruct, pack = new AwsSolutionsChecks()): string[] {
  return pack
    .validateScope(app)
    .violations.flatMap((violation) =>
      violation.violatingResources.map(
        (resource) => `${violation.ruleName} at ${resource.constructPath}`,
      ),
    );
}

interface Acknowledgement {
  readonly path: string;
  readonly ruleId: string;
  readonly reason: string;
}

function acknowledgements(app: IConstruct): Acknowledgement[] {
  return app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          ruleId: id.replace(/^annotation::/i, ""),
          reason,
        })),
      ),
  );
}

/**
 * CloudFormation's template checks are slow: 30 to 60 s on two cores busy with other work, over
 * the default test timeout, and a timeout there says nothing about the template.
 */
const CLOUDFORMATION_CHECKS_TIMEOUT_MS = 120_000;

describe("synthesis", () => {
  it(
    "reports nothing from cdk-nag, CDK or CloudFormation's checks for the app as cdk.json configures it",
    () => {
      // Prepare
      const app = buildApp({}, { cloudFormationChecks: true });

      // Act
      const report = validationReport(app);

      // Assess
      expect(report).toEqual([]);
    },
    CLOUDFORMATION_CHECKS_TIMEOUT_MS,
  );

  it.each([
    [
      "a token authorizer",
      {
        apiAuthorization: "token",
        apiTokenAuthorizerArn: "arn:aws:lambda:eu-west-1:123456789012:function:tokens",
      },
    ],
    [
      "a Cognito user pool",
      {
        apiAuthorization: "cognito",
        apiUserPoolArn: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
        apiUserPoolClientIds: "4tq8r1ambh3n0s8lpv1h2v3m4n",
      },
    ],
    [
      "an alarm email and disposable tables",
      { alarmEmail: "oncall@example.com", tableDeletionProtection: false },
    ],
  ])("reports nothing with %s", (_name, context) => {
    // Prepare
    const app = buildApp(context);

    // Act
    const report = validationReport(app);

    // Assess
    expect(report).toEqual([]);
  });

  it("fails once a new cdk-nag finding appears", () => {
    // Prepare
    const app = buildApp();
    const stack = app.node.findChild("WorkflowWebhooks");
    new Queue(stack, "UnencryptedQueue", { encryption: QueueEncryption.UNENCRYPTED });

    // Act
    const synthesize = () => app.synth();

    // Assess
    expect(synthesize).toThrow(/AwsSolutions-SQS2[\s\S]*UnencryptedQueue/);
  });
});

describe("cdk-nag's acknowledged findings", () => {
  let app: App;

  beforeAll(() => {
    app = buildApp();
  });

  it("leave no finding unacknowledged", () => {
    // Act
    const found = findings(app);

    // Assess
    expect(found).toEqual([]);
  });

  it("each carry a written reason, next to a construct inside the stack", () => {
    // Act
    const found = acknowledgements(app);

    // Assess
    expect(found.length).toBeGreaterThan(0);
    for (const acknowledgement of found) {
      expect(acknowledgement.reason.length, acknowledgement.ruleId).toBeGreaterThanOrEqual(40);
      expect(acknowledgement.path.split("/").length, acknowledgement.ruleId).toBeGreaterThan(1);
    }
  });

  it("each excuse a finding that would otherwise be reported, at or under its construct", () => {
    // Prepare
    const pack = new AwsSolutionsChecks();
    // Turn acknowledgements off to see every finding the rules make.
    Object.assign(pack, { isAcknowledged: () => false });

    // Act
    const raw = findings(app, pack);

    // Assess
    for (const { path, ruleId } of acknowledgements(app)) {
      const excused = raw.filter(
        (finding) =>
          finding === `${ruleId} at ${path}` || finding.startsWith(`${ruleId} at ${path}/`),
      );
      expect(excused, `${ruleId} at ${path}`).not.toEqual([]);
    }
  });
});
