import type { Context } from "aws-lambda";
import { lambdaContext } from "./lambda-context.ts";
import type { ErrorReporter } from "./log.ts";
import { localAccountId, localRegion } from "./net.ts";

/** The sweep function's entry point; its scheduled event carries nothing it reads. */
export type SweepHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface SweepTimerOptions {
  readonly handler: SweepHandler;
  /** Real milliseconds between the end of one run and the start of the next. */
  readonly intervalMs: number;
  /** How long a run may take, as the function's timeout does on AWS. */
  readonly timeoutMs: number;
  readonly onError: ErrorReporter;
}

export interface SweepTimer {
  /** Runs finished so far, failed or not. */
  runs(): number;
  /** Stops the timer and waits for a run under way. */
  stop(): Promise<void>;
}

/** The shortest pause between runs, so that no interval turns the timer into a busy loop. */
const MIN_INTERVAL_MS = 10;

/**
 * Does locally what the stack's EventBridge rule does: invokes the sweep function every interval,
 * one run at a time, with the event a scheduled rule sends. A run that fails is reported, and the
 * next one comes at its time.
 */
export function startSweepTimer(options: SweepTimerOptions): SweepTimer {
  const intervalMs = Math.max(MIN_INTERVAL_MS, options.intervalMs);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let runs = 0;

  const run = async () => {
    const deadline = Date.now() + options.timeoutMs;
    try {
      await options.handler(scheduledEvent(), lambdaContext("sweep", deadline));
    } catch (error) {
      options.onError("sweep run failed; the next run tries again", error);
    } finally {
      runs += 1;
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = undefined;
        schedule();
      });
    }, intervalMs);
    // The timer alone never keeps the process alive: the runtime's servers do, until stopped.
    timer.unref();
  };
  schedule();

  return {
    runs: () => runs,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** The event an EventBridge scheduled rule sends. */
function scheduledEvent() {
  return {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: localAccountId,
    time: new Date().toISOString(),
    region: localRegion,
    resources: [],
    detail: {},
  };
}
