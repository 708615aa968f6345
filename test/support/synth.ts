import { readFileSync } from "node:fs";
import { App, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { addWorkflowWebhooks, settingsFromContext, WorkflowWebhooksStack } from "#infra/stack";

/** The context cdk.json gives `cdk synth`. */
const cdkContext: Record<string, unknown> = JSON.parse(
  readFileSync(new URL("../../cdk.json", import.meta.url), "utf8"),
).context;

export interface SynthOptions {
  /**
   * Bundle the functions with esbuild, as `cdk synth` does. Off unless a test reads the bundles:
   * most read the template or the construct tree only, and bundling is slow.
   */
  readonly bundling?: boolean;
  /** Run CloudFormation's own (slow) template checks. */
  readonly cloudFormationChecks?: boolean;
  /** Where the cloud assembly goes; CDK picks a temporary directory unless given. */
  readonly outdir?: string;
}

function appFromCdkJson(
  overrides: Record<string, unknown>,
  { bundling = false, cloudFormationChecks = false, outdir }: SynthOptions,
): App {
  return new App({
    outdir,
    context: {
      ...cdkContext,
      ...overrides,
      ...(bundling ? {} : { "aws:cdk:bundling-stacks": [] }),
    },
    builtinCloudFormationValidation: cloudFormationChecks,
  });
}

/** A synthesized stack and its template. */
export interface Synthesis {
  readonly stack: WorkflowWebhooksStack;
  readonly template: Template;
}

/** The stack as cdk.json configures it, with `overrides` on top, and its template. */
export function synthesize(
  overrides: Record<string, unknown> = {},
  options: SynthOptions = {},
): Synthesis {
  const app = appFromCdkJson(overrides, options);
  const stack = new WorkflowWebhooksStack(app, "WorkflowWebhooks", {
    settings: settingsFromContext(app.node),
  });
  return { stack, template: Template.fromStack(stack) };
}

let defaultSynthesis: Synthesis | undefined;

/**
 * The stack exactly as cdk.json configures it, synthesized once per test worker and shared by
 * every test file the worker runs. Read it only: a construct added to it would show up in every
 * other file's stack. Build into `scratchStack()` or a `synthesize()` of your own instead.
 */
export function synthesizeDefault(): Synthesis {
  defaultSynthesis ??= synthesize();
  return defaultSynthesis;
}

/**
 * The app as infra/app.ts builds it, cdk-nag included, with `overrides` on top of cdk.json.
 * Nothing is synthesized yet, so a test can add to the tree first.
 */
export function buildApp(overrides: Record<string, unknown> = {}, options: SynthOptions = {}): App {
  const app = appFromCdkJson(overrides, options);
  addWorkflowWebhooks(app);
  return app;
}

/** An empty stack in an app of its own, to build one construct in; bundling is off. */
export function scratchStack(): Stack {
  return new Stack(new App({ context: { "aws:cdk:bundling-stacks": [] } }), "Scratch");
}
