import { randomBytes } from "node:crypto";
import type { AppsTable } from "#adapters/apps-table";
import { NotFoundError } from "#domain/errors";
import type { RequestBody } from "#domain/request-schemas";

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
    clientSecret: input.clientSecret ?? randomBytes(32).toString("base64url"),
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
