/**
 * The functions as the CDK stack deploys them (memory, environment), read from the synthesized
 * template, so the benchmark prices and starts them as deployed rather than as assumed.
 */
import { synthesize } from "#test/synth";

export interface DeployedFunction {
  /** POWERTOOLS_SERVICE_NAME, which is also the function's folder under `functions/`. */
  readonly service: string;
  readonly memoryMb: number;
  readonly architecture: string;
  readonly runtime: string;
  /** Its variables; values the stack fills in at deploy time (names, URLs, ARNs) are tokens. */
  readonly environment: Record<string, unknown>;
}

interface FunctionResource {
  readonly Properties: {
    readonly MemorySize?: number;
    readonly Architectures?: string[];
    readonly Runtime?: string;
    readonly Environment?: { readonly Variables?: Record<string, unknown> };
  };
}

/** Lambda's default when a function sets no memory. */
const LAMBDA_DEFAULT_MEMORY_MB = 128;

/** The stack's own functions (those with a Powertools service name), synthesized without bundling. */
export function deployedFunctions(): DeployedFunction[] {
  const { template } = synthesize();
  const resources = template.findResources("AWS::Lambda::Function") as Record<
    string,
    FunctionResource
  >;
  return Object.values(resources).flatMap(({ Properties: properties }) => {
    const environment = properties.Environment?.Variables ?? {};
    const service = environment.POWERTOOLS_SERVICE_NAME;
    if (typeof service !== "string") return [];
    return [
      {
        service,
        memoryMb: properties.MemorySize ?? LAMBDA_DEFAULT_MEMORY_MB,
        architecture: properties.Architectures?.[0] ?? "x86_64",
        runtime: properties.Runtime ?? "unknown",
        environment,
      },
    ];
  });
}
