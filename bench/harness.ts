/**
 * What every measurement starts from: the system under test in its own process, receivers in
 * another, a certificate the system trusts for them, and a client for the system's HTTP API.
 * The load comes from this process, so none of the three competes with another for its loop.
 */
import { readFileSync } from "node:fs";
import { Pool } from "undici";
import { makeTestCertificate, type TestCertificate } from "#test/https-receiver";
import { type Peer, startPeer } from "./ipc.ts";
import { inParallel } from "./parallel.ts";
import type { AnswerRule, ReceiverCalls } from "./receiver/process.ts";
import { seededRandom } from "./stats.ts";
import { clock, EMPTY_RECEIVE, PROBE_HEADER } from "./system/counters.ts";
import type { SystemCalls, SystemOptions } from "./system/process.ts";
import { WARM_UP_REQUESTS } from "./system/warm-up.ts";

/** The deployment's settings the benchmark mirrors, as cdk.json gives them to the stack. */
export interface DeployedSettings {
  readonly webhookLaneMaxConcurrency: number;
  readonly workflowStepsMaxConcurrency: number;
  readonly logLevel: string;
}

export function deployedSettings(): DeployedSettings {
  const { context } = JSON.parse(readFileSync(new URL("../cdk.json", import.meta.url), "utf8")) as {
    context: Record<string, unknown>;
  };
  return {
    webhookLaneMaxConcurrency: Number(context.webhookLaneMaxConcurrency),
    workflowStepsMaxConcurrency: Number(context.workflowStepsMaxConcurrency),
    logLevel: String(context.logLevel),
  };
}

/** Connections to the local API: more than the highest load keeps in flight at once. */
const API_CONNECTIONS = 128;
/** How often a waiting step looks again. */
const POLL_MS = 25;

export interface ApiAnswer<T> {
  readonly status: number;
  readonly body: T;
}

export interface Harness {
  readonly system: Peer<SystemCalls>;
  readonly receivers: Peer<ReceiverCalls>;
  readonly certificate: TestCertificate;
  /** Ports of the receivers started so far; the first is started with the harness. */
  readonly receiverPorts: number[];
  /** Calls the system's API, as an outside client would. */
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiAnswer<T>>;
  /** `https://127.0.0.1:<port><path>` on the given receiver (the first by default). */
  receiverUrl(path: string, port?: number): string;
  /** Starts one more receiver, with its own port. */
  addReceiver(): Promise<number>;
  answer(path: string, answer: AnswerRule, track?: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the system under test, a receiver, and connects to both. */
export async function startHarness(
  options: Partial<Omit<SystemOptions, "maxConcurrency">> = {},
): Promise<Harness> {
  const deployed = deployedSettings();
  const certificate = makeTestCertificate();
  const receivers = startPeer<ReceiverCalls>(new URL("./receiver/process.ts", import.meta.url));
  // The delivery client trusts the receivers' certificate through NODE_EXTRA_CA_CERTS.
  const system = startPeer<SystemCalls>(new URL("./system/process.ts", import.meta.url), {
    NODE_EXTRA_CA_CERTS: certificate.certFile,
  });
  let pool: Pool | undefined;
  try {
    const keyPair = { key: certificate.key, cert: certificate.cert };
    const receiverPorts = [await receivers.call("listen", keyPair)];
    const { apiUrl } = await system.call("start", {
      timeScale: options.timeScale ?? 1,
      logLevel: options.logLevel ?? deployed.logLevel,
      metricsEnabled: options.metricsEnabled ?? true,
      maxConcurrency: {
        webhookLane: deployed.webhookLaneMaxConcurrency,
        workflowSteps: deployed.workflowStepsMaxConcurrency,
      },
      echoLogs: options.echoLogs ?? process.env.BENCH_ECHO_LOGS === "1",
      warmUpRequests: options.warmUpRequests ?? WARM_UP_REQUESTS,
    });
    const api = new Pool(apiUrl, { connections: API_CONNECTIONS });
    pool = api;
    return {
      system,
      receivers,
      certificate,
      receiverPorts,
      async call<T>(
        method: string,
        path: string,
        body?: unknown,
        headers: Record<string, string> = {},
      ) {
        const response = await api.request({
          method: method as "GET",
          path,
          headers:
            body === undefined ? headers : { "content-type": "application/json", ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.body.text();
        return {
          status: response.statusCode,
          body: (text ? JSON.parse(text) : undefined) as T,
        };
      },
      receiverUrl: (path, port = receiverPorts[0]) => `https://127.0.0.1:${port}${path}`,
      async addReceiver() {
        const port = await receivers.call("listen", keyPair);
        receiverPorts.push(port);
        return port;
      },
      answer: (path, answer, track = true) => receivers.call("answer", { path, answer, track }),
      async stop() {
        // Receivers first: a request they hold open would keep a poller, and so the stop, waiting.
        await receivers.call("closeAll").catch(() => {});
        await receivers.close();
        await system.call("stop").catch(() => {});
        await system.close();
        await api.close();
        certificate.remove();
      },
    };
  } catch (error) {
    await receivers.close(0);
    await system.close(0);
    await pool?.close();
    certificate.remove();
    throw error;
  }
}

/** Words for record text: compresses about as well as real CRM notes do (gzip, about 3 to 1). */
const WORDS =
  "account renewal pricing meeting follow up customer success onboarding invoice contract signed pending review quarterly budget demo trial upgrade support ticket escalated resolved feedback survey webinar partner referral inbound outbound campaign newsletter lead qualified opportunity negotiation closed won lost churn risk expansion seats license annual monthly discount procurement legal security questionnaire integration api webhook crm pipeline stage forecast".split(
    " ",
  );
/** Properties of at most this many characters; the API allows 65,536. */
const NOTE_PROPERTY_CHARS = 16_000;
/** What a contact's payload adds per property besides its value twice (wrapper, timestamps). */
const PAYLOAD_BYTES_PER_PROPERTY = 200;
/** The payload of a contact with only the fixed properties below. */
const PAYLOAD_BASE_BYTES = 950;

/**
 * Contact properties whose webhook body comes to about `targetBytes`: an email, names, and
 * notes of pseudo-random words (the same for the same `seed`). A contact's payload carries each
 * value twice, as the current value and as its one version.
 */
export function contactProperties(targetBytes: number, seed: number): Record<string, string> {
  const random = seededRandom(seed);
  const properties: Record<string, string> = {
    email: `contact${seed}@example.com`,
    firstname: "Ada",
    lastname: `Lovelace ${seed}`,
    company: "Analytical Engines Ltd",
  };
  let budget = targetBytes - PAYLOAD_BASE_BYTES;
  for (let index = 1; budget > 0; index++) {
    const chars = Math.min(NOTE_PROPERTY_CHARS, (budget - PAYLOAD_BYTES_PER_PROPERTY) / 2);
    if (chars <= 0) break;
    const words: string[] = [];
    let length = 0;
    while (length < chars) {
      const word = WORDS[Math.floor(random() * WORDS.length)] as string;
      words.push(word);
      length += word.length + 1;
    }
    properties[`notes_${index}`] = words.join(" ").slice(0, chars);
    budget -= 2 * chars + PAYLOAD_BYTES_PER_PROPERTY;
  }
  return properties;
}

/** Creates contacts `firstId`... with bodies of about `bytes`; returns their ids. */
export async function createContacts(
  harness: Harness,
  options: { readonly count: number; readonly bytes: number; readonly firstId: number },
): Promise<string[]> {
  const ids = Array.from({ length: options.count }, (_, index) => String(options.firstId + index));
  await inParallel(ids, 16, async (id) => {
    const answer = await harness.call("PUT", `/objects/contacts/${id}`, {
      properties: contactProperties(options.bytes, Number(id)),
    });
    if (answer.status !== 200 && answer.status !== 201) {
      throw new Error(`creating contact ${id} answered ${answer.status}`);
    }
  });
  return ids;
}

/** What a section measures on: the running system, a signing app and contacts to enroll. */
export interface LoadedSystem {
  readonly harness: Harness;
  readonly appId: string;
  /** The contacts' ids. */
  readonly records: string[];
}

/**
 * Starts the system, creates a signing app and `contacts.count` contacts of about
 * `contacts.bytes` each, runs `measure` on them, and stops the system whatever `measure` did.
 */
export async function withLoadedSystem<T>(
  contacts: { readonly count: number; readonly bytes: number },
  measure: (system: LoadedSystem) => Promise<T>,
): Promise<T> {
  const harness = await startHarness();
  try {
    const appId = await createApp(harness);
    const records = await createContacts(harness, { ...contacts, firstId: 1 });
    return await measure({ harness, appId, records });
  } finally {
    await harness.stop();
  }
}

/** A signing app; returns its id. */
export async function createApp(harness: Harness): Promise<string> {
  const answer = await harness.call<{ appId: string }>("POST", "/apps", { name: "Benchmark CRM" });
  if (answer.status !== 201) throw new Error(`creating an app answered ${answer.status}`);
  return answer.body.appId;
}

/** A workflow of one signed webhook action to `url`; returns its id. */
export async function createWebhookWorkflow(
  harness: Harness,
  url: string,
  appId: string,
): Promise<string> {
  const answer = await harness.call<{ id: string }>("POST", "/workflows", {
    name: `webhook to ${new URL(url).pathname}`,
    objectType: "contacts",
    actions: [{ type: "webhook", url, authentication: { type: "signature", appId } }],
  });
  if (answer.status !== 201) throw new Error(`creating a workflow answered ${answer.status}`);
  return answer.body.id;
}

/** One enrollment call as the load generator saw it. */
export interface Enrolled {
  readonly objectId: string;
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly status: number;
  readonly enrollmentId: string | undefined;
}

export async function enroll(
  harness: Harness,
  workflowId: string,
  objectId: string,
): Promise<Enrolled> {
  const sentAt = clock();
  try {
    const answer = await harness.call<{ enrollmentId?: string }>(
      "POST",
      `/workflows/${workflowId}/enrollments`,
      { objectId },
    );
    return {
      objectId,
      sentAt,
      answeredAt: clock(),
      status: answer.status,
      enrollmentId: answer.body?.enrollmentId,
    };
  } catch {
    return { objectId, sentAt, answeredAt: clock(), status: 0, enrollmentId: undefined };
  }
}

/** Waits until the enrollment has ended (completed or failed), polling as a probe. */
export async function enrollmentEnded(
  harness: Harness,
  enrollmentId: string,
  timeoutMs = 30_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await harness.call<{ status: string }>(
      "GET",
      `/enrollments/${enrollmentId}`,
      undefined,
      { [PROBE_HEADER]: "1" },
    );
    if (body.status === "completed" || body.status === "failed") return body.status;
    if (Date.now() > deadline) throw new Error(`enrollment ${enrollmentId} did not end`);
    await sleep(POLL_MS);
  }
}

/**
 * Calls `send(i)` for i = 0..count-1 at `rate` per second from now, whether or not earlier calls
 * were answered (open loop: a slow system meets the same arrivals, not fewer).
 */
export async function offerOpenLoop<T>(
  rate: number,
  count: number,
  send: (index: number) => Promise<T>,
): Promise<T[]> {
  const startedAt = performance.now();
  const pending: Promise<T>[] = [];
  for (let index = 0; index < count; index++) {
    const wait = startedAt + (index * 1000) / rate - performance.now();
    if (wait >= 1) await sleep(wait);
    pending.push(send(index));
  }
  return Promise.all(pending);
}

/** Waits until `done()` holds or `timeoutMs` passes; true when it held. */
export async function waitUntil(
  done: () => Promise<boolean>,
  timeoutMs: number,
  pollMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await sleep(pollMs);
  }
}

/** Waits until the system's request counters stop moving: the last batch has been deleted. */
export async function settle(harness: Harness, quietMs = 250, timeoutMs = 10_000): Promise<void> {
  const activity = async () => {
    const snapshot = await harness.system.call("read");
    let total = 0;
    for (const [key, count] of Object.entries(snapshot.operations)) {
      if (!key.endsWith(EMPTY_RECEIVE)) total += count.count;
    }
    return total;
  };
  let last = await activity();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await sleep(quietMs);
    const now = await activity();
    if (now === last) return;
    last = now;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
