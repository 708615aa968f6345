import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Resolve } from "#adapters/checked-connector";
import { createWebhookClient, type WebhookClient } from "#adapters/webhook-client";
import { classifyAttempt } from "#domain/retry-policy";
import {
  makeTestCertificate,
  startReceiver,
  type TestCertificate,
  type TestReceiver,
} from "#test/https-receiver";
import { allowLoopbackOnly, type LoopbackGuard } from "#test/loopback-only";
import { reportFigures } from "#test/reliability-figures";

/**
 * Hostile webhook targets (docs/contract.md, section 6): every non-public IPv4 and IPv6 range, IPv4-mapped and
 * NAT64 forms, decimal, octal and hex spellings, names resolving to private addresses, DNS
 * rebinding and redirects. Each is refused with a reason and without a connection: a TLS listener
 * on 127.0.0.1, where loopback targets point, counts the connections it gets (none), and every
 * other connect in this process is refused by the loopback-only guard and counted. Names resolve
 * through an injected resolver, never through DNS.
 */
const PORT_PLACEHOLDER = "PORT";

/** [target (PORT is the listener's port), what the resolver answers for its name, the reason] */
type HostileTarget = readonly [url: string, answers: readonly string[], reason: string];

const literalIpv4: HostileTarget[] = [
  ["https://0.0.0.0:PORT/", [], '"this network" (0.0.0.0/8)'],
  ["https://10.1.2.3/", [], "private (10.0.0.0/8)"],
  ["https://100.64.0.1/", [], "carrier-grade NAT (100.64.0.0/10)"],
  ["https://127.0.0.1:PORT/", [], "loopback (127.0.0.0/8)"],
  ["https://127.255.255.254:PORT/", [], "loopback (127.0.0.0/8)"],
  ["https://169.254.169.254/latest/meta-data/", [], "cloud metadata endpoint, link-local"],
  ["https://169.254.1.1/", [], "link-local (169.254.0.0/16)"],
  ["https://172.16.0.1/", [], "private (172.16.0.0/12)"],
  ["https://172.31.255.255/", [], "private (172.16.0.0/12)"],
  ["https://192.0.0.8/", [], "IETF protocol assignments (192.0.0.0/24)"],
  ["https://192.0.2.1/", [], "documentation (TEST-NET-1) (192.0.2.0/24)"],
  ["https://192.88.99.1/", [], "6to4 relay anycast (192.88.99.0/24)"],
  ["https://192.168.1.1/", [], "private (192.168.0.0/16)"],
  ["https://198.18.0.1/", [], "benchmarking (198.18.0.0/15)"],
  ["https://198.51.100.1/", [], "documentation (TEST-NET-2) (198.51.100.0/24)"],
  ["https://203.0.113.1/", [], "documentation (TEST-NET-3) (203.0.113.0/24)"],
  ["https://224.0.0.1/", [], "multicast (224.0.0.0/4)"],
  ["https://239.255.255.250/", [], "multicast (224.0.0.0/4)"],
  ["https://240.0.0.1/", [], "reserved (240.0.0.0/4)"],
  ["https://255.255.255.255/", [], "broadcast (255.255.255.255/32)"],
];

const literalIpv6: HostileTarget[] = [
  ["https://[::]:PORT/", [], "unspecified (::/128)"],
  ["https://[::1]:PORT/", [], "loopback (::1/128)"],
  ["https://[::ffff:127.0.0.1]:PORT/", [], "IPv4-mapped (::ffff:0:0/96) of 127.0.0.1"],
  ["https://[::ffff:a9fe:a9fe]/", [], "IPv4-mapped (::ffff:0:0/96) of 169.254.169.254"],
  ["https://[::ffff:10.0.0.1]/", [], "IPv4-mapped (::ffff:0:0/96) of 10.0.0.1, private"],
  ["https://[::127.0.0.1]:PORT/", [], "IPv4-compatible (deprecated) (::/96)"],
  ["https://[64:ff9b::7f00:1]/", [], "NAT64 (64:ff9b::/96) of 127.0.0.1, loopback"],
  ["https://[64:ff9b::a9fe:a9fe]/", [], "NAT64 (64:ff9b::/96) of 169.254.169.254"],
  ["https://[64:ff9b:1::a00:1]/", [], "local-use NAT64 (64:ff9b:1::/48)"],
  ["https://[100::1]/", [], "discard-only (100::/64)"],
  ["https://[2001::1]/", [], "Teredo (2001::/32)"],
  ["https://[2001:db8::1]/", [], "documentation (2001:db8::/32)"],
  ["https://[2002:7f00:1::1]/", [], "6to4 (2002::/16) of 127.0.0.1, loopback"],
  ["https://[2002:a9fe:a9fe::1]/", [], "6to4 (2002::/16) of 169.254.169.254"],
  ["https://[3fff::1]/", [], "documentation (3fff::/20)"],
  ["https://[fc00::1]/", [], "unique-local (fc00::/7)"],
  ["https://[fd00:ec2::254]/", [], "unique-local (fc00::/7)"],
  ["https://[fe80::1]/", [], "link-local (fe80::/10)"],
  ["https://[fec0::1]/", [], "site-local (deprecated) (fec0::/10)"],
  ["https://[ff02::1]/", [], "multicast (ff00::/8)"],
];

/** Other spellings of loopback and metadata addresses; the URL parser reads them as dotted quads. */
const spellings: HostileTarget[] = [
  ["https://2130706433:PORT/", [], "127.0.0.1 is loopback"],
  ["https://0x7f000001:PORT/", [], "127.0.0.1 is loopback"],
  ["https://017700000001:PORT/", [], "127.0.0.1 is loopback"],
  ["https://0177.0.0.1:PORT/", [], "127.0.0.1 is loopback"],
  ["https://0x7f.0.0.1:PORT/", [], "127.0.0.1 is loopback"],
  ["https://127.1:PORT/", [], "127.0.0.1 is loopback"],
  ["https://%31%32%37.0.0.1:PORT/", [], "127.0.0.1 is loopback"],
  ["https://127.0.0.1.:PORT/", [], "127.0.0.1 is loopback"],
  ["https://0:PORT/", [], '0.0.0.0 is "this network"'],
  ["https://0251.0376.0251.0376/", [], "169.254.169.254 is cloud metadata endpoint"],
  ["https://0xa9.0xfe.0xa9.0xfe/", [], "169.254.169.254 is cloud metadata endpoint"],
  ["https://3232235777/", [], "192.168.1.1 is private"],
  ["https://[0:0:0:0:0:ffff:127.0.0.1]:PORT/", [], "IPv4-mapped (::ffff:0:0/96) of 127.0.0.1"],
];

/** Names whose (injected) resolver answers non-public addresses, alone or among public ones. */
const names: HostileTarget[] = [
  ["https://localhost:PORT/", ["127.0.0.1", "::1"], "localhost resolves to 127.0.0.1"],
  ["https://internal.test/", ["10.0.0.1"], "resolves to 10.0.0.1, which is private"],
  ["https://metadata.test/", ["169.254.169.254"], "which is cloud metadata endpoint"],
  ["https://imds6.test/", ["fd00:ec2::254"], "resolves to fd00:ec2::254, which is unique-local"],
  ["https://loop6.test:PORT/", ["::1"], "resolves to ::1, which is loopback"],
  ["https://mapped.test/", ["::ffff:169.254.169.254"], "IPv4-mapped (::ffff:0:0/96)"],
  ["https://nat64.test/", ["64:ff9b::a00:1"], "NAT64 (64:ff9b::/96) of 10.0.0.1"],
  ["https://cgnat.test/", ["100.100.100.200"], "carrier-grade NAT (100.64.0.0/10)"],
  ["https://mixed.test:PORT/", ["93.184.215.14", "127.0.0.1"], "resolves to 127.0.0.1"],
  ["https://mixed6.test/", ["2606:4700:4700::1111", "fe80::1"], "resolves to fe80::1"],
  ["https://LocalHost.:PORT/", ["127.0.0.1"], "localhost. resolves to 127.0.0.1"],
];

/** Targets the URL policy refuses before anything is resolved. */
const urls: HostileTarget[] = [
  ["http://127.0.0.1:PORT/", [], "must be an absolute https:// URL"],
  ["file:///etc/passwd", [], "must be an absolute https:// URL"],
  ["gopher://127.0.0.1:PORT/_x", [], "must be an absolute https:// URL"],
  ["https://user:pw@receiver.test/", [], "must not contain a user name or password"],
  ["https:///127.0.0.1:PORT/", [], "a host is required"],
  ["https://127.0.0.1:PORT\t/", [], "must not contain spaces or control characters"],
];

const table = [...literalIpv4, ...literalIpv6, ...spellings, ...names, ...urls];

let certificate: TestCertificate;
let listener: tls.Server;
let listenerConnections = 0;
let loopbackOnly: LoopbackGuard;
let redirector: TestReceiver;
let strict: WebhookClient;
let lenient: WebhookClient;
const resolverCalls: string[] = [];
let refusedWithoutConnection = 0;

/** Answers the table's names; the second look-up of `rebind.test` would point elsewhere. */
const resolve: Resolve = async (hostname) => {
  resolverCalls.push(hostname);
  const key = hostname.toLowerCase().replace(/\.$/, "");
  if (key === "rebind.test") {
    const first = resolverCalls.filter((name) => name === hostname).length === 1;
    return [{ address: first ? "127.0.0.1" : "93.184.215.14", family: 4 }];
  }
  const row = names.find(([url]) => new URL(withPort(url)).hostname.replace(/\.$/, "") === key);
  if (row === undefined) throw new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  return row[1].map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
};

beforeAll(async () => {
  loopbackOnly = allowLoopbackOnly();
  certificate = makeTestCertificate();
  listener = tls.createServer({ key: certificate.key, cert: certificate.cert });
  listener.on("connection", () => {
    listenerConnections += 1;
  });
  listener.on("tlsClientError", () => {});
  await new Promise<void>((resolveListen) => listener.listen(0, "127.0.0.1", resolveListen));
  redirector = await startReceiver(certificate, (request) => {
    const [, status, ...rest] = request.url.split("/");
    return { status: Number(status), headers: { location: decodeURIComponent(rest.join("/")) } };
  });
  strict = createWebhookClient({ allowPrivateTargets: false, resolve, connectTimeoutMs: 2_000 });
  lenient = createWebhookClient({ allowPrivateTargets: true, ca: certificate.cert, resolve });
});

afterAll(async () => {
  await strict?.close();
  await lenient?.close();
  await redirector?.close();
  await new Promise((done) => listener?.close(done));
  certificate?.remove();
  loopbackOnly?.restore();
  reportFigures({
    suite: "SSRF: hostile webhook targets",
    inputs: table.length + 1 + REDIRECTS.length,
    notes: `${refusedWithoutConnection} refused with a reason and no connection; ${REDIRECTS.length} redirects to hostile targets not followed`,
  });
});

function withPort(url: string): string {
  return url.replace(PORT_PLACEHOLDER, String((listener.address() as AddressInfo).port));
}

describe(`${table.length} hostile targets`, () => {
  it("are at least 40, covering every category", () => {
    // Assess
    expect(table.length).toBeGreaterThanOrEqual(40);
    for (const category of [literalIpv4, literalIpv6, spellings, names, urls]) {
      expect(category.length).toBeGreaterThan(0);
    }
  });

  it.each(table)("%s (resolving to %j) is refused: %s", async (url, _answers, reason) => {
    // Prepare
    const connectsBefore = loopbackOnly.count();
    const listenerBefore = listenerConnections;

    // Act
    const result = await strict.send({
      method: "POST",
      url: withPort(url),
      headers: {},
      body: "{}",
    });

    // Assess
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errorKind).toBe("refused");
    expect(result.error).toMatch(/^refused: /);
    expect(result.error).toContain(reason);
    expect(loopbackOnly.hostsSince(connectsBefore)).toEqual([]);
    expect(listenerConnections).toBe(listenerBefore);
    refusedWithoutConnection += 1;
  });

  it("refuses a rebinding name on its first answer and never looks it up again to connect", async () => {
    // Prepare
    const connectsBefore = loopbackOnly.count();
    const lookupsBefore = resolverCalls.length;

    // Act
    const result = await strict.send({
      method: "GET",
      url: withPort("https://rebind.test:PORT/"),
      headers: {},
    });

    // Assess
    expect(result).toMatchObject({
      ok: false,
      errorKind: "refused",
      error: "refused: rebind.test resolves to 127.0.0.1, which is loopback (127.0.0.0/8)",
    });
    expect(resolverCalls.slice(lookupsBefore)).toEqual(["rebind.test"]);
    expect(loopbackOnly.hostsSince(connectsBefore)).toEqual([]);
    refusedWithoutConnection += 1;
  });
});

const REDIRECTS = [
  [302, "http://169.254.169.254/latest/meta-data/"],
  [307, "https://internal.test/admin"],
  [308, "https://[::1]:PORT/"],
] as const;

describe("redirects to hostile targets", () => {
  it.each(REDIRECTS)(
    "a %i to %s is never followed, and the delivery fails for good",
    async (status, location) => {
      // Prepare: the redirecting receiver itself is on loopback, so this client allows it
      const url = redirector.url(`/${status}/${encodeURIComponent(withPort(location))}`);
      const connectsBefore = loopbackOnly.count();
      const listenerBefore = listenerConnections;
      const lookupsBefore = resolverCalls.length;

      // Act
      const result = await lenient.send({ method: "POST", url, headers: {}, body: "{}" });

      // Assess
      expect(result.ok && result.response.statusCode).toBe(status);
      expect(result.ok && result.response.headers.location).toBe(withPort(location));
      expect(loopbackOnly.hostsSince(connectsBefore).every((host) => host === "127.0.0.1")).toBe(
        true,
      );
      expect(listenerConnections).toBe(listenerBefore);
      expect(resolverCalls.slice(lookupsBefore)).toEqual([]);
      expect(classifyAttempt({ statusCode: status })).toEqual({
        kind: "failed",
        reason: expect.stringContaining("is not retried (redirects are not followed)"),
      });
    },
  );
});
