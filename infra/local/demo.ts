/**
 * `npm run demo`: the whole story on this machine in under a minute. Starts the local system and
 * a receiver that prints every webhook, then registers a signing app, makes a contact with
 * history, a workflow (a signed webhook, then a setProperty), enrolls the contact, lets the
 * receiver fail twice, and shows the retries and the final state on a compressed clock. Stops
 * everything it started and exits. Settings: RETRY_TIME_SCALE (0.01: a minute takes 0.6 s).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noteOldNode } from "./node-version.ts";
import { type LocalRuntime, startLocalRuntime } from "./runtime.ts";
import {
  describeWebhook,
  receiverCertificate,
  startWebhookReceiver,
  type WebhookReceiver,
} from "./webhook-receiver.ts";

/** A minute of the retry policy takes 0.6 s: slow enough to follow, fast enough to wait for. */
const DEFAULT_TIME_SCALE = 0.01;
/** The receiver answers 503 this many times, so the enrollment shows two retries. */
const FAILURES = 2;
/** Far more than three attempts need on the compressed clock, even on a busy machine. */
const FINISH_TIMEOUT_MS = 60_000;
const POLL_MS = 100;

class DemoError extends Error {
  override name = "DemoError";
}

let step = 0;
const STEPS = 6;
const say = (text: string) => console.log(`\n[${++step}/${STEPS}] ${text}`);
const note = (text: string) => console.log(`      ${text}`);

async function main(): Promise<number> {
  const timeScale = Number(process.env.RETRY_TIME_SCALE || DEFAULT_TIME_SCALE);
  if (!Number.isFinite(timeScale) || timeScale <= 0) {
    console.error(
      `RETRY_TIME_SCALE must be a positive number, got "${process.env.RETRY_TIME_SCALE}"`,
    );
    return 1;
  }
  noteOldNode();
  const certificateDir = mkdtempSync(join(tmpdir(), "workflow-webhooks-demo-"));
  let receiver: WebhookReceiver | undefined;
  let runtime: LocalRuntime | undefined;
  const stop = async () => {
    await receiver?.close();
    await runtime?.stop();
    rmSync(certificateDir, { recursive: true, force: true });
  };
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
    console.log("\nInterrupted: stopping everything...");
    stop().finally(() => process.exit(130));
  });

  try {
    say("Starting the local system and a webhook receiver on 127.0.0.1");
    const clientSecret = randomBytes(24).toString("base64url");
    const certificate = receiverCertificate(certificateDir);
    // The delivery client reads the trusted certificates when the handlers load, below.
    process.env.NODE_EXTRA_CA_CERTS = certificate.certFile;
    receiver = await startWebhookReceiver({
      certificate,
      port: 0,
      secrets: { clientSecret },
      failFirst: FAILURES,
      onWebhook: (webhook) => console.log(`\n${indent(describeWebhook(webhook))}`),
    });
    runtime = await startLocalRuntime({ port: 0, timeScale, logLevel: "SILENT" });
    note(`API:      ${runtime.apiUrl}   (DynamoDB Local pid ${runtime.dynamoDbLocalPid})`);
    note(`receiver: ${receiver.url}   (answers 503 to the first ${FAILURES} attempts)`);
    note(`clock:    1 minute of retry delay takes ${(60 * timeScale).toFixed(2)} s`);
    const api = client(runtime.apiUrl);

    say("Registering a signing app and a contact with history");
    const app = await api<{ appId: string }>("POST", "/apps", { name: "Demo CRM", clientSecret });
    note(`app ${app.appId}; its client secret signs every webhook (X-HubSpot-Signature v2, v3)`);
    await api("PUT", "/objects/contacts/101", {
      properties: { email: "old@example.com", firstname: "Ada" },
    });
    await api("PUT", "/objects/contacts/101", { properties: { email: "ada@example.com" } });
    note("contact 101: email set twice (so it has history), firstname Ada");

    say("Creating a workflow: a signed webhook, then setProperty synced_to_crm=true");
    const workflow = await api<{ id: string }>("POST", "/workflows", {
      name: "Send new leads to the CRM",
      objectType: "contacts",
      actions: [
        {
          type: "webhook",
          url: `${receiver.url}/hooks/lead?source=demo`,
          authentication: { type: "signature", appId: app.appId },
        },
        { type: "setProperty", property: "synced_to_crm", value: "true" },
      ],
    });
    note(`workflow ${workflow.id}`);

    say("Enrolling contact 101; the receiver prints each webhook as it arrives");
    const enrolled = await api<{ enrollmentId: string; status: string }>(
      "POST",
      `/workflows/${workflow.id}/enrollments`,
      {
        objectId: "101",
      },
    );
    note(`enrollment ${enrolled.enrollmentId} is ${enrolled.status}`);

    const enrollment = await finished(api, enrolled.enrollmentId);

    say(`The enrollment is ${enrollment.status}; its delivery, attempt by attempt`);
    const [delivery] = enrollment.deliveries;
    if (delivery === undefined) throw new DemoError("the enrollment has no delivery");
    const first = Date.parse(delivery.attempts[0]?.scheduledAt ?? "");
    for (const attempt of delivery.attempts) {
      const after = (Date.parse(attempt.scheduledAt) - first) / 60_000;
      note(
        `attempt ${attempt.number}: ${attempt.statusCode ?? attempt.error}, due ${after.toFixed(1)} min after the first, on the policy's clock`,
      );
    }
    note(`delivery ${delivery.deliveryId}: ${delivery.status}`);
    for (const action of enrollment.actions) note(`action ${action.type}: ${action.status}`);

    say("The contact after the workflow");
    const contact = await api<ContactView>("GET", "/objects/contacts/101");
    note(`synced_to_crm = ${contact.properties.synced_to_crm?.value}`);
    note(
      `email history: ${(contact.properties.email?.versions ?? []).map((v) => v.value).join(" <- ")}`,
    );
    console.log("\nStopping everything the demo started...");
    await stop();
    console.log("Done.");
    return enrollment.status === "completed" && delivery.status === "succeeded" ? 0 : 1;
  } catch (error) {
    if (interrupted) return 130;
    console.error(`\nThe demo stopped: ${error instanceof Error ? error.message : String(error)}`);
    await stop().catch(() => {});
    return 1;
  }
}

type Api = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The parts of the API's answers the demo shows. */
interface EnrollmentView {
  readonly status: string;
  readonly actions: ReadonlyArray<{ readonly type: string; readonly status: string }>;
  readonly deliveries: ReadonlyArray<{
    readonly deliveryId: string;
    readonly status: string;
    readonly attempts: ReadonlyArray<{
      readonly number: number;
      readonly scheduledAt: string;
      readonly statusCode: number | null;
      readonly error: string | null;
    }>;
  }>;
}

interface ContactView {
  readonly properties: Record<
    string,
    { readonly value: string; readonly versions: ReadonlyArray<{ readonly value: string }> }
  >;
}

/** Calls the local API; a non-2xx answer is a DemoError with the API's own message. */
function client(baseUrl: string): Api {
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new DemoError(`${method} ${path} answered ${response.status}: ${text}`);
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  };
}

async function finished(api: Api, enrollmentId: string): Promise<EnrollmentView> {
  const deadline = Date.now() + FINISH_TIMEOUT_MS;
  for (;;) {
    const enrollment = await api<EnrollmentView>("GET", `/enrollments/${enrollmentId}`);
    if (enrollment.status !== "active" && enrollment.status !== "waiting") return enrollment;
    if (Date.now() > deadline) {
      throw new DemoError(`enrollment ${enrollmentId} did not finish within a minute`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function indent(text: string): string {
  return text.replaceAll(/^/gm, "      ");
}

process.exit(await main());
