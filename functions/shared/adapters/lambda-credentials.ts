/**
 * The AWS credentials of a function on Lambda, which come from the environment and nowhere else:
 * Lambda sets `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` from the
 * execution role before the function starts, and the SDK's default chain takes exactly these at
 * its first link. The rest of that chain (profiles, SSO, credential processes, web identity,
 * container and instance metadata) never runs on Lambda, yet it bundles STS, SSO and sign-in
 * clients of its own. So the function bundles alias `@aws-sdk/credential-provider-node` to this
 * module (`infra/function-bundling.ts`); the tests and the local runtime run unbundled and keep
 * the whole chain. Should a function ever run where credentials come another way, it fails at its
 * first AWS call with "Unable to find environment variable credentials", and the alias must go.
 */
import { type FromEnvInit, fromEnv } from "@aws-sdk/credential-provider-env";

/** Stands in for the SDK's `defaultProvider`: the credentials in the environment. */
export function defaultProvider(init?: FromEnvInit): ReturnType<typeof fromEnv> {
  return fromEnv(init);
}
