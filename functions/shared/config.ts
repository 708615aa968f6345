import { readFileSync } from "node:fs";
import { type QueueKey, queues, retryScheduler, type TableKey, tables } from "#shared/contract";

/** Thrown at start-up when the environment is missing or malformed: fail loudly, early. */
export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

type Env = Readonly<Record<string, string | undefined>>;

function required(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === "") {
    throw new ConfigurationError(`environment variable ${name} is required`);
  }
  return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigurationError(
    `environment variable ${name} must be true or false, got "${value}"`,
  );
}

function positiveNumber(env: Env, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) {
    throw new ConfigurationError(
      `environment variable ${name} must be a positive number, got "${value}"`,
    );
  }
  return parsed;
}

/** The names of the given tables, from the variables the stack sets. */
export function tableNames<K extends TableKey>(
  keys: readonly K[],
  env: Env = process.env,
): Record<K, string> {
  return Object.fromEntries(keys.map((key) => [key, required(env, tables[key].envVar)])) as Record<
    K,
    string
  >;
}

/** The URL of a queue, from the variable the stack sets. */
export function queueUrl(key: QueueKey, env: Env = process.env): string {
  return required(env, queues[key].urlEnvVar);
}

export interface RetrySchedulerSettings {
  readonly groupName: string;
  readonly roleArn: string;
  readonly laneQueueArn: string;
  readonly deadLetterArn: string | undefined;
}

/** The group the retry schedules live in: all that cancelling one takes. */
export type RetryScheduleGroup = Pick<RetrySchedulerSettings, "groupName">;

/** The retry schedules' group, for a function that cancels retries but never schedules one. */
export function retryScheduleGroup(env: Env = process.env): RetryScheduleGroup {
  return { groupName: required(env, retryScheduler.groupEnvVar) };
}

/** Where retries are scheduled and which role fires them. */
export function retrySchedulerSettings(env: Env = process.env): RetrySchedulerSettings {
  return {
    groupName: required(env, retryScheduler.groupEnvVar),
    roleArn: required(env, retryScheduler.roleArnEnvVar),
    laneQueueArn: required(env, queues.webhookLane.arnEnvVar),
    deadLetterArn: env[retryScheduler.deadLetterArnEnvVar] || undefined,
  };
}

export interface RuntimeSettings {
  /** Multiplies every wait (retry delays, delay actions); 1 on AWS, below 1 to compress time locally. */
  readonly timeScale: number;
  /** Lets webhooks target private and loopback addresses; for local development only. */
  readonly allowPrivateTargets: boolean;
  /** The portal id written into record payloads. */
  readonly portalId: number;
}

export function runtimeSettings(env: Env = process.env): RuntimeSettings {
  return {
    timeScale: positiveNumber(env, "RETRY_TIME_SCALE", 1),
    allowPrivateTargets: flag(env, "ALLOW_PRIVATE_TARGETS", false),
    portalId: positiveNumber(env, "PORTAL_ID", 1),
  };
}

/**
 * The PEM certificates of the file NODE_EXTRA_CA_CERTS names, for the delivery client. Node reads
 * that variable only when a process starts; reading it here too lets a runtime that sets it later
 * (the local runtime inside a test) trust a local receiver.
 */
export function extraCaCertificates(env: Env = process.env): string | undefined {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file) return undefined;
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigurationError(
      `NODE_EXTRA_CA_CERTS names ${file}, which cannot be read: ${error}`,
    );
  }
}
