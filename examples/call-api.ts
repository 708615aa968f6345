/**
 * Calls the API deployed on AWS, signed with AWS Signature Version 4 from your usual AWS
 * credentials (environment, profile, SSO...). The region is read from the API URL
 * (`https://<api-id>.execute-api.<region>.amazonaws.com/v1/`, the stack's ApiUrl output) unless
 * AWS_REGION is set.
 *
 *   API_URL=<ApiUrl> npm run call -- GET health
 *   API_URL=<ApiUrl> npm run call -- POST apps '{"name": "CRM"}'
 */
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";

/** API Gateway's invoke URLs: `<api-id>.execute-api.<region>.amazonaws.com`. */
const INVOKE_HOST = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/;

/** Sends one signed request to `path` under `apiUrl`; resolves to the response. */
async function callApi(
  apiUrl: string,
  method: string,
  path: string,
  body?: string,
): Promise<Response> {
  const url = new URL(path, apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`);
  const region = process.env.AWS_REGION ?? INVOKE_HOST.exec(url.hostname)?.[1];
  if (region === undefined) {
    throw new Error(`cannot tell the region from ${url.hostname}; set AWS_REGION`);
  }
  const signer = new SignatureV4({
    service: "execute-api",
    region,
    credentials: defaultProvider(),
    sha256: Hash.bind(null, "sha256"),
  });
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === "" ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: {
      host: url.host,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body }),
  });
  return fetch(url, { method, headers: signed.headers, body });
}

const [method = "GET", path = "health", body] = process.argv.slice(2);
const apiUrl = process.env.API_URL;
if (apiUrl === undefined) {
  console.error("Set API_URL to the stack's ApiUrl output");
  process.exit(1);
}
const response = await callApi(apiUrl, method, path, body);
console.log(response.status, await response.text());
