/**
 * `npm run receiver`: an HTTPS webhook receiver on 127.0.0.1 for trying the system locally. It
 * makes a self-signed certificate, prints the NODE_EXTRA_CA_CERTS line that makes `npm start`
 * trust it, and prints every webhook it receives with the result of verifying its signatures.
 * Settings: RECEIVER_PORT (4000), CLIENT_SECRET (the signing app's secret, to verify signatures),
 * FAIL_FIRST (answer the first N requests of each delivery with 503, to watch retries).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyV2, verifyV3 } from "#domain/signatures";

const port = Number(process.env.RECEIVER_PORT ?? 4000);
const secret = process.env.CLIENT_SECRET;
const failFirst = Number(process.env.FAIL_FIRST ?? 0);

const dir = join(tmpdir(), "workflow-webhooks-receiver");
mkdirSync(dir, { recursive: true });
const keyFile = join(dir, "receiver.key");
const certFile = join(dir, "receiver.crt");
// biome-ignore format: one option per line would hide the command
execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { stdio: "ignore" });

const seen = new Map<string, number>();
const server = createServer(
  { key: readFileSync(keyFile), cert: readFileSync(certFile) },
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const header = (name: string) => String(req.headers[name] ?? "");
      const deliveryId = header("x-delivery-id");
      const count = (seen.get(deliveryId) ?? 0) + 1;
      seen.set(deliveryId, count);
      const status = count <= failFirst ? 503 : 200;
      const uri = `https://${req.headers.host}${req.url}`;
      const method = req.method ?? "POST";
      const verified = secret
        ? {
            v2: verifyV2({
              clientSecret: secret,
              method,
              uri,
              body,
              signature: header("x-hubspot-signature"),
            }),
            v3: verifyV3({
              clientSecret: secret,
              method,
              uri,
              body,
              timestamp: header("x-hubspot-request-timestamp"),
              signature: header("x-hubspot-signature-v3"),
            }),
          }
        : "set CLIENT_SECRET to verify signatures";
      console.log(
        JSON.stringify(
          {
            method,
            uri,
            deliveryId,
            attempt: header("x-delivery-attempt"),
            verified,
            answer: status,
            body: body && JSON.parse(body),
          },
          null,
          2,
        ),
      );
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ received: status === 200 }));
    });
  },
);

server.listen(port, "127.0.0.1", () => {
  console.log(`Receiver listening on https://127.0.0.1:${port}/`);
  console.log(`Start the system so that it trusts this receiver's certificate:`);
  console.log(`  NODE_EXTRA_CA_CERTS=${certFile} npm start`);
});
process.on("SIGINT", () => server.close(() => process.exit(0)));
