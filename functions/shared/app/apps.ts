import { randomBytes } from "node:crypto";
import type { AppsTable } from "#adapters/apps-table";
import { ConflictError, NotFoundError, StaleStateError } from "#domain/errors";
import type { RequestBody } from "#domain/request-schemas";
import { PREVIOUS_SECRET_LIFETIME_MS } from "#domain/workflow";

export interface AppsDeps {
  readonly apps: AppsTable;
  readonly now: () => number;
  readonly newId: () => string;
}

/** Registers a signing app; the secret is returned here and never again. */
export async function registerApp(deps: AppsDeps, input: RequestBody<"createApp">) {
  const app = {
    appId: deps.newId(),
    name: input.name,
    clientSecret: input.clientSecret ?? newClientSecret(),
    createdAt: deps.now(),
  };
  await deps.apps.create(app);
  return { appId: app.appId, name: app.name, clientSecret: app.clientSecret };
}

/** An app without its secret. */
export async function readApp(deps: Pick<AppsDeps, "apps">, appId: string) {
  const app = await deps.apps.get(appId);
  if (!app) throw new NotFoundError(`app ${appId} not found`);
  return { appId: app.appId, name: app.name };
}

/**
 * Gives an app a new client secret (the one given, or a generated one), shown here only. The
 * secret it replaces keeps signing, beside the new one, for a day, so receivers can switch.
 */
export async function rotateAppSecret(
  deps: AppsDeps,
  appId: string,
  input: RequestBody<"rotateSecret">,
) {
  const app = await deps.apps.get(appId);
  if (!app) throw new NotFoundError(`app ${appId} not found`);
  const clientSecret = input.clientSecret ?? newClientSecret();
  if (clientSecret === app.clientSecret) {
    throw new ConflictError("the new client secret must differ from the current one");
  }
  const previous = {
    secret: app.clientSecret,
    expiresAt: deps.now() + PREVIOUS_SECRET_LIFETIME_MS,
  };
  try {
    await deps.apps.replaceSecret(appId, app.clientSecret, clientSecret, previous);
  } catch (error) {
    if (error instanceof StaleStateError) {
      throw new ConflictError(`the secret of app ${appId} was rotated at the same time; try again`);
    }
    throw error;
  }
  return {
    appId,
    name: app.name,
    clientSecret,
    previousSecretExpiresAt: new Date(previous.expiresAt).toISOString(),
  };
}

/** 32 random bytes, URL-safe base64: printable ASCII without spaces, as the schema requires. */
function newClientSecret(): string {
  return randomBytes(32).toString("base64url");
}
