import { readFileSync } from "node:fs";

/**
 * Set by esbuild's `define` when the functions are bundled (`infra/function-bundling.ts`), to the
 * version in package.json, so that the bundles need not carry package.json to know it.
 */
declare const WORKFLOW_WEBHOOKS_VERSION: string | undefined;

/** The project's version, as package.json gives it; read from the file when running unbundled. */
export const PROJECT_VERSION: string =
  typeof WORKFLOW_WEBHOOKS_VERSION === "string"
    ? WORKFLOW_WEBHOOKS_VERSION
    : (
        JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
          version: string;
        }
      ).version;
