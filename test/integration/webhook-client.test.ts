import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server } from "node:https";
import net, { type AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  createWebhookClient,
  type WebhookClient,
  type WebhookClientOptions,
  type WebhookResult,
} from "#adapters/webhook-client";
import { makeTestCertificate, type TestCertificate } from "#test/https-receiver";
import { allowLoopbackOnly, type LoopbackGuard } from "#test/loopback-only";

/**
 * Every test here talks to HTTPS receivers on 127.0.0.1 and ::1 only. Two guards make any other
 * destination impossible even if the client had a bug: every resolver is a fake that knows a few
 * test names, and every TCP connect in this process is refused unless it goes to loopback. Where
 * a connection went is seen from the receivers' side: the address each accepted connection came in
 * on is the address the client dialled.
 */
const RECEIVER = "receiver.test";
const LARGE_BODY_BYTES = 50 * 1024 * 1024;

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

interface Streamed {
  bytes: number;
  closed: Promise<void>;
}

let trusted: TestCertificate;
let otherName: TestCertificate;
let untrusted: TestCertificate;
let receiver: Server;
let receiverV6: Server;
let untrustedReceiver: Server;
let wrongNameReceiver: Server;
let silentTcp: net.Server;
let closedPort: number;
let connections = 0;
let targetHits = 0;
let lastSeen: Seen | undefined;
let lastStream: Streamed | undefined;
const hanging = new Set<ServerResponse>();
const clients: WebhookClient[] = [];
const accepted = new Map<net.Server, string[]>();
let loopbackOnly: LoopbackGuard;

function listen<T extends net.Server>(server: T, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    (server as Server).closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** Streams `total` bytes (or forever) with backpressure, counting what the socket accepted. */
function stream(response: ServerResponse, total: number): Streamed {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const state: Streamed = { bytes: 0, closed: Promise.resolve() };
  state.closed = new Promise((resolve) => response.once("close", () => resolve()));
  let open = true;
  response.once("close", () => {
    open = false;
  });
  const pump = () => {
    while (open && state.bytes < total) {
      state.bytes += chunk.length;
      if (!response.write(chunk)) {
        response.once("drain", pump);
        return;
      }
    }
    if (open) response.end();
  };
  pump();
  return state;
}

function handle(request: IncomingMessage, response: ServerResponse): void {
  const parts: Buffer[] = [];
  request.on("data", (part: Buffer) => parts.push(part));
  request.on("end", () => {
    const path = new URL(request.url ?? "/", "https://receiver.test").pathname;
    lastSeen = {
      method: request.method ?? "",
      url: request.url ?? "",
      rawHeaders: request.rawHeaders,
      body: Buffer.concat(parts),
    };
    switch (path) {
      case "/ok":
        response.writeHead(200, { "Content-Type": "text/plain" }).end("hello from the receiver");
        return;
      case "/echo":
        response.writeHead(201).end("created");
        return;
      case "/close":
        response.writeHead(200, { Connection: "close" }).end("closing");
        return;
      case "/headers":
        response.setHeader("X-Repeated", ["first", "second"]);
        response.setHeader("Set-Cookie", ["a=1", "b=2"]);
        response.setHeader("X-Single", "Value With Case");
        response.writeHead(204).end();
        return;
      case "/redirect": {
        const port = (receiver.address() as AddressInfo).port;
        response.writeHead(302, { Location: `https://${RECEIVER}:${port}/target` }).end();
        return;
      }
      case "/target":
        targetHits += 1;
        response.writeHead(200).end("redirect followed");
        return;
      case "/large":
        response.writeHead(200, { "Content-Length": String(LARGE_BODY_BYTES) });
        lastStream = stream(response, LARGE_BODY_BYTES);
        return;
      case "/endless":
        response.writeHead(200, { "Content-Type": "application/octet-stream" });
        lastStream = stream(response, Number.POSITIVE_INFINITY);
        return;
      case "/hang":
        hanging.add(response);
        return;
      case "/reset":
        request.socket.destroy();
        return;
      default:
        response.writeHead(404).end();
    }
  });
}

/** A resolver that knows only the names given; anything else fails as unknown. */
function fakeResolver(names: Record<string, readonly string[]>) {
  const calls: string[] = [];
  const resolve = async (hostname: string) => {
    calls.push(hostname);
    const addresses = names[hostname];
    if (addresses === undefined) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    }
    return addresses.map(
      (address) => ({ address, family: address.includes(":") ? 6 : 4 }) as const,
    );
  };
  return { resolve, calls };
}

/** Notes the local address of every TCP connection the server accepts: the one dialled. */
function recordAccepted<T extends net.Server>(server: T): T {
  const seen: string[] = [];
  accepted.set(server, seen);
  server.on("connection", (socket: net.Socket) => seen.push(socket.localAddress ?? "?"));
  return server;
}

/** The addresses the server's accepted connections were dialled at, oldest first. */
function acceptedBy(server: net.Server): readonly string[] {
  return [...(accepted.get(server) ?? [])];
}

function client(options: Partial<WebhookClientOptions> = {}): WebhookClient {
  const created = createWebhookClient({
    allowPrivateTargets: true,
    resolve: fakeResolver({ [RECEIVER]: ["127.0.0.1"] }).resolve,
    ca: trusted.cert,
    ...options,
  });
  clients.push(created);
  return created;
}

function receiverUrl(path: string, server: Server = receiver): string {
  return `https://${RECEIVER}:${(server.address() as AddressInfo).port}${path}`;
}

function failure(result: WebhookResult) {
  if (result.ok) throw new Error(`expected a failure, got ${result.response.statusCode}`);
  return result;
}

function success(result: WebhookResult) {
  if (!result.ok) throw new Error(`expected a response, got ${result.errorKind}: ${result.error}`);
  return result;
}

beforeAll(async () => {
  loopbackOnly = allowLoopbackOnly();

  trusted = makeTestCertificate({
    name: RECEIVER,
    subjectAltName: `DNS:${RECEIVER},IP:127.0.0.1,IP:::1`,
  });
  otherName = makeTestCertificate({ name: "other.test", subjectAltName: "DNS:other.test" });
  untrusted = makeTestCertificate({
    name: RECEIVER,
    subjectAltName: `DNS:${RECEIVER},IP:127.0.0.1`,
  });

  receiver = recordAccepted(createHttpsServer(trusted, handle));
  receiver.on("secureConnection", () => {
    connections += 1;
  });
  receiverV6 = recordAccepted(createHttpsServer(trusted, handle));
  untrustedReceiver = createHttpsServer(untrusted, handle);
  wrongNameReceiver = createHttpsServer(otherName, handle);
  // Reads and drops whatever arrives, so it notices when the client hangs up, and never answers.
  silentTcp = net.createServer((socket) => socket.resume());
  const probe = net.createServer();
  closedPort = await listen(probe, "127.0.0.1");
  await close(probe);

  await Promise.all([
    listen(receiver, "127.0.0.1"),
    listen(receiverV6, "::1"),
    listen(untrustedReceiver, "127.0.0.1"),
    listen(wrongNameReceiver, "127.0.0.1"),
    listen(silentTcp, "127.0.0.1"),
  ]);
});

afterAll(async () => {
  for (const response of hanging) response.destroy();
  await Promise.all(clients.map((each) => each.close()));
  await Promise.all(
    [receiver, receiverV6, untrustedReceiver, wrongNameReceiver, silentTcp]
      .filter((server) => server !== undefined)
      .map(close),
  );
  loopbackOnly?.restore();
  for (const certificate of [trusted, otherName, untrusted]) certificate?.remove();
});

describe("webhook client against a real HTTPS receiver", () => {
  it("returns a 200 with its body, headers and duration", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const result = success(
      await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} }),
    );

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.response.body).toBe("hello from the receiver");
    expect(result.response.bodyTruncated).toBe(false);
    expect(result.response.headers["content-type"]).toBe("text/plain");
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("sends a POST body, headers and query byte for byte", async () => {
    // Prepare
    const webhooks = client();
    const body = '{"name":"Zoë 🚀","quote":"\\"x\\"","n":1}\n';
    const headers = {
      "Content-Type": "application/json",
      "User-Agent": "workflow-webhooks/0.1.0",
      "X-Delivery-Id": "d-7f3a",
      "X-Delivery-Attempt": "2",
      "X-HubSpot-Signature": "ab12CD34",
    };

    // Act
    const result = success(
      await webhooks.send({
        method: "POST",
        url: receiverUrl("/echo?b=2&a=1&b=3&empty="),
        headers,
        body,
      }),
    );

    // Assess
    expect(result.response.statusCode).toBe(201);
    expect(lastSeen?.method).toBe("POST");
    expect(lastSeen?.url).toBe("/echo?b=2&a=1&b=3&empty=");
    expect(lastSeen?.body.equals(Buffer.from(body, "utf8"))).toBe(true);
    const received = pairs(lastSeen?.rawHeaders ?? []);
    for (const [name, value] of Object.entries(headers)) {
      expect(received).toContainEqual([name.toLowerCase(), value]);
    }
    expect(received).toContainEqual(["content-length", String(Buffer.byteLength(body))]);
    expect(received).toContainEqual([
      "host",
      `${RECEIVER}:${(receiver.address() as AddressInfo).port}`,
    ]);
  });

  it("sends a GET without any body", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const result = success(
      await webhooks.send({ method: "GET", url: receiverUrl("/echo?x=1"), headers: {} }),
    );

    // Assess
    expect(result.response.statusCode).toBe(201);
    expect(lastSeen?.method).toBe("GET");
    expect(lastSeen?.body.length).toBe(0);
    const names = pairs(lastSeen?.rawHeaders ?? []).map(([name]) => name);
    expect(names).not.toContain("transfer-encoding");
    expect(names).not.toContain("content-type");
  });

  it("answers a request Node refuses as it ends (a Trailer header on a GET) with a failure, never a throw", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const sending = webhooks.send({
      method: "GET",
      url: receiverUrl("/echo"),
      headers: { Trailer: "k" },
    });

    // Assess
    const result = failure(await sending);
    expect(result.errorKind).toBe("other");
    expect(result.error).toMatch(/trailer/i);
    await webhooks.close();
  });

  it("refuses a GET that carries a body, without sending", async () => {
    // Prepare
    const webhooks = client();
    const connectsBefore = loopbackOnly.count();
    const acceptedBefore = acceptedBy(receiver);

    // Act
    const result = failure(
      await webhooks.send({ method: "GET", url: receiverUrl("/echo"), headers: {}, body: "{}" }),
    );

    // Assess
    expect(result.errorKind).toBe("other");
    expect(result.error).toBe("a GET request carries no body");
    expect(acceptedBy(receiver)).toEqual(acceptedBefore);
    expect(loopbackOnly.count()).toBe(connectsBefore);
  });

  it("lower-cases response header names and joins repeats", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const result = success(
      await webhooks.send({ method: "POST", url: receiverUrl("/headers"), headers: {}, body: "" }),
    );

    // Assess
    expect(result.response.statusCode).toBe(204);
    expect(result.response.headers["x-repeated"]).toBe("first, second");
    expect(result.response.headers["set-cookie"]).toBe("a=1, b=2");
    expect(result.response.headers["x-single"]).toBe("Value With Case");
    expect(Object.keys(result.response.headers).every((name) => name === name.toLowerCase())).toBe(
      true,
    );
  });

  it("returns a 302 as it is and never follows it", async () => {
    // Prepare
    const webhooks = client();
    const hitsBefore = targetHits;

    // Act
    const result = success(
      await webhooks.send({
        method: "POST",
        url: receiverUrl("/redirect"),
        headers: {},
        body: "{}",
      }),
    );

    // Assess
    expect(result.response.statusCode).toBe(302);
    expect(result.response.headers.location).toBe(receiverUrl("/target"));
    expect(targetHits).toBe(hitsBefore);
  });

  it("reuses one connection for sequential sends", async () => {
    // Prepare
    const webhooks = client();
    const before = connections;

    // Act
    const results = [];
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      results.push(
        await webhooks.send({ method: "POST", url: receiverUrl("/ok"), headers: {}, body: "{}" }),
      );
    }

    // Assess
    expect(results.map((result) => success(result).response.statusCode)).toEqual([
      200, 200, 200, 200,
    ]);
    expect(connections - before).toBe(1);
  });

  it("resumes the TLS session of an earlier connection to the same receiver", async () => {
    // Prepare: the receiver closes every connection after its response
    const webhooks = client();
    const resumed: boolean[] = [];
    const note = (socket: TLSSocket) => resumed.push(socket.isSessionReused());
    receiver.on("secureConnection", note);

    // Act
    const first = await webhooks.send({ method: "GET", url: receiverUrl("/close"), headers: {} });
    const second = await webhooks.send({ method: "GET", url: receiverUrl("/close"), headers: {} });
    receiver.off("secureConnection", note);

    // Assess
    expect(success(first).response.body).toBe("closing");
    expect(success(second).response.body).toBe("closing");
    expect(resumed).toEqual([false, true]);
  });

  it("resolves once per connection and dials the address it resolved", async () => {
    // Prepare: a name that would rebind to another address on a second lookup
    let answers = 0;
    const resolve = vi.fn(async () => {
      answers += 1;
      return [{ address: answers === 1 ? "127.0.0.1" : "10.0.0.1", family: 4 as const }];
    });
    const webhooks = client({ resolve });
    const acceptedBefore = acceptedBy(receiver).length;
    const connectsBefore = loopbackOnly.count();

    // Act
    const first = await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} });
    const second = await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} });

    // Assess
    expect(success(first).response.statusCode).toBe(200);
    expect(success(second).response.statusCode).toBe(200);
    expect(resolve).toHaveBeenCalledTimes(1);
    expect(acceptedBy(receiver).slice(acceptedBefore)).toEqual(["127.0.0.1"]);
    expect(loopbackOnly.hostsSince(connectsBefore)).toEqual(["127.0.0.1"]);
  });

  it("connects over IPv6 to ::1", async () => {
    // Prepare
    const webhooks = client({ resolve: fakeResolver({ [RECEIVER]: ["::1"] }).resolve });
    const acceptedBefore = acceptedBy(receiverV6).length;

    // Act
    const byName = await webhooks.send({
      method: "GET",
      url: receiverUrl("/ok", receiverV6),
      headers: {},
    });
    const byLiteral = await webhooks.send({
      method: "GET",
      url: `https://[::1]:${(receiverV6.address() as AddressInfo).port}/ok`,
      headers: {},
    });

    // Assess
    expect(success(byName).response.body).toBe("hello from the receiver");
    expect(success(byLiteral).response.statusCode).toBe(200);
    expect(acceptedBy(receiverV6).slice(acceptedBefore)).toEqual(["::1", "::1"]);
  });

  it("verifies an IP-literal target against the certificate's IP address", async () => {
    // Prepare
    const resolver = fakeResolver({});
    const webhooks = client({ resolve: resolver.resolve });

    // Act
    const result = await webhooks.send({
      method: "GET",
      url: `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/ok`,
      headers: {},
    });

    // Assess
    expect(success(result).response.statusCode).toBe(200);
    expect(resolver.calls).toEqual([]);
  });
});

describe("webhook client bounds what a receiver can make it read or wait for", () => {
  it("keeps the first bytes of a 50 MB body and hangs up at once", async () => {
    // Prepare
    const webhooks = client({ maxBodyBytes: 4096, responseTimeoutMs: 20_000 });
    const memoryBefore = memoryInUse();

    // Act
    const result = success(
      await webhooks.send({ method: "GET", url: receiverUrl("/large"), headers: {} }),
    );
    const memoryAfter = memoryInUse();
    await lastStream?.closed;

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.response.body).toBe("a".repeat(4096));
    expect(result.response.bodyTruncated).toBe(true);
    expect(result.durationMs).toBeLessThan(5_000);
    expect(lastStream?.bytes).toBeLessThan(LARGE_BODY_BYTES / 3);
    expect(memoryAfter - memoryBefore).toBeLessThan(24 * 1024 * 1024);
  });

  it("cuts an endless body at the bound long before the response timeout", async () => {
    // Prepare
    const webhooks = client({ maxBodyBytes: 100, responseTimeoutMs: 20_000 });

    // Act
    const result = success(
      await webhooks.send({ method: "GET", url: receiverUrl("/endless"), headers: {} }),
    );
    await lastStream?.closed;

    // Assess
    expect(result.response.body).toBe("a".repeat(100));
    expect(result.response.bodyTruncated).toBe(true);
    expect(result.durationMs).toBeLessThan(5_000);
    expect(lastStream?.bytes).toBeLessThan(32 * 1024 * 1024);
  });

  it("keeps a body exactly as long as the bound without calling it truncated", async () => {
    // Prepare
    const webhooks = client({ maxBodyBytes: "hello from the receiver".length });

    // Act
    const result = success(
      await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} }),
    );

    // Assess
    expect(result.response.body).toBe("hello from the receiver");
    expect(result.response.bodyTruncated).toBe(false);
  });

  it("gives up on a receiver that never answers", async () => {
    // Prepare
    const webhooks = client({ responseTimeoutMs: 300 });

    // Act
    const result = failure(
      await webhooks.send({ method: "POST", url: receiverUrl("/hang"), headers: {}, body: "{}" }),
    );

    // Assess
    expect(result.errorKind).toBe("timeout");
    expect(result.error).toBe("response timeout after 300 ms");
    expect(result.durationMs).toBeGreaterThanOrEqual(250);
    expect(result.durationMs).toBeLessThan(3_000);
  });

  it("gives up on a TLS handshake that never happens", async () => {
    // Prepare
    const webhooks = client({
      connectTimeoutMs: 300,
      resolve: fakeResolver({ "silent.test": ["127.0.0.1"] }).resolve,
    });

    // Act
    const result = failure(
      await webhooks.send({
        method: "GET",
        url: `https://silent.test:${(silentTcp.address() as AddressInfo).port}/`,
        headers: {},
      }),
    );

    // Assess
    expect(result.errorKind).toBe("timeout");
    expect(result.error).toBe("connect timeout after 300 ms");
    expect(result.durationMs).toBeLessThan(3_000);
  });

  it("counts a resolver that never answers against the connect timeout", async () => {
    // Prepare
    const webhooks = client({ connectTimeoutMs: 200, resolve: () => new Promise(() => {}) });
    const connectsBefore = loopbackOnly.count();
    const acceptedBefore = acceptedBy(receiver);

    // Act
    const result = failure(
      await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} }),
    );

    // Assess
    expect(result.errorKind).toBe("timeout");
    expect(result.error).toBe("connect timeout after 200 ms");
    expect(acceptedBy(receiver)).toEqual(acceptedBefore);
    expect(loopbackOnly.count()).toBe(connectsBefore);
  });

  it("reports a connection the receiver resets", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const result = failure(
      await webhooks.send({ method: "POST", url: receiverUrl("/reset"), headers: {}, body: "{}" }),
    );

    // Assess
    expect(result.errorKind).toBe("connect");
    expect(result.error).toMatch(/^connection lost: /);
  });

  it("reports a refused connection on a closed port", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const result = failure(
      await webhooks.send({
        method: "GET",
        url: `https://${RECEIVER}:${closedPort}/`,
        headers: {},
      }),
    );

    // Assess
    expect(result.errorKind).toBe("connect");
    expect(result.error).toBe(`connection failed: connect ECONNREFUSED 127.0.0.1:${closedPort}`);
  });

  it("tries the next resolved address when one refuses the connection", async () => {
    // Prepare
    const port = (receiver.address() as AddressInfo).port;
    const webhooks = client({
      resolve: fakeResolver({ [RECEIVER]: ["::1", "127.0.0.1"] }).resolve,
    });
    const v6Port = (receiverV6.address() as AddressInfo).port;
    const connectsBefore = loopbackOnly.count();
    const acceptedBefore = acceptedBy(receiver).length;

    // Act
    const result = await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} });

    // Assess: ::1 has nothing on the IPv4 receiver's port, unless the ports happen to match
    expect(success(result).response.statusCode).toBe(200);
    const portsMatch = port === v6Port;
    expect(loopbackOnly.hostsSince(connectsBefore)).toEqual(
      portsMatch ? ["::1"] : ["::1", "127.0.0.1"],
    );
    expect(acceptedBy(receiver).slice(acceptedBefore)).toEqual(portsMatch ? [] : ["127.0.0.1"]);
  });

  it("reports a DNS failure", async () => {
    // Prepare
    const webhooks = client({ resolve: fakeResolver({}).resolve });

    // Act
    const result = failure(
      await webhooks.send({ method: "GET", url: "https://unknown.test/", headers: {} }),
    );

    // Assess
    expect(result.errorKind).toBe("dns");
    expect(result.error).toBe(
      "dns: cannot resolve unknown.test: getaddrinfo ENOTFOUND unknown.test",
    );
  });

  it("reports a name without addresses as a DNS failure", async () => {
    // Prepare
    const webhooks = client({ resolve: fakeResolver({ "empty.test": [] }).resolve });

    // Act
    const result = failure(
      await webhooks.send({ method: "GET", url: "https://empty.test/", headers: {} }),
    );

    // Assess
    expect(result.errorKind).toBe("dns");
    expect(result.error).toBe("dns: empty.test has no address");
  });
});

describe("webhook client verifies the receiver's certificate", () => {
  it("fails with a tls error on a certificate it does not trust", async () => {
    // Prepare
    const webhooks = client();

    // Act
    const result = failure(
      await webhooks.send({
        method: "GET",
        url: receiverUrl("/ok", untrustedReceiver),
        headers: {},
      }),
    );

    // Assess
    expect(result.errorKind).toBe("tls");
    expect(result.error).toMatch(/^tls: self[- ]signed certificate/);
  });

  it("checks the certificate against the URL's host name, not the dialled address", async () => {
    // Prepare
    const webhooks = client({ ca: [trusted.cert, otherName.cert] });

    // Act
    const result = failure(
      await webhooks.send({
        method: "GET",
        url: receiverUrl("/ok", wrongNameReceiver),
        headers: {},
      }),
    );

    // Assess
    expect(result.errorKind).toBe("tls");
    expect(result.error).toMatch(/receiver\.test/);
    expect(result.error).toMatch(/altnames/);
  });

  it("trusts nothing extra when no ca is given", async () => {
    // Prepare
    const webhooks = client({ ca: undefined });

    // Act
    const result = failure(
      await webhooks.send({ method: "GET", url: receiverUrl("/ok"), headers: {} }),
    );

    // Assess
    expect(result.errorKind).toBe("tls");
  });
});

describe("webhook client settings", () => {
  it.each([
    [{ connectTimeoutMs: 0 }, "connectTimeoutMs must be an integer of at least 1, got 0"],
    [{ responseTimeoutMs: 1.5 }, "responseTimeoutMs must be an integer of at least 1, got 1.5"],
    [{ maxBodyBytes: -1 }, "maxBodyBytes must be an integer of at least 0, got -1"],
  ])("refuses %j at creation", (settings, message) => {
    // Act
    const create = () => createWebhookClient({ allowPrivateTargets: false, ...settings });

    // Assess
    expect(create).toThrow(RangeError);
    expect(create).toThrow(message);
  });
});

describe("webhook client refuses non-public targets without dialling", () => {
  /** [url, what the resolver answers for its host, the refusal] */
  const hostile: ReadonlyArray<readonly [string, readonly string[], string]> = [
    [
      "https://internal.test/",
      ["10.0.0.1"],
      "refused: internal.test resolves to 10.0.0.1, which is private (10.0.0.0/8)",
    ],
    [
      "https://metadata.test/latest/meta-data/",
      ["169.254.169.254"],
      "refused: metadata.test resolves to 169.254.169.254, which is cloud metadata endpoint, link-local (169.254.169.254/32)",
    ],
    [
      "https://localhost/",
      ["127.0.0.1", "::1"],
      "refused: localhost resolves to 127.0.0.1, which is loopback (127.0.0.0/8)",
    ],
    ["https://v6.test/", ["::1"], "refused: v6.test resolves to ::1, which is loopback (::1/128)"],
    [
      "https://ula.test/",
      ["fd00:ec2::254"],
      "refused: ula.test resolves to fd00:ec2::254, which is unique-local (fc00::/7)",
    ],
    [
      "https://mapped.test/",
      ["::ffff:10.0.0.1"],
      "refused: mapped.test resolves to ::ffff:10.0.0.1, which is IPv4-mapped (::ffff:0:0/96) of 10.0.0.1, private (10.0.0.0/8)",
    ],
    [
      "https://nat64.test/",
      ["64:ff9b::a9fe:a9fe"],
      "refused: nat64.test resolves to 64:ff9b::a9fe:a9fe, which is NAT64 (64:ff9b::/96) of 169.254.169.254, cloud metadata endpoint, link-local (169.254.169.254/32)",
    ],
    [
      "https://rebind.test/",
      ["93.184.215.14", "10.0.0.1"],
      "refused: rebind.test resolves to 10.0.0.1, which is private (10.0.0.0/8)",
    ],
    [
      "https://rebind6.test/",
      ["2606:4700:4700::1111", "fe80::1"],
      "refused: rebind6.test resolves to fe80::1, which is link-local (fe80::/10)",
    ],
    [
      "https://cgnat.test/",
      ["100.64.0.1"],
      "refused: cgnat.test resolves to 100.64.0.1, which is carrier-grade NAT (100.64.0.0/10)",
    ],
    ["https://127.0.0.1:8443/", [], "refused: 127.0.0.1 is loopback (127.0.0.0/8)"],
    ["https://10.0.0.1/", [], "refused: 10.0.0.1 is private (10.0.0.0/8)"],
    [
      "https://169.254.169.254/latest/meta-data/",
      [],
      "refused: 169.254.169.254 is cloud metadata endpoint, link-local (169.254.169.254/32)",
    ],
    ["https://2130706433/", [], "refused: 127.0.0.1 is loopback (127.0.0.0/8)"],
    ["https://0x7f.1/", [], "refused: 127.0.0.1 is loopback (127.0.0.0/8)"],
    [
      "https://0251.0376.0251.0376/",
      [],
      "refused: 169.254.169.254 is cloud metadata endpoint, link-local (169.254.169.254/32)",
    ],
    ["https://[::1]/", [], "refused: ::1 is loopback (::1/128)"],
    [
      "https://[::ffff:127.0.0.1]/",
      [],
      "refused: ::ffff:7f00:1 is IPv4-mapped (::ffff:0:0/96) of 127.0.0.1, loopback (127.0.0.0/8)",
    ],
    [
      "https://[::ffff:a9fe:a9fe]/",
      [],
      "refused: ::ffff:a9fe:a9fe is IPv4-mapped (::ffff:0:0/96) of 169.254.169.254, cloud metadata endpoint, link-local (169.254.169.254/32)",
    ],
    ["https://[fd00:ec2::254]/", [], "refused: fd00:ec2::254 is unique-local (fc00::/7)"],
    [
      "https://[64:ff9b::7f00:1]/",
      [],
      "refused: 64:ff9b::7f00:1 is NAT64 (64:ff9b::/96) of 127.0.0.1, loopback (127.0.0.0/8)",
    ],
    ["http://receiver.test/", [], "refused: url: must be an absolute https:// URL"],
    [
      "https://user:pw@receiver.test/",
      [],
      "refused: url: must not contain a user name or password",
    ],
  ];

  it.each(hostile)("%s (resolving to %j)", async (url, addresses, refusal) => {
    // Prepare
    const host = new URL(url).hostname;
    const resolver = fakeResolver({ [host]: addresses });
    const webhooks = client({ allowPrivateTargets: false, resolve: resolver.resolve });
    const connectsBefore = loopbackOnly.count();

    // Act
    const result = failure(await webhooks.send({ method: "POST", url, headers: {}, body: "{}" }));

    // Assess
    expect(result.errorKind).toBe("refused");
    expect(result.error).toBe(refusal);
    expect(loopbackOnly.count()).toBe(connectsBefore);
  });

  it.each([
    [
      "a name that resolves to it",
      () => receiverUrl("/ok"),
      "refused: receiver.test resolves to 127.0.0.1, which is loopback (127.0.0.0/8)",
    ],
    [
      "its address",
      () => `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/ok`,
      "refused: 127.0.0.1 is loopback (127.0.0.0/8)",
    ],
  ])("never reaches a receiver listening on loopback through %s", async (_via, url, refusal) => {
    // Prepare: the same receiver answers a client that allows private targets
    const strict = client({ allowPrivateTargets: false });
    const lenient = client({ allowPrivateTargets: true });
    const acceptedBefore = acceptedBy(receiver).length;

    // Act
    const refused = failure(await strict.send({ method: "GET", url: url(), headers: {} }));
    const acceptedAfterRefusal = acceptedBy(receiver).length;
    const answered = success(await lenient.send({ method: "GET", url: url(), headers: {} }));

    // Assess
    expect(refused.errorKind).toBe("refused");
    expect(refused.error).toBe(refusal);
    expect(acceptedAfterRefusal).toBe(acceptedBefore);
    expect(answered.response.statusCode).toBe(200);
    expect(acceptedBy(receiver).slice(acceptedBefore)).toEqual(["127.0.0.1"]);
  });

  it("refuses a Host header that would point the request elsewhere", async () => {
    // Prepare
    const webhooks = client();
    const connectsBefore = loopbackOnly.count();
    const acceptedBefore = acceptedBy(receiver);

    // Act
    const result = failure(
      await webhooks.send({
        method: "GET",
        url: receiverUrl("/ok"),
        headers: { HOST: "other.test" },
      }),
    );

    // Assess
    expect(result.errorKind).toBe("other");
    expect(acceptedBy(receiver)).toEqual(acceptedBefore);
    expect(loopbackOnly.count()).toBe(connectsBefore);
  });
});

/** Heap plus Buffer memory: a client that buffered the whole body would show it here. */
function memoryInUse(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** rawHeaders as [lower-cased name, value] pairs. */
function pairs(rawHeaders: readonly string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    result.push([(rawHeaders[index] ?? "").toLowerCase(), rawHeaders[index + 1] ?? ""]);
  }
  return result;
}
