import { once } from "node:events";
import { createServer, type Server } from "node:https";
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "#test/eventually";
import {
  makeExpiredTestCertificate,
  makeTestCertificate,
  type TestCertificate,
} from "#test/https-receiver";
import { type LocalSystem, startLocalSystem } from "#test/local-system";
import { reportFigures } from "#test/reliability-figures";

/**
 * Receivers that misbehave, as real HTTPS servers on 127.0.0.1, through the local system with a
 * compressed clock: each delivery ends as the retry policy says, and a receiver that sends without
 * end never makes the system hold more than a bounded piece of it. A receiver that never answers
 * waits out the real 30-second timeout, so it is in `test/reliability/slow-receivers.test.ts`.
 */
const FIRST_RETRY_MS = 60_000;
/** Jitter adds at most a tenth of the delay. */
const MAX_JITTER_SHARE = 0.1;
const KEPT_BODY_BYTES = 4_096;
const FIFTY_MB = 50 * 1024 * 1024;
/** Heap and Buffer growth allowed while receivers push 50 MB and an endless body at the system. */
const MEMORY_BOUND_BYTES = 32 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, "x");

let system: LocalSystem;
let call: LocalSystem["call"];
let receiver: LocalSystem["receiver"];
let answers: LocalSystem["answers"];
let untrusted: TestCertificate;
let expired: TestCertificate;
const servers: Server[] = [];
const netServers: NetServer[] = [];
const held: Socket[] = [];
/** Bytes the streaming receivers managed to write before the system hung up. */
const streamed = { endless: 0, fifty: 0 };

/** An HTTPS server on 127.0.0.1 with its own behaviour; its URL. */
async function serve(
  certificate: Pick<TestCertificate, "key" | "cert">,
  handle: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server }> {
  const server = createServer({ key: certificate.key, cert: certificate.cert }, handle);
  server.on("tlsClientError", () => {});
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

/** Writes up to `bytes` (forever when Infinity), minding backpressure, until the client leaves. */
async function stream(
  response: import("node:http").ServerResponse,
  bytes: number,
  count: (n: number) => void,
) {
  let written = 0;
  response.on("error", () => {});
  while (written < bytes && !response.destroyed && !response.socket?.destroyed) {
    const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, bytes - written));
    written += chunk.length;
    count(chunk.length);
    if (!response.write(chunk)) {
      const drained = await Promise.race([
        once(response, "drain").then(() => true),
        once(response, "close").then(() => false),
      ]);
      if (!drained) return;
    }
  }
  response.end();
}

beforeAll(async () => {
  untrusted = makeTestCertificate();
  expired = makeExpiredTestCertificate();
  system = await startLocalSystem({ timeScale: 0.001, alsoTrusted: [expired.cert] });
  ({ call, receiver, answers } = system);
});

afterAll(async () => {
  for (const socket of held) socket.destroy();
  for (const server of netServers) server.close();
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await system?.stop();
  untrusted?.remove();
  expired?.remove();
});

interface Misbehaviour {
  /** What the receiver does. */
  readonly name: string;
  /** Its URL, once its server runs. */
  url(): Promise<string>;
  /** Whether the receiver failed the attempt on purpose (a fault the delivery must survive). */
  readonly injectsFault: boolean;
}

const misbehaviours: Misbehaviour[] = [
  {
    name: "resets the connection, then answers",
    injectsFault: true,
    url: async () => {
      let seen = 0;
      return (
        await serve(system.certificate, (request, response) => {
          seen += 1;
          if (seen === 1) request.socket.destroy();
          else response.end("ok");
        })
      ).url;
    },
  },
  {
    name: "sends an endless body",
    injectsFault: false,
    url: async () =>
      (
        await serve(system.certificate, (_request, response) => {
          response.writeHead(200, { "content-type": "text/plain" });
          void stream(response, Number.POSITIVE_INFINITY, (n) => {
            streamed.endless += n;
          });
        })
      ).url,
  },
  {
    name: "sends a 50 MB body",
    injectsFault: false,
    url: async () =>
      (
        await serve(system.certificate, (_request, response) => {
          response.writeHead(200, { "content-length": String(FIFTY_MB) });
          void stream(response, FIFTY_MB, (n) => {
            streamed.fifty += n;
          });
        })
      ).url,
  },
  {
    name: "shows an untrusted certificate, then a trusted one",
    injectsFault: true,
    url: async () => {
      const { url, server } = await serve(untrusted, (_request, response) => response.end("ok"));
      server.once("tlsClientError", () =>
        server.setSecureContext({ key: system.certificate.key, cert: system.certificate.cert }),
      );
      return url;
    },
  },
  {
    name: "shows an expired certificate, then a valid one",
    injectsFault: true,
    url: async () => {
      const { url, server } = await serve(expired, (_request, response) => response.end("ok"));
      server.once("tlsClientError", () =>
        server.setSecureContext({ key: system.certificate.key, cert: system.certificate.cert }),
      );
      return url;
    },
  },
  {
    name: "never completes the TLS handshake, then answers",
    injectsFault: true,
    url: async () => {
      const { url } = await serve(system.certificate, (_request, response) => response.end("ok"));
      const upstream = Number(new URL(url).port);
      let seen = 0;
      // In front of the receiver: the first connection is held open and never answered.
      const front = createNetServer((socket) => {
        seen += 1;
        if (seen === 1) {
          held.push(socket);
          return;
        }
        const inner = connect(upstream, "127.0.0.1");
        socket.pipe(inner).pipe(socket);
        for (const end of [socket, inner]) end.on("error", () => end.destroy());
      });
      netServers.push(front);
      front.listen(0, "127.0.0.1");
      await once(front, "listening");
      return `https://127.0.0.1:${(front.address() as AddressInfo).port}/`;
    },
  },
  ...(
    [
      [
        "answers 302 with a Location",
        false,
        () => ({ status: 302, headers: { location: "https://example.com/" } }),
      ],
      ["answers 410", false, () => ({ status: 410 })],
      [
        "answers 429 with Retry-After in seconds, then 200",
        true,
        (previous: number) =>
          previous === 0 ? { status: 429, headers: { "retry-after": "300" } } : { status: 200 },
      ],
      [
        "answers 429 with Retry-After as an HTTP date, then 200",
        true,
        (previous: number) =>
          previous === 0
            ? {
                status: 429,
                headers: { "retry-after": new Date(Date.now() + 600_000).toUTCString() },
              }
            : { status: 200 },
      ],
      [
        "answers 503, then 200",
        true,
        (previous: number) => (previous === 0 ? { status: 503 } : { status: 200 }),
      ],
    ] as const
  ).map(([name, injectsFault, answer]) => ({
    name,
    injectsFault,
    url: async () => {
      const path = `/${name.replace(/\W+/g, "-")}`;
      answers.set(path, answer);
      return receiver.url(path);
    },
  })),
];

interface AttemptView {
  readonly scheduledAt: string;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly responseBody: string | null;
}

interface Ended {
  readonly enrollment: { status: string };
  readonly delivery: {
    status: string;
    failureReason: string | null;
    attempts: AttemptView[];
  };
}

const ended = new Map<string, Ended>();
let peakGrowth = 0;

/** Milliseconds between two attempts' scheduled times, on the policy's own clock. */
function gap(attempts: readonly AttemptView[]): number {
  const [first, second] = attempts;
  return Date.parse(second?.scheduledAt ?? "") - Date.parse(first?.scheduledAt ?? "");
}

describe("receivers that misbehave", () => {
  beforeAll(async () => {
    await call("PUT", "/objects/contacts/target", { properties: { email: "t@example.com" } });
    const streaming = misbehaviours.filter((each) => each.name.startsWith("sends "));
    // The receivers that stream go first and alone, so that memory is measured around them only.
    await runToTheEnd(streaming[0] as Misbehaviour);
    collectGarbage();
    const baseline = memoryInUse();
    const sampler = setInterval(() => {
      peakGrowth = Math.max(peakGrowth, memoryInUse() - baseline);
    }, 5);
    try {
      await Promise.all(streaming.map(runToTheEnd));
    } finally {
      clearInterval(sampler);
    }
    await Promise.all(misbehaviours.filter((each) => !streaming.includes(each)).map(runToTheEnd));
  }, 120_000);

  /** Enrolls the target into a workflow that calls the receiver, and keeps how it all ended. */
  async function runToTheEnd(misbehaviour: Misbehaviour): Promise<void> {
    const workflow = await call("POST", "/workflows", {
      name: misbehaviour.name,
      objectType: "contacts",
      actions: [
        { type: "webhook", url: await misbehaviour.url() },
        { type: "setProperty", property: "after", value: "reached" },
      ],
    });
    const enrolled = await call("POST", `/workflows/${workflow.body.id}/enrollments`, {
      objectId: "target",
    });
    const enrollment = await eventually(
      `the enrollment of "${misbehaviour.name}" to end`,
      async () => {
        const { body } = await call("GET", `/enrollments/${enrolled.body.enrollmentId}`);
        expect(["completed", "failed"]).toContain(body.status);
        return body;
      },
      { timeoutMs: 60_000 },
    );
    const delivery = await call("GET", `/deliveries/${enrollment.deliveries[0].deliveryId}`);
    ended.set(misbehaviour.name, { enrollment, delivery: delivery.body });
  }

  afterAll(() => {
    const faults = misbehaviours.filter((each) => each.injectsFault);
    const survived = faults.filter(
      (each) =>
        ended.get(each.name)?.delivery.status === "succeeded" &&
        ended.get(each.name)?.enrollment.status === "completed",
    );
    reportFigures({
      suite:
        "Receivers that misbehave (reset, stalled handshake, endless and 50 MB bodies, bad TLS, 3xx, 410, 429, 503)",
      inputs: misbehaviours.length,
      faultsInjected: faults.length,
      faultsSurvived: survived.length,
      stuck: misbehaviours.length - ended.size,
      notes: `peak heap and Buffer growth ${(peakGrowth / 2 ** 20).toFixed(1)} MiB while the receivers sent ${((streamed.endless + streamed.fifty) / 2 ** 20).toFixed(1)} MiB before the system hung up`,
    });
  });

  it("ends every delivery and enrollment, the enrollment going on to its next action", () => {
    // Assess
    for (const misbehaviour of misbehaviours) {
      const outcome = ended.get(misbehaviour.name);
      expect({ name: misbehaviour.name, enrollment: outcome?.enrollment.status }).toEqual({
        name: misbehaviour.name,
        enrollment: "completed",
      });
    }
  });

  it.each([
    ["resets the connection, then answers", /^connection lost: /],
    ["shows an untrusted certificate, then a trusted one", /^tls: self[- ]signed certificate/],
    ["shows an expired certificate, then a valid one", /^tls: certificate has expired/],
    ["never completes the TLS handshake, then answers", /^connect timeout after 3000 ms$/],
  ])("retries a receiver that %s after a minute, and succeeds", (name, error) => {
    // Assess
    const { delivery } = ended.get(name) as Ended;
    expect(delivery.status).toBe("succeeded");
    expect(delivery.attempts.map((attempt) => attempt.statusCode)).toEqual([null, 200]);
    expect(delivery.attempts[0]?.error).toMatch(error);
    expect(gap(delivery.attempts)).toBeGreaterThanOrEqual(FIRST_RETRY_MS);
    expect(gap(delivery.attempts)).toBeLessThanOrEqual(FIRST_RETRY_MS * (1 + MAX_JITTER_SHARE));
  });

  it.each([
    ["answers 302 with a Location", "HTTP 302 Found is not retried (redirects are not followed)"],
    ["answers 410", "HTTP 410 Gone is not retried"],
  ])("fails a receiver that %s for good after one attempt, with the reason", (name, reason) => {
    // Assess
    const { delivery } = ended.get(name) as Ended;
    expect(delivery.status).toBe("failed");
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.failureReason).toBe(reason);
  });

  it.each([
    ["answers 429 with Retry-After in seconds, then 200", 300_000, 300_000],
    ["answers 429 with Retry-After as an HTTP date, then 200", 598_000, 600_000],
    ["answers 503, then 200", FIRST_RETRY_MS, FIRST_RETRY_MS * (1 + MAX_JITTER_SHARE)],
  ])("retries a receiver that %s no sooner than it asked", (name, atLeast, atMost) => {
    // Assess
    const { delivery } = ended.get(name) as Ended;
    expect(delivery.status).toBe("succeeded");
    expect(delivery.attempts.map((attempt) => attempt.statusCode)).toEqual([
      Number(name.slice(8, 11)),
      200,
    ]);
    expect(gap(delivery.attempts)).toBeGreaterThanOrEqual(atLeast);
    expect(gap(delivery.attempts)).toBeLessThanOrEqual(atMost);
  });

  it.each(["sends an endless body", "sends a 50 MB body"])(
    "keeps at most 4 KiB of a receiver that %s, succeeds, and hangs up",
    (name) => {
      // Assess
      const { delivery } = ended.get(name) as Ended;
      expect(delivery.status).toBe("succeeded");
      expect(delivery.attempts).toHaveLength(1);
      expect(Buffer.byteLength(delivery.attempts[0]?.responseBody ?? "")).toBe(KEPT_BODY_BYTES);
      expect(streamed.fifty).toBeLessThan(FIFTY_MB);
    },
  );

  it("holds memory within a bound while receivers push 50 MB and an endless body", () => {
    // Assess
    expect(peakGrowth).toBeLessThan(MEMORY_BOUND_BYTES);
  });
});

/** Runs a full garbage collection, so that a baseline holds no garbage about to be freed. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** Heap plus Buffer memory: a client that buffered a whole body would show it here. */
function memoryInUse(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
