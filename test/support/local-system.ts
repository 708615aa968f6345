import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { inject } from "vitest";
import { type LocalRuntime, startLocalRuntime } from "#infra/local/runtime";
import { apiClient } from "#test/api-client";
import {
  makeTestCertificate,
  type ReceivedRequest,
  type ReceiverAnswer,
  startReceiver,
  type TestCertificate,
  type TestReceiver,
} from "#test/https-receiver";

/** The whole system on this machine, with an HTTPS receiver it trusts, for end-to-end tests. */
export interface LocalSystem {
  readonly runtime: LocalRuntime;
  readonly receiver: TestReceiver;
  /** The certificate the delivery client trusts; another receiver may present it too. */
  readonly certificate: TestCertificate;
  /** Calls the system's API. */
  readonly call: ReturnType<typeof apiClient>;
  /** How the receiver answers each path; given how many requests that path saw before, and the request. */
  readonly answers: Map<string, (previous: number, request: ReceivedRequest) => ReceiverAnswer>;
  stop(): Promise<void>;
}

/**
 * Starts the local runtime with a compressed clock and a receiver on 127.0.0.1 whose certificate
 * the delivery client trusts through NODE_EXTRA_CA_CERTS. Paths without an answer get `fallback`.
 */
export async function startLocalSystem(options: {
  readonly timeScale: number;
  readonly fallback?: ReceiverAnswer;
  readonly visibilityTimeoutSeconds?: number;
  /** More PEM certificates for the delivery client to trust. */
  readonly alsoTrusted?: readonly string[];
  /** The functions' log level; TEST_LOG_LEVEL, or SILENT, by default. */
  readonly logLevel?: string;
  /** Publishes the functions' metrics (EMF lines on stdout). */
  readonly metricsEnabled?: boolean;
  /** Batches handled at once per lane. */
  readonly maxConcurrency?: { readonly workflowSteps?: number; readonly webhookLane?: number };
}): Promise<LocalSystem> {
  const certificate = makeTestCertificate();
  const trusted = join(dirname(certificate.certFile), "trusted.pem");
  writeFileSync(trusted, [certificate.cert, ...(options.alsoTrusted ?? [])].join("\n"));
  process.env.NODE_EXTRA_CA_CERTS = trusted;
  const answers = new Map<string, (previous: number, request: ReceivedRequest) => ReceiverAnswer>();
  const fallback = options.fallback ?? { status: 200, body: "thanks" };
  const receiver = await startReceiver(certificate, (request, previous) => {
    const path = request.url.split("?")[0] ?? "";
    return answers.get(path)?.(previous, request) ?? fallback;
  });
  let runtime: LocalRuntime;
  try {
    runtime = await startLocalRuntime({
      timeScale: options.timeScale,
      dynamoEndpoint: inject("dynamoEndpoint"),
      namePrefix: `e2e${randomUUID().slice(0, 8)}-`,
      logLevel: options.logLevel ?? process.env.TEST_LOG_LEVEL ?? "SILENT",
      metricsEnabled: options.metricsEnabled,
      maxConcurrency: options.maxConcurrency,
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
    });
  } catch (error) {
    await receiver.close();
    certificate.remove();
    throw error;
  }
  return {
    runtime,
    receiver,
    certificate,
    call: apiClient(runtime.apiUrl),
    answers,
    async stop() {
      // The receiver first: a request it holds open would otherwise keep a poller waiting.
      await receiver.close();
      await runtime.stop();
      certificate.remove();
    },
  };
}
