import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type CfnElement, Duration } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { Runtime } from "aws-cdk-lib/aws-lambda";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TeamFunction } from "#infra/constructs/team-function";
import { esbuildOptions } from "#infra/function-bundling";
import type { WorkflowWebhooksStack } from "#infra/stack";
import { metrics, queues } from "#shared/contract";
import { scratchStack, synthesize } from "#test/synth";
import packageJson from "../../package.json" with { type: "json" };

let outdir: string;
let stack: WorkflowWebhooksStack;
let template: Template;

/** The stack as cdk.json configures it, bundled with esbuild as `cdk synth` bundles it. */
beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), "workflow-webhooks-synth-"));
  ({ stack, template } = synthesize({}, { bundling: true, outdir }));
});

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

type FunctionResource = {
  Properties: Record<string, unknown> & { Environment: { Variables: Record<string, unknown> } };
};

function functions(): Array<[string, TeamFunction, FunctionResource]> {
  return [
    stack.apiFunction,
    stack.engineFunction,
    stack.deliverFunction,
    stack.enrollFunction,
    stack.sweepFunction,
  ].map((fn) => [
    fn.serviceName,
    fn,
    template.findResources("AWS::Lambda::Function")[
      stack.getLogicalId(fn.node.defaultChild as CfnElement)
    ] as FunctionResource,
  ]);
}

/** The directory of the function's bundle in the cloud assembly. */
function bundleOf(resource: FunctionResource): string {
  const key = (resource.Properties.Code as { S3Key: string }).S3Key;
  return join(outdir, `asset.${key.replace(/\.zip$/, "")}`);
}

const newestNodeRuntime = Runtime.ALL.filter((runtime) => /^nodejs\d+\.x$/.test(runtime.name))
  .map((runtime) => runtime.name)
  .sort((a, b) => Number.parseInt(a.slice(6), 10) - Number.parseInt(b.slice(6), 10))
  .at(-1);

describe.each(["api", "engine", "deliver", "enroll", "sweep"])("the %s function", (service) => {
  function resourceOf(): FunctionResource {
    const found = functions().find(([name]) => name === service);
    if (found === undefined) throw new Error(`no ${service} function`);
    return found[2];
  }

  it("runs on the newest Node.js runtime Lambda offers, on arm64, with active tracing", () => {
    // Act
    const { Properties } = resourceOf();

    // Assess
    expect(Properties.Runtime).toBe(newestNodeRuntime);
    expect(Properties.Architectures).toEqual(["arm64"]);
    expect(Properties.TracingConfig).toEqual({ Mode: "Active" });
    expect(Properties.MemorySize).toBe(512);
    expect(Properties.Handler).toBe("index.handler");
  });

  it("logs to its own log group, kept for the configured retention", () => {
    // Prepare
    const fn = functions().find(([name]) => name === service)?.[1] as TeamFunction;
    const groupId = stack.getLogicalId(fn.logGroup.node.defaultChild as CfnElement);

    // Act
    const { Properties } = resourceOf();
    const group = template.findResources("AWS::Logs::LogGroup")[groupId];

    // Assess
    expect(Properties.LoggingConfig).toEqual({ LogGroup: { Ref: groupId } });
    expect(group?.Properties.RetentionInDays).toBe(30);
  });

  it("configures Powertools, source maps and the private-target guard through its environment", () => {
    // Act
    const variables = resourceOf().Properties.Environment.Variables;

    // Assess
    expect(variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: service,
      POWERTOOLS_METRICS_NAMESPACE: metrics.namespace,
      POWERTOOLS_LOG_LEVEL: "INFO",
      POWERTOOLS_LOGGER_LOG_EVENT: "false",
      NODE_OPTIONS: "--enable-source-maps",
      ALLOW_PRIVATE_TARGETS: "false",
    });
  });

  it("is one minified ES module with the AWS SDK inside, a createRequire banner and a source map", () => {
    // Prepare
    const bundle = bundleOf(resourceOf());

    // Act
    const code = readFileSync(join(bundle, "index.mjs"), "utf8");
    const map = JSON.parse(readFileSync(join(bundle, "index.mjs.map"), "utf8"));

    // Assess
    expect(code.startsWith("import { createRequire as topLevelCreateRequire }")).toBe(true);
    expect(code).toMatch(/export\s*\{[^}]*\bas handler\b[^}]*\}/);
    expect(code).not.toMatch(/from\s*"@aws-sdk\//);
    expect(code).toContain("//# sourceMappingURL=index.mjs.map");
    expect(map.sourcesContent).toBeUndefined();
    // Minified code sits on a few very long lines (license comments follow it): most of the
    // bundle is in lines of over 10,000 characters, where readable code has none.
    const long = code.split("\n").filter((line) => line.length > 10_000);
    expect(long.reduce((sum, line) => sum + line.length, 0)).toBeGreaterThan(code.length / 2);
  });

  it("is the bundle the bundle report builds, byte for byte", async () => {
    // Prepare
    const deployed = readFileSync(join(bundleOf(resourceOf()), "index.mjs"), "utf8");
    const outfile = join(outdir, `report-${service}`, "index.mjs");

    // Act
    await build(esbuildOptions(`functions/${service}/handler.ts`, outfile));

    // Assess
    expect(readFileSync(outfile, "utf8")).toBe(deployed);
  });

  it("takes its AWS credentials from the environment only, without the STS and SSO clients", () => {
    // Act
    const code = readFileSync(join(bundleOf(resourceOf()), "index.mjs"), "utf8");

    // Assess
    expect(code).toContain("Unable to find environment variable credentials");
    expect(code).not.toContain("AssumeRoleWithWebIdentity");
    expect(code).not.toContain("GetRoleCredentials");
  });

  it("leaves out the SDK's event-stream codec, which none of its clients needs", () => {
    // Act
    const code = readFileSync(join(bundleOf(resourceOf()), "index.mjs"), "utf8");

    // Assess: the codec names the headers of every event-stream message
    expect(code).toContain("EventStreamsNotBundledError");
    expect(code).not.toContain(":message-type");
  });

  it("carries zod only if it validates requests, as the API does", () => {
    // Act
    const code = readFileSync(join(bundleOf(resourceOf()), "index.mjs"), "utf8");

    // Assess: every zod schema has a `_zod` member, whatever the minifier names the rest
    expect(code.includes("_zod")).toBe(service === "api");
  });

  it("knows the project's version without carrying package.json", () => {
    // Act
    const code = readFileSync(join(bundleOf(resourceOf()), "index.mjs"), "utf8");

    // Assess
    expect(code).not.toContain(packageJson.description);
    expect(code).not.toContain("../../package.json");
  });

  it("starts with exactly the environment the stack gives it", async () => {
    // Prepare
    const bundle = bundleOf(resourceOf());
    const variables = Object.fromEntries(
      Object.entries(resourceOf().Properties.Environment.Variables).map(([name, value]) => [
        name,
        // Resource references resolve at deploy time; any plausible value will do here.
        typeof value === "string" ? value : placeholderFor(name),
      ]),
    );

    // Act
    const run = promisify(execFile)(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "const m = await import('./index.mjs'); console.log(typeof m.handler);",
      ],
      {
        cwd: bundle,
        env: { PATH: process.env.PATH, AWS_REGION: "eu-west-1", ...variables, NODE_OPTIONS: "" },
      },
    );

    // Assess
    await expect(run).resolves.toMatchObject({ stdout: "function\n" });
  });
});

function placeholderFor(name: string): string {
  if (name.endsWith("_URL")) return "https://sqs.eu-west-1.amazonaws.com/123456789012/queue";
  if (name.endsWith("ROLE_ARN")) return "arn:aws:iam::123456789012:role/retries";
  if (name.endsWith("_ARN")) return "arn:aws:sqs:eu-west-1:123456789012:queue";
  return `placeholder-${name.toLowerCase()}`;
}

describe("the team function's constructor", () => {
  function create(overrides: { serviceName?: string; reservedConcurrency?: number }) {
    const scope = scratchStack();
    return () =>
      new TeamFunction(scope, "Fn", {
        entry: "functions/engine/handler.ts",
        serviceName: overrides.serviceName ?? "engine",
        description: "engine",
        timeout: Duration.seconds(queues.workflowSteps.consumerTimeoutSeconds),
        logRetention: RetentionDays.ONE_WEEK,
        logLevel: "INFO",
        reservedConcurrency: overrides.reservedConcurrency,
      });
  }

  it("refuses a service name that would make a poor metric dimension", () => {
    // Act
    const construct = create({ serviceName: "Workflow Engine #1" });

    // Assess
    expect(construct).toThrow(/serviceName "Workflow Engine #1" must be a short lowercase word/);
  });

  it("refuses a reserved concurrency of zero, which would stop the function", () => {
    // Act
    const construct = create({ reservedConcurrency: 0 });

    // Assess
    expect(construct).toThrow(/reservedConcurrency must be a positive whole number/);
  });
});
