import { once } from "node:events";
import type { AddressInfo } from "node:net";
import tls, { type TLSSocket } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  addressRefusal,
  type CheckedConnectorOptions,
  ConnectFailureError,
  type Connector,
  checkedConnector,
  type Resolve,
} from "#adapters/checked-connector";
import { secureContextTrusting } from "#adapters/trust-store";
import { makeTestCertificate, type TestCertificate } from "#test/https-receiver";
import { allowLoopbackOnly, type LoopbackGuard } from "#test/loopback-only";

/**
 * The connector on its own, against TLS servers on 127.0.0.1 and ::1 only. Names resolve through
 * an injected resolver, never through DNS, and every TCP connect in this process that is not to
 * loopback is refused. Each server notes, for every connection it accepts, the address it was
 * dialled at and the name the client sent in SNI.
 */
const NAME = "receiver.test";

interface Accepted {
  readonly address: string;
  readonly servername: string | false;
}

interface TestServer {
  readonly server: tls.Server;
  readonly accepted: Accepted[];
  /** TCP connections, handshake or not. */
  tcp: number;
}

let trusted: TestCertificate;
let untrusted: TestCertificate;
let v4: TestServer;
let v6: TestServer;
let untrustedV4: TestServer;
let loopbackOnly: LoopbackGuard;
const sockets: TLSSocket[] = [];

function startServer(certificate: TestCertificate, host: string): Promise<TestServer> {
  const server = tls.createServer({ key: certificate.key, cert: certificate.cert });
  const state: TestServer = { server, accepted: [], tcp: 0 };
  server.on("connection", () => {
    state.tcp += 1;
  });
  server.on("secureConnection", (socket) => {
    state.accepted.push({
      address: socket.localAddress ?? "?",
      servername: socket.servername ?? false,
    });
  });
  // A client that gives up on the certificate leaves a handshake error here; it is expected.
  server.on("tlsClientError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve(state));
  });
}

/** The connections accepted since the server had `from`, waiting for a handshake still under way. */
async function acceptedSince(server: TestServer, from: number): Promise<Accepted[]> {
  while (server.accepted.length <= from) await once(server.server, "secureConnection");
  return server.accepted.slice(from);
}

function portOf({ server }: TestServer): number {
  return (server.address() as AddressInfo).port;
}

/** A resolver that knows only the names given and notes every name it is asked. */
function fakeResolver(names: Record<string, readonly string[]>) {
  const calls: string[] = [];
  const resolve: Resolve = async (hostname) => {
    calls.push(hostname);
    const addresses = names[hostname];
    if (addresses === undefined) throw new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return { resolve, calls };
}

function connector(options: Partial<CheckedConnectorOptions> = {}): Connector {
  return checkedConnector({
    allowPrivateTargets: true,
    connectTimeoutMs: 2_000,
    secureContext: secureContextTrusting(trusted.cert),
    ...options,
  });
}

/** Asks the connector for a connection to the URL's origin, as the delivery client's pool would. */
function connect(connect: Connector, url: string): Promise<TLSSocket> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    connect(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
      },
      (error, socket) => {
        if (error !== null) return reject(error);
        sockets.push(socket as TLSSocket);
        resolve(socket as TLSSocket);
      },
    );
  });
}

/** The connector's refusal, or a test failure when it connected. */
async function failureOf(attempt: Promise<TLSSocket>): Promise<ConnectFailureError> {
  const outcome = await attempt.then(
    () => new Error("expected a failure, but it connected"),
    (error: unknown) => error,
  );
  if (!(outcome instanceof ConnectFailureError)) throw outcome;
  return outcome;
}

beforeAll(async () => {
  loopbackOnly = allowLoopbackOnly();
  trusted = makeTestCertificate({
    name: NAME,
    subjectAltName: `DNS:${NAME},IP:127.0.0.1,IP:::1`,
  });
  untrusted = makeTestCertificate({ name: NAME, subjectAltName: `DNS:${NAME},IP:127.0.0.1` });
  [v4, v6, untrustedV4] = await Promise.all([
    startServer(trusted, "127.0.0.1"),
    startServer(trusted, "::1"),
    startServer(untrusted, "127.0.0.1"),
  ]);
});

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

afterAll(async () => {
  await Promise.all(
    [v4, v6, untrustedV4]
      .filter((each) => each !== undefined)
      .map(({ server }) => new Promise((resolve) => server.close(resolve))),
  );
  loopbackOnly?.restore();
  for (const certificate of [trusted, untrusted]) certificate?.remove();
});

describe("checked connector dials exactly what it checked", () => {
  it("dials the address the resolver gave and names the URL's host in SNI", async () => {
    // Prepare
    const resolver = fakeResolver({ [NAME]: ["127.0.0.1"] });
    const acceptedBefore = v4.accepted.length;

    // Act
    const socket = await connect(
      connector({ resolve: resolver.resolve }),
      `https://${NAME}:${portOf(v4)}/`,
    );

    // Assess
    expect(socket.authorized).toBe(true);
    expect(socket.remoteAddress).toBe("127.0.0.1");
    expect(resolver.calls).toEqual([NAME]);
    expect(await acceptedSince(v4, acceptedBefore)).toEqual([
      { address: "127.0.0.1", servername: NAME },
    ]);
  });

  it("sends the name without its trailing dot in SNI", async () => {
    // Prepare
    const resolver = fakeResolver({ [`${NAME}.`]: ["127.0.0.1"] });
    const acceptedBefore = v4.accepted.length;

    // Act
    const socket = await connect(
      connector({ resolve: resolver.resolve }),
      `https://${NAME}.:${portOf(v4)}/`,
    );

    // Assess
    expect(socket.authorized).toBe(true);
    expect(await acceptedSince(v4, acceptedBefore)).toEqual([
      { address: "127.0.0.1", servername: NAME },
    ]);
  });

  it.each([
    ["127.0.0.1", () => v4, (port: number) => `https://127.0.0.1:${port}/`],
    ["::1", () => v6, (port: number) => `https://[::1]:${port}/`],
  ])(
    "dials the IP literal %s itself, resolving nothing and sending no SNI",
    async (address, server, url) => {
      // Prepare
      const resolver = fakeResolver({});
      const acceptedBefore = server().accepted.length;

      // Act
      const socket = await connect(connector({ resolve: resolver.resolve }), url(portOf(server())));

      // Assess
      expect(socket.remoteAddress).toBe(address);
      expect(resolver.calls).toEqual([]);
      expect(await acceptedSince(server(), acceptedBefore)).toEqual([
        { address, servername: false },
      ]);
    },
  );

  it("tries the next address when one refuses the connection", async () => {
    // Prepare: ::1 has nothing on the IPv4 server's port, unless the ports happen to match
    const resolver = fakeResolver({ [NAME]: ["::1", "127.0.0.1"] });
    const portsMatch = portOf(v4) === portOf(v6);
    const answering = portsMatch ? v6 : v4;
    const connectsBefore = loopbackOnly.count();
    const acceptedBefore = answering.accepted.length;

    // Act
    await connect(connector({ resolve: resolver.resolve }), `https://${NAME}:${portOf(v4)}/`);

    // Assess
    expect(loopbackOnly.hostsSince(connectsBefore)).toEqual(
      portsMatch ? ["::1"] : ["::1", "127.0.0.1"],
    );
    expect(await acceptedSince(answering, acceptedBefore)).toEqual([
      { address: portsMatch ? "::1" : "127.0.0.1", servername: NAME },
    ]);
  });

  it("stops at a certificate it does not trust instead of trying the next address", async () => {
    // Prepare
    const resolver = fakeResolver({ [NAME]: ["127.0.0.1", "::1"] });
    const connectsBefore = loopbackOnly.count();

    // Act
    const failure = await failureOf(
      connect(connector({ resolve: resolver.resolve }), `https://${NAME}:${portOf(untrustedV4)}/`),
    );

    // Assess
    expect(failure.kind).toBe("tls");
    expect(failure.message).toMatch(/^tls: self[- ]signed certificate/);
    expect(loopbackOnly.hostsSince(connectsBefore)).toEqual(["127.0.0.1"]);
  });
});

describe("checked connector refuses without connecting", () => {
  it.each([
    [
      "a name resolving to loopback",
      ["127.0.0.1"],
      `${NAME} resolves to 127.0.0.1, which is loopback (127.0.0.0/8)`,
    ],
    [
      "a name resolving to a public and a loopback address",
      ["2606:4700:4700::1111", "127.0.0.1"],
      `${NAME} resolves to 127.0.0.1, which is loopback (127.0.0.0/8)`,
    ],
    [
      "a name resolving to a private address first",
      ["10.0.0.1", "127.0.0.1"],
      `${NAME} resolves to 10.0.0.1, which is private (10.0.0.0/8)`,
    ],
  ])("%s", async (_case, addresses, reason) => {
    // Prepare: the server listens where the name points
    const resolver = fakeResolver({ [NAME]: addresses });
    const strict = connector({ allowPrivateTargets: false, resolve: resolver.resolve });
    const connectsBefore = loopbackOnly.count();
    const tcpBefore = v4.tcp;

    // Act
    const failure = await failureOf(connect(strict, `https://${NAME}:${portOf(v4)}/`));

    // Assess
    expect(failure.kind).toBe("refused");
    expect(failure.message).toBe(`refused: ${reason}`);
    expect(loopbackOnly.count()).toBe(connectsBefore);
    expect(v4.tcp).toBe(tcpBefore);
  });

  it("an IP-literal target on loopback", async () => {
    // Prepare
    const strict = connector({ allowPrivateTargets: false, resolve: fakeResolver({}).resolve });
    const tcpBefore = v4.tcp;

    // Act
    const failure = await failureOf(connect(strict, `https://127.0.0.1:${portOf(v4)}/`));

    // Assess
    expect(failure.kind).toBe("refused");
    expect(failure.message).toBe("refused: 127.0.0.1 is loopback (127.0.0.0/8)");
    expect(v4.tcp).toBe(tcpBefore);
  });

  it("a target that is not https, resolving nothing", async () => {
    // Prepare
    const resolver = fakeResolver({ [NAME]: ["127.0.0.1"] });
    const tcpBefore = v4.tcp;

    // Act
    const failure = await failureOf(
      connect(connector({ resolve: resolver.resolve }), `http://${NAME}:${portOf(v4)}/`),
    );

    // Assess
    expect(failure.kind).toBe("refused");
    expect(failure.message).toBe("refused: only https:// targets are allowed");
    expect(resolver.calls).toEqual([]);
    expect(v4.tcp).toBe(tcpBefore);
  });

  it.each([
    ["fails", undefined, "dns: cannot resolve unknown.test: getaddrinfo ENOTFOUND unknown.test"],
    ["answers nothing", [], "dns: unknown.test has no address"],
    [
      "answers something that is no address",
      ["receiver"],
      'dns: unknown.test resolved to "receiver", which is no IP address',
    ],
  ])("a name whose resolver %s", async (_case, addresses, message) => {
    // Prepare
    const resolver = fakeResolver(addresses === undefined ? {} : { "unknown.test": addresses });
    const connectsBefore = loopbackOnly.count();

    // Act
    const failure = await failureOf(
      connect(connector({ resolve: resolver.resolve }), "https://unknown.test/"),
    );

    // Assess
    expect(failure.kind).toBe("dns");
    expect(failure.message).toBe(message);
    expect(loopbackOnly.count()).toBe(connectsBefore);
  });

  it("a name whose resolver never answers, at the connect deadline", async () => {
    // Prepare
    const hanging = connector({ connectTimeoutMs: 200, resolve: () => new Promise(() => {}) });
    const started = performance.now();
    const tcpBefore = v4.tcp;

    // Act
    const failure = await failureOf(connect(hanging, `https://${NAME}:${portOf(v4)}/`));

    // Assess
    expect(failure.kind).toBe("timeout");
    expect(failure.message).toBe("connect timeout after 200 ms");
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(v4.tcp).toBe(tcpBefore);
  });
});

describe("address refusals", () => {
  it.each([
    ["8.8.8.8", "8.8.8.8", undefined],
    ["2606:4700:4700::1111", "2606:4700:4700::1111", undefined],
    [
      "169.254.169.254",
      "169.254.169.254",
      "refused: 169.254.169.254 is cloud metadata endpoint, link-local (169.254.169.254/32)",
    ],
    [
      "hooks.example",
      "fd00::1",
      "refused: hooks.example resolves to fd00::1, which is unique-local (fc00::/7)",
    ],
  ])("%s at %s", (host, address, message) => {
    // Act
    const refusal = addressRefusal(host, address);

    // Assess
    expect(refusal?.message).toBe(message);
    expect(refusal?.kind).toBe(message === undefined ? undefined : "refused");
  });
});

describe("trust store", () => {
  it("trusts the extra certificates it is given, one or several", async () => {
    // Prepare
    const resolve = fakeResolver({ [NAME]: ["127.0.0.1"] }).resolve;
    const url = `https://${NAME}:${portOf(v4)}/`;

    // Act
    const single = await connect(
      connector({ resolve, secureContext: secureContextTrusting(trusted.cert) }),
      url,
    );
    const several = await connect(
      connector({ resolve, secureContext: secureContextTrusting([untrusted.cert, trusted.cert]) }),
      url,
    );

    // Assess
    expect(single.authorized).toBe(true);
    expect(several.authorized).toBe(true);
  });

  it("trusts only the default roots without extra certificates", async () => {
    // Prepare
    const resolve = fakeResolver({ [NAME]: ["127.0.0.1"] }).resolve;

    // Act
    const failure = await failureOf(
      connect(
        checkedConnector({ allowPrivateTargets: true, connectTimeoutMs: 2_000, resolve }),
        `https://${NAME}:${portOf(v4)}/`,
      ),
    );

    // Assess
    expect(failure.kind).toBe("tls");
    expect(failure.message).toMatch(/^tls: self[- ]signed certificate/);
  });
});
