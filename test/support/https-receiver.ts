import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A self-signed certificate, made with openssl for one test run. */
export interface TestCertificate {
  readonly key: string;
  readonly cert: string;
  /** The certificate's file, for NODE_EXTRA_CA_CERTS. */
  readonly certFile: string;
  remove(): void;
}

/** Whom a certificate is for: its common name and its subjectAltName, as openssl writes them. */
export interface CertificateSubject {
  /** The common name, such as `localhost`. */
  readonly name: string;
  /** Such as `IP:127.0.0.1,DNS:localhost`. */
  readonly subjectAltName: string;
}

/** A self-signed certificate for `subject`, by default for 127.0.0.1 and localhost. */
export function makeTestCertificate(
  subject: CertificateSubject = { name: "localhost", subjectAltName: "IP:127.0.0.1,DNS:localhost" },
): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "receiver-cert-"));
  const keyFile = join(dir, "receiver.key");
  const certFile = join(dir, "receiver.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      `/CN=${subject.name}`,
      "-addext",
      `subjectAltName=${subject.subjectAltName}`,
    ],
    { stdio: "ignore" },
  );
  return {
    key: readFileSync(keyFile, "utf8"),
    cert: readFileSync(certFile, "utf8"),
    certFile,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A self-signed certificate for 127.0.0.1 that expired years ago, otherwise valid: a client that
 * trusts it still refuses it for its dates. `openssl req` cannot back-date, so `openssl ca` signs.
 */
export function makeExpiredTestCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "expired-cert-"));
  const file = (name: string) => join(dir, name);
  writeFileSync(file("index.txt"), "");
  writeFileSync(file("serial"), "01\n");
  writeFileSync(
    file("ca.cnf"),
    [
      "[ca]",
      "default_ca = expired",
      "[expired]",
      `database = ${file("index.txt")}`,
      `new_certs_dir = ${dir}`,
      `serial = ${file("serial")}`,
      "default_md = sha256",
      "policy = any",
      "copy_extensions = copy",
      "unique_subject = no",
      "[any]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  run([
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    file("expired.key"),
    "-out",
    file("expired.csr"),
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
  ]);
  run([
    "ca",
    "-batch",
    "-config",
    file("ca.cnf"),
    "-selfsign",
    "-keyfile",
    file("expired.key"),
    "-in",
    file("expired.csr"),
    "-out",
    file("expired.crt"),
    "-notext",
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200102000000Z",
  ]);
  return {
    key: readFileSync(file("expired.key"), "utf8"),
    cert: readFileSync(file("expired.crt"), "utf8"),
    certFile: file("expired.crt"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** One request as the receiver saw it. */
export interface ReceivedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
  readonly receivedAt: number;
}

/** What the receiver answers; `hang` never answers (until the receiver closes). */
export type ReceiverAnswer =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string }
  | { readonly hang: true };

export interface TestReceiver {
  /** `https://127.0.0.1:<port><path>` */
  url(path: string): string;
  readonly requests: ReceivedRequest[];
  /** Requests whose path starts with `path`. */
  requestsTo(path: string): ReceivedRequest[];
  close(): Promise<void>;
}

/**
 * A real HTTPS receiver on 127.0.0.1. `answer` decides each response from the request and how
 * many requests that path has seen before (0 for the first).
 */
export async function startReceiver(
  certificate: TestCertificate,
  answer: (request: ReceivedRequest, previousOnPath: number) => ReceiverAnswer,
): Promise<TestReceiver> {
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer(
    { key: certificate.key, cert: certificate.cert },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const received: ReceivedRequest = {
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          receivedAt: Date.now(),
        };
        const path = received.url.split("?")[0] ?? "";
        const previous = requests.filter((r) => r.url.split("?")[0] === path).length;
        requests.push(received);
        const reply = answer(received, previous);
        if ("hang" in reply) {
          hanging.add(res);
          return;
        }
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? "");
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `https://127.0.0.1:${port}${path}`,
    requests,
    requestsTo: (path) => requests.filter((r) => r.url.startsWith(path)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
