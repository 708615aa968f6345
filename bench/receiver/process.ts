/**
 * Webhook receivers for the benchmark, in a process of their own: HTTPS servers on 127.0.0.1
 * that answer by path, as a flaky, failing or silent receiver would, and note when each webhook
 * arrived and for which record.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { servePeer } from "../ipc.ts";
import { clock } from "../system/counters.ts";

/** How a path answers. `hang` reads the request and never answers. */
export type AnswerRule =
  | { readonly kind: "status"; readonly status: number }
  | {
      readonly kind: "failFirstAttempt";
      readonly firstAttempt: number;
      readonly laterAttempts: number;
    }
  | { readonly kind: "hang" };

export interface PathRule {
  readonly path: string;
  readonly answer: AnswerRule;
  /** Note each arrival with its record's id (parses the body). */
  readonly track: boolean;
}

export interface PathCounts {
  readonly requests: number;
  readonly bodyBytes: number;
}

/** One webhook: the record it carried (contact `vid` or `objectId`) and when it arrived. */
export type Arrival = readonly [record: string, at: number];

const DEFAULT_ANSWER: AnswerRule = { kind: "status", status: 200 };

const servers: Server[] = [];
const hanging = new Set<ServerResponse>();
const rules = new Map<string, PathRule>();
const arrivals = new Map<string, Arrival[]>();
const counts = new Map<string, { requests: number; bodyBytes: number }>();

function respond(request: IncomingMessage, response: ServerResponse, body: Buffer): void {
  const at = clock();
  const path = (request.url ?? "").split("?")[0] ?? "";
  const rule = rules.get(path);
  const count = counts.get(path) ?? { requests: 0, bodyBytes: 0 };
  count.requests += 1;
  count.bodyBytes += body.byteLength;
  counts.set(path, count);
  if (rule?.track) {
    const payload = JSON.parse(body.toString("utf8")) as { vid?: unknown; objectId?: unknown };
    const list = arrivals.get(path) ?? [];
    list.push([String(payload.vid ?? payload.objectId), at]);
    arrivals.set(path, list);
  }
  const answer = rule?.answer ?? DEFAULT_ANSWER;
  if (answer.kind === "hang") {
    hanging.add(response);
    return;
  }
  const status =
    answer.kind === "status"
      ? answer.status
      : request.headers["x-delivery-attempt"] === "1"
        ? answer.firstAttempt
        : answer.laterAttempts;
  response.writeHead(status, { "content-type": "text/plain" });
  response.end(status < 300 ? "ok" : "no");
}

/** Starts one more receiver (its own server and port), with the given certificate. */
async function listen(certificate: { key: string; cert: string }): Promise<number> {
  const server = createServer(certificate, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => respond(request, response, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

function answer(rule: PathRule): void {
  rules.set(rule.path, rule);
}

function arrivalsAt(path: string): Arrival[] {
  return arrivals.get(path) ?? [];
}

function countsByPath(): Record<string, PathCounts> {
  return Object.fromEntries(counts);
}

/** Drops the requests held open, so the clients waiting on them fail at once. */
function releaseHanging(): number {
  const held = hanging.size;
  for (const response of hanging) response.destroy();
  hanging.clear();
  return held;
}

async function closeAll(): Promise<void> {
  releaseHanging();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
}

const calls = {
  listen,
  answer,
  arrivals: arrivalsAt,
  counts: countsByPath,
  releaseHanging,
  closeAll,
};

/** The calls the benchmark can make of the receiver process. */
export type ReceiverCalls = typeof calls;

servePeer(calls);
