/**
 * The README's ways of calling the deployed API, against a server on 127.0.0.1 that checks each
 * request's AWS Signature Version 4 with AWS's own signer: the Node example and curl --aws-sigv4.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen, loopback } from "#infra/local/net";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const credentials = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  sessionToken: "session-token-example",
};
const region = "eu-west-1";
/** Credentials and region as the AWS CLI's export-credentials would put them. */
const awsEnv = {
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  AWS_SESSION_TOKEN: credentials.sessionToken,
  AWS_REGION: region,
  // No credential source may be looked for beyond the environment.
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_PROFILE: "",
};

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

let server: Server;
let port: number;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  port = await listen(server, 0, loopback);
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

/** Whether AWS's signer, given the same request and time, computes the same Authorization. */
async function sigV4Holds(request: Received): Promise<boolean> {
  const authorization = String(request.headers.authorization);
  const signedNames = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(";") ?? [];
  const headers = Object.fromEntries(
    signedNames.map((name) => [name, String(request.headers[name])]),
  );
  const stamp = String(request.headers["x-amz-date"]);
  const signingDate = new Date(
    `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13)}`,
  );
  const url = new URL(request.url, `http://${loopback}:${port}`);
  const { sessionToken, ...keys } = credentials;
  const signer = new SignatureV4({
    service: "execute-api",
    region,
    // The signer adds the token and the payload hash itself: only when the request signed them.
    credentials: signedNames.includes("x-amz-security-token") ? { ...keys, sessionToken } : keys,
    applyChecksum: signedNames.includes("x-amz-content-sha256"),
    sha256: Hash.bind(null, "sha256"),
  });
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: "http:",
      hostname: loopback,
      port,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: request.body,
    },
    { signingDate },
  );
  const signature = (value: string | undefined) =>
    /Signature=([0-9a-f]{64})$/.exec(value ?? "")?.[1];
  return (
    signature(authorization) !== undefined &&
    signature(signed.headers.authorization) === signature(authorization)
  );
}

describe("calling the deployed API", () => {
  it("the Node example signs GET and POST with SigV4 for execute-api in the region", async () => {
    // Prepare
    const apiUrl = `http://${loopback}:${port}/v1/`;
    const example = (...args: string[]) =>
      run(
        process.execPath,
        [resolve(root, "node_modules/tsx/dist/cli.mjs"), "examples/call-api.ts", ...args],
        { cwd: root, env: { ...process.env, ...awsEnv, API_URL: apiUrl }, timeout: 60_000 },
      );
    const before = received.length;

    // Act
    const get = await example("GET", "health");
    const post = await example("POST", "apps", '{"name": "CRM"}');

    // Assess
    expect(get.stdout.trim()).toBe('200 {"ok":true}');
    expect(post.stdout.trim()).toBe('200 {"ok":true}');
    const [getRequest, postRequest] = received.slice(before) as [Received, Received];
    expect(getRequest.url).toBe("/v1/health");
    expect(postRequest).toMatchObject({ method: "POST", url: "/v1/apps", body: '{"name": "CRM"}' });
    for (const request of [getRequest, postRequest]) {
      expect(request.headers.authorization).toMatch(
        new RegExp(
          `^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\\d{8}/${region}/execute-api/aws4_request,`,
        ),
      );
      expect(request.headers["x-amz-security-token"]).toBe(credentials.sessionToken);
      expect(await sigV4Holds(request)).toBe(true);
      expect(await sigV4Holds({ ...request, method: "PUT" })).toBe(false);
    }
  });

  it("the README's curl --aws-sigv4 lines sign as AWS's signer does", async () => {
    // Prepare: the curl lines of the README, run with its variables set.
    const readme = readFileSync(resolve(root, "README.md"), "utf8");
    const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
      .map((match) => match[1] ?? "")
      .find((code) => code.includes("curl --aws-sigv4"));
    const commands = (block ?? "")
      .replaceAll("\\\n", " ")
      .split("\n")
      .filter((line) => line.startsWith("curl --aws-sigv4"));
    expect(commands.length).toBeGreaterThanOrEqual(2);
    const before = received.length;

    // Act
    for (const command of commands) {
      await run("bash", ["-c", command], {
        env: {
          ...process.env,
          ...awsEnv,
          REGION: region,
          API_URL: `http://${loopback}:${port}/v1/`,
        },
        timeout: 30_000,
      });
    }

    // Assess
    const requests = received.slice(before);
    expect(requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      "GET /v1/health",
      "POST /v1/apps",
    ]);
    for (const request of requests) {
      expect(await sigV4Holds(request)).toBe(true);
      expect(await sigV4Holds({ ...request, url: `${request.url}x` })).toBe(false);
    }
  });
});
