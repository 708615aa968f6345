/**
 * `npm start`: the whole system on this machine until Ctrl-C.
 * Settings: PORT (3000), RETRY_TIME_SCALE (1), ALLOW_PRIVATE_TARGETS (on), LOG_LEVEL (INFO).
 */
import { noteOldNode } from "./node-version.ts";
import { type LocalRuntime, startLocalRuntime } from "./runtime.ts";

const REPEAT_SIGNAL_MS = 1_000;

class SettingError extends Error {
  override name = "SettingError";
}

function port(value = "3000"): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) {
    throw new SettingError(`PORT must be a port number (0 to 65535), got "${value}"`);
  }
  return parsed;
}

function timeScale(value = "1"): number {
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isFinite(parsed) || parsed <= 0) {
    throw new SettingError(`RETRY_TIME_SCALE must be a positive number, got "${value}"`);
  }
  return parsed;
}

function flag(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new SettingError(`${name} must be true or false, got "${value}"`);
}

function logLevel(value = "INFO"): string {
  const level = value.toUpperCase();
  if (!["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL", "SILENT"].includes(level)) {
    throw new SettingError(
      `LOG_LEVEL must be DEBUG, INFO, WARN, ERROR, CRITICAL or SILENT, got "${value}"`,
    );
  }
  return level;
}

async function main(): Promise<void> {
  let runtime: LocalRuntime | undefined;
  let stoppingSince: number | undefined;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      // One Ctrl-C can arrive twice (from the terminal and relayed by a wrapper): only a later
      // one forces the exit.
      if (Date.now() - stoppingSince < REPEAT_SIGNAL_MS) return;
      console.error(`\n${signal} again: exiting without waiting.`);
      process.exit(130);
    }
    stoppingSince = Date.now();
    console.error(`\n${signal}: stopping (press Ctrl-C again to force)...`);
    if (!runtime) return;
    runtime.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`Stopped with errors: ${describe(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);

  noteOldNode();
  try {
    const { env } = process;
    runtime = await startLocalRuntime({
      port: port(env.PORT),
      timeScale: timeScale(env.RETRY_TIME_SCALE),
      allowPrivateTargets: flag("ALLOW_PRIVATE_TARGETS", env.ALLOW_PRIVATE_TARGETS, true),
      logLevel: logLevel(env.LOG_LEVEL),
    });
  } catch (error) {
    console.error(`Could not start: ${describe(error)}`);
    process.exit(1);
  }
  if (stoppingSince !== undefined) {
    // A signal came while starting: stop now that there is something to stop.
    await runtime.stop();
    process.exit(0);
  }
  console.log(`workflow-webhooks is running at ${runtime.apiUrl}`);
  console.log(`Try: curl ${runtime.apiUrl}/health   (Ctrl-C stops everything)`);
}

function describe(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map(describe).join("; ");
  if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
    return `port ${process.env.PORT ?? 3000} is already in use; choose another with PORT`;
  }
  return error instanceof Error ? error.message : String(error);
}

await main();
