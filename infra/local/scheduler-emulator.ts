import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { ErrorReporter } from "./log.ts";
import {
  close,
  httpUrl,
  listen,
  localAccountId,
  localCredentials,
  localRegion,
  loopback,
} from "./net.ts";
import {
  type OneTimeSchedule,
  OneTimeSchedules,
  ScheduleConflictError,
  ScheduleNotFoundError,
  type SchedulerDiagnostics,
  type ScheduleTarget,
} from "./one-time-schedules.ts";

export interface SchedulerEmulatorOptions {
  /** The SQS endpoint that holds the queues schedules target. */
  readonly sqsEndpoint: string;
  /** Multiplies the wait until each schedule's at() time; 1 keeps real time. */
  readonly timeScale?: number;
  /** Schedule groups that exist besides `default` (the stack creates them on AWS). */
  readonly groups?: readonly string[];
  readonly host?: string;
  readonly port?: number;
  readonly onError?: ErrorReporter;
}

export interface SchedulerEmulator extends SchedulerDiagnostics {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** The largest request body the emulator reads; real requests are a few KiB. */
const MAX_BODY_BYTES = 1024 * 1024;
/** EventBridge Scheduler's limits on names and on a target's input. */
const NAME_PATTERN = /^[0-9a-zA-Z-_.]{1,64}$/;
const MAX_INPUT_CHARS = 8192;
const AT_EXPRESSION = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/;
const SQS_ARN = /^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$/;

/** Answers as EventBridge Scheduler does, with its error type in a header and a JSON message. */
class SchedulerApiError extends Error {
  override name = "SchedulerApiError";
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new SchedulerApiError(400, "ValidationException", message);

/**
 * Starts a stand-in for EventBridge Scheduler's one-time schedules that the real SDK client can
 * talk to (REST-JSON: CreateSchedule and DeleteSchedule, what the retry schedules call), firing
 * into local SQS.
 */
export async function startSchedulerEmulator(
  options: SchedulerEmulatorOptions,
): Promise<SchedulerEmulator> {
  const sqs = new SQSClient({
    endpoint: options.sqsEndpoint,
    region: localRegion,
    credentials: localCredentials,
  });
  const schedules = new OneTimeSchedules({
    sqs,
    timeScale: options.timeScale ?? 1,
    groups: options.groups ?? [],
    onError: options.onError ?? (() => {}),
  });
  const server = createServer((request, response) => {
    answer(schedules, request, response).catch((error: unknown) => {
      options.onError?.("the local scheduler failed to answer", error);
      if (!response.headersSent) {
        writeError(
          response,
          new SchedulerApiError(500, "InternalServerException", "internal error"),
        );
      } else response.destroy();
    });
  });
  const host = options.host ?? loopback;
  let port: number;
  try {
    port = await listen(server, options.port ?? 0, host);
  } catch (error) {
    sqs.destroy();
    throw error;
  }
  return {
    endpoint: httpUrl(host, port),
    pendingSchedules: () => schedules.pendingSchedules(),
    firedCount: () => schedules.firedCount(),
    failedCount: () => schedules.failedCount(),
    async stop() {
      await close(server);
      await schedules.stop();
      sqs.destroy();
    },
  };
}

async function answer(
  schedules: OneTimeSchedules,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  try {
    // Read first, so an early error still leaves the keep-alive connection usable.
    const body = await readBody(request);
    const url = new URL(request.url ?? "/", "http://scheduler.local");
    const match = /^\/schedules\/([^/]+)$/.exec(url.pathname);
    if (!match?.[1]) throw unknownOperation(request);
    const name = decodeURIComponent(match[1]);
    if (!NAME_PATTERN.test(name)) {
      throw invalid(`Name "${name}" must be 1 to 64 characters of [0-9a-zA-Z-_.]`);
    }
    switch (request.method) {
      case "POST": {
        const schedule = parseCreateSchedule(name, parseJsonObject(body));
        schedules.create(schedule);
        return writeJson(response, { ScheduleArn: schedule.arn });
      }
      case "DELETE":
        schedules.delete(url.searchParams.get("groupName") || "default", name);
        return writeJson(response, {});
      default:
        throw unknownOperation(request);
    }
  } catch (error) {
    if (error instanceof ScheduleConflictError) {
      return writeError(response, new SchedulerApiError(409, "ConflictException", error.message));
    }
    if (error instanceof ScheduleNotFoundError) {
      return writeError(
        response,
        new SchedulerApiError(404, "ResourceNotFoundException", error.message),
      );
    }
    if (error instanceof SchedulerApiError) return writeError(response, error);
    throw error;
  }
}

function unknownOperation(request: IncomingMessage): SchedulerApiError {
  return new SchedulerApiError(
    404,
    "UnknownOperationException",
    `${request.method} ${request.url} is not an operation the local scheduler supports`,
  );
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw invalid("request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseJsonObject(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text || "{}");
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // Answered below, as for any body that is not a JSON object.
  }
  throw invalid("request body must be a JSON object");
}

function parseCreateSchedule(name: string, body: Record<string, unknown>): OneTimeSchedule {
  const groupName = optionalString(body, "GroupName") ?? "default";
  if (!NAME_PATTERN.test(groupName)) {
    throw invalid(`GroupName "${groupName}" must be 1 to 64 characters of [0-9a-zA-Z-_.]`);
  }
  const scheduleExpression = requiredString(body, "ScheduleExpression");
  const timezone = optionalString(body, "ScheduleExpressionTimezone") ?? "UTC";
  if (timezone !== "UTC" && timezone !== "Etc/UTC") {
    throw invalid(
      `ScheduleExpressionTimezone "${timezone}": the local scheduler supports UTC only`,
    );
  }
  const window = objectField(body, "FlexibleTimeWindow", true);
  if (window.Mode !== "OFF" && window.Mode !== "FLEXIBLE") {
    throw invalid("FlexibleTimeWindow.Mode must be OFF or FLEXIBLE");
  }
  const target = parseTarget(objectField(body, "Target", true));
  const state = optionalString(body, "State") ?? "ENABLED";
  if (state !== "ENABLED" && state !== "DISABLED")
    throw invalid("State must be ENABLED or DISABLED");
  const actionAfterCompletion = optionalString(body, "ActionAfterCompletion") ?? "NONE";
  if (actionAfterCompletion !== "NONE" && actionAfterCompletion !== "DELETE") {
    throw invalid("ActionAfterCompletion must be NONE or DELETE");
  }
  return {
    name,
    groupName,
    arn: `arn:aws:scheduler:${localRegion}:${localAccountId}:schedule/${groupName}/${name}`,
    scheduleExpression,
    state,
    actionAfterCompletion,
    target,
    createdAt: Date.now(),
    dueAt: parseAtExpression(scheduleExpression),
  };
}

/** The epoch milliseconds of `at(yyyy-mm-ddThh:mm:ss)` in UTC; other expressions are refused. */
function parseAtExpression(expression: string): number {
  const parts = AT_EXPRESSION.exec(expression)?.slice(1).map(Number);
  if (!parts) {
    throw invalid(
      `ScheduleExpression "${expression}": the local scheduler supports one-time at(yyyy-mm-ddThh:mm:ss) schedules only`,
    );
  }
  const [year, month, day, hour, minute, second] = parts as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(time);
  if (
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw invalid(`ScheduleExpression "${expression}" is not a valid date and time`);
  }
  return time;
}

function parseTarget(target: Record<string, unknown>): ScheduleTarget {
  const arn = requiredString(target, "Arn", "Target.");
  if (!SQS_ARN.test(arn)) {
    throw invalid(`Target.Arn "${arn}": the local scheduler sends to SQS queues only`);
  }
  const roleArn = requiredString(target, "RoleArn", "Target.");
  if (!ROLE_ARN.test(roleArn)) throw invalid(`Target.RoleArn "${roleArn}" is not an IAM role ARN`);
  const input = optionalString(target, "Input", "Target.");
  if (input !== undefined && (input.length === 0 || input.length > MAX_INPUT_CHARS)) {
    throw invalid(`Target.Input must be 1 to ${MAX_INPUT_CHARS} characters`);
  }
  const deadLetter = objectField(target, "DeadLetterConfig", false, "Target.");
  const deadLetterArn = deadLetter && optionalString(deadLetter, "Arn", "Target.DeadLetterConfig.");
  if (deadLetterArn !== undefined && !SQS_ARN.test(deadLetterArn)) {
    throw invalid(`Target.DeadLetterConfig.Arn "${deadLetterArn}" is not an SQS queue ARN`);
  }
  return {
    ...(target as unknown as ScheduleTarget),
    RetryPolicy: {
      MaximumEventAgeInSeconds: 86_400,
      MaximumRetryAttempts: 185,
      ...(objectField(target, "RetryPolicy", false, "Target.") ?? {}),
    },
  };
}

function requiredString(from: Record<string, unknown>, key: string, path = ""): string {
  const value = optionalString(from, key, path);
  if (value === undefined || value === "") throw invalid(`${path}${key} is required`);
  return value;
}

function optionalString(from: Record<string, unknown>, key: string, path = ""): string | undefined {
  const value = from[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${path}${key} must be a string`);
  return value;
}

function objectField(
  from: Record<string, unknown>,
  key: string,
  required: true,
  path?: string,
): Record<string, unknown>;
function objectField(
  from: Record<string, unknown>,
  key: string,
  required: false,
  path?: string,
): Record<string, unknown> | undefined;
function objectField(
  from: Record<string, unknown>,
  key: string,
  required: boolean,
  path = "",
): Record<string, unknown> | undefined {
  const value = from[key];
  if (value === undefined || value === null) {
    if (required) throw invalid(`${path}${key} is required`);
    return undefined;
  }
  if (typeof value !== "object" || Array.isArray(value))
    throw invalid(`${path}${key} must be an object`);
  return value as Record<string, unknown>;
}

function writeJson(response: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "x-amzn-requestid": randomUUID(),
  });
  response.end(text);
}

function writeError(response: ServerResponse, error: SchedulerApiError): void {
  response.setHeader("x-amzn-errortype", error.type);
  writeJson(response, { Message: error.message }, error.status);
}
