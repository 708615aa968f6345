/**
 * `npm run receiver`: an HTTPS webhook receiver on 127.0.0.1 for trying the system locally. It
 * prints the NODE_EXTRA_CA_CERTS line that makes `npm start` trust its certificate (kept across
 * restarts), and every webhook it receives with the result of verifying its signatures.
 * Settings: RECEIVER_PORT (4000), CLIENT_SECRET (the signing app's secret), STANDARD_WEBHOOKS_SECRET
 * (a whsec_ secret), FAIL_FIRST (answer the first N attempts of each delivery with 503).
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  describeWebhook,
  OpensslMissingError,
  PortInUseError,
  receiverCertificate,
  startWebhookReceiver,
  type WebhookReceiver,
} from "./webhook-receiver.ts";

const DEFAULT_PORT = 4000;
/** Kept in the temporary folder so that a restart finds the certificate `npm start` trusts. */
const CERTIFICATE_DIR = join(tmpdir(), "workflow-webhooks-receiver");

class SettingError extends Error {
  override name = "SettingError";
}

function whole(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > max) {
    throw new SettingError(`${name} must be a whole number from 0 to ${max}, got "${value}"`);
  }
  return parsed;
}

async function main(): Promise<void> {
  const { env } = process;
  let receiver: WebhookReceiver;
  try {
    const port = whole("RECEIVER_PORT", env.RECEIVER_PORT, DEFAULT_PORT, 65_535);
    const certificate = receiverCertificate(CERTIFICATE_DIR);
    receiver = await startWebhookReceiver({
      certificate,
      port,
      secrets: {
        clientSecret: env.CLIENT_SECRET || undefined,
        standardWebhooksSecret: env.STANDARD_WEBHOOKS_SECRET || undefined,
      },
      failFirst: whole("FAIL_FIRST", env.FAIL_FIRST, 0, 1_000),
      onWebhook: (webhook) => console.log(`${describeWebhook(webhook)}\n`),
    });
    console.log(`Receiver listening on ${receiver.url}/`);
    console.log(
      certificate.created
        ? "Start the system so that it trusts this receiver's new certificate:"
        : "Its certificate is the one from before; a system started with this line trusts it:",
    );
    console.log(`  NODE_EXTRA_CA_CERTS=${certificate.certFile} npm start`);
  } catch (error) {
    console.error(`Receiver not started: ${describe(error)}`);
    process.exit(1);
  }
  process.on("SIGINT", () => receiver.close().then(() => process.exit(0)));
  process.on("SIGTERM", () => receiver.close().then(() => process.exit(0)));
}

function describe(error: unknown): string {
  if (error instanceof PortInUseError) return `${error.message}; choose another with RECEIVER_PORT`;
  if (error instanceof OpensslMissingError || error instanceof SettingError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

await main();
