import {
  GetQueueUrlCommand,
  type MessageAttributeValue,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { ErrorReporter } from "./log.ts";
import { sleep } from "./net.ts";

/** The target of a schedule as EventBridge Scheduler's API spells it; only SQS queues locally. */
export interface ScheduleTarget {
  readonly Arn: string;
  readonly RoleArn: string;
  readonly Input?: string;
  readonly DeadLetterConfig?: { readonly Arn?: string };
  readonly RetryPolicy?: {
    readonly MaximumRetryAttempts?: number;
    readonly MaximumEventAgeInSeconds?: number;
  };
  readonly SqsParameters?: { readonly MessageGroupId?: string };
}

/** A one-time schedule as CreateSchedule received it, with the times the emulator derived. */
export interface OneTimeSchedule {
  readonly name: string;
  readonly groupName: string;
  readonly arn: string;
  readonly scheduleExpression: string;
  readonly state: "ENABLED" | "DISABLED";
  readonly actionAfterCompletion: "NONE" | "DELETE";
  readonly target: ScheduleTarget;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** The at() time, epoch milliseconds. */
  readonly dueAt: number;
}

/** What tests and diagnostics see of a schedule still waiting to fire. */
export interface PendingSchedule {
  readonly name: string;
  readonly groupName: string;
  readonly scheduleExpression: string;
  readonly targetArn: string;
  /** The at() time of the schedule. */
  readonly dueAt: Date;
  /** When it really fires: creation + (at() − creation) × time scale. */
  readonly firesAt: Date;
}

export interface SchedulerDiagnostics {
  /** Schedules created and neither fired nor deleted yet, soonest first. */
  pendingSchedules(): PendingSchedule[];
  /** Schedules whose target received their input. */
  firedCount(): number;
  /** Schedules whose target could not be reached (their input went to the dead-letter queue, if any). */
  failedCount(): number;
}

export class ScheduleConflictError extends Error {
  override name = "ScheduleConflictError";
}

export class ScheduleNotFoundError extends Error {
  override name = "ScheduleNotFoundError";
}

/** Sends after a failed target send; the real service retries for up to 24 hours. */
const LOCAL_MAX_RETRIES = 3;
const RETRY_BASE_DELAY_MS = 100;
/** setTimeout's longest delay; longer waits are made of several. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  readonly schedule: OneTimeSchedule;
  readonly firesAt: number;
  timer?: NodeJS.Timeout;
  fired: boolean;
}

/**
 * The schedules of a local EventBridge Scheduler: each fires once, at its at() time scaled by
 * `timeScale`, by sending its input to the SQS queue its target names.
 */
export class OneTimeSchedules implements SchedulerDiagnostics {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly groups: Set<string>;
  private fired = 0;
  private failed = 0;
  private stopped = false;

  constructor(
    private readonly options: {
      readonly sqs: SQSClient;
      readonly timeScale: number;
      readonly groups: readonly string[];
      readonly onError: ErrorReporter;
    },
  ) {
    this.groups = new Set(["default", ...options.groups]);
  }

  create(schedule: OneTimeSchedule): void {
    this.requireGroup(schedule.groupName);
    const key = keyOf(schedule.groupName, schedule.name);
    if (this.entries.has(key)) {
      throw new ScheduleConflictError(`Schedule ${schedule.name} already exists.`);
    }
    const firesAt =
      schedule.createdAt +
      Math.max(0, (schedule.dueAt - schedule.createdAt) * this.options.timeScale);
    const entry: Entry = { schedule, firesAt, fired: false };
    this.entries.set(key, entry);
    if (schedule.state === "ENABLED") this.arm(key, entry);
  }

  delete(groupName: string, name: string): void {
    const entry = this.find(groupName, name);
    clearTimeout(entry.timer);
    this.entries.delete(keyOf(groupName, name));
  }

  pendingSchedules(): PendingSchedule[] {
    return [...this.entries.values()]
      .filter((entry) => !entry.fired && entry.schedule.state === "ENABLED")
      .sort((a, b) => a.firesAt - b.firesAt)
      .map(({ schedule, firesAt }) => ({
        name: schedule.name,
        groupName: schedule.groupName,
        scheduleExpression: schedule.scheduleExpression,
        targetArn: schedule.target.Arn,
        dueAt: new Date(schedule.dueAt),
        firesAt: new Date(firesAt),
      }));
  }

  firedCount(): number {
    return this.fired;
  }

  failedCount(): number {
    return this.failed;
  }

  /** Clears every timer and waits for the sends under way, which retry no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    await Promise.allSettled([...this.inFlight]);
  }

  private requireGroup(groupName: string): void {
    if (!this.groups.has(groupName)) {
      throw new ScheduleNotFoundError(`Schedule group ${groupName} does not exist.`);
    }
  }

  private find(groupName: string, name: string): Entry {
    this.requireGroup(groupName);
    const entry = this.entries.get(keyOf(groupName, name));
    if (!entry) throw new ScheduleNotFoundError(`Schedule ${name} does not exist.`);
    return entry;
  }

  private arm(key: string, entry: Entry): void {
    const wait = entry.firesAt - Date.now();
    entry.timer = setTimeout(
      () => {
        if (wait > MAX_TIMER_MS) this.arm(key, entry);
        else this.track(this.fire(key, entry));
      },
      Math.min(Math.max(wait, 0), MAX_TIMER_MS),
    );
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async fire(key: string, entry: Entry): Promise<void> {
    entry.fired = true;
    const { target } = entry.schedule;
    const body = target.Input ?? "{}";
    const retries = Math.min(target.RetryPolicy?.MaximumRetryAttempts ?? 185, LOCAL_MAX_RETRIES);
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries && !this.stopped; attempt++) {
      if (attempt > 0) await sleep(RETRY_BASE_DELAY_MS * 2 ** (attempt - 1));
      try {
        await this.send(target.Arn, body, target.SqsParameters?.MessageGroupId);
        this.fired++;
        this.complete(key, entry);
        return;
      } catch (error) {
        lastError = error;
      }
    }
    if (this.stopped) return;
    this.failed++;
    this.options.onError(
      `schedule ${entry.schedule.name} could not reach ${target.Arn}`,
      lastError,
    );
    const deadLetterArn = target.DeadLetterConfig?.Arn;
    if (deadLetterArn) {
      try {
        await this.send(deadLetterArn, body, undefined, deadLetterAttributes(entry, lastError));
      } catch (error) {
        this.options.onError(`schedule ${entry.schedule.name} could not reach its DLQ`, error);
      }
    }
    this.complete(key, entry);
  }

  private complete(key: string, entry: Entry): void {
    if (entry.schedule.actionAfterCompletion === "DELETE" && this.entries.get(key) === entry) {
      this.entries.delete(key);
    }
  }

  private async send(
    queueArn: string,
    body: string,
    messageGroupId?: string,
    attributes?: Record<string, MessageAttributeValue>,
  ): Promise<void> {
    const { sqs } = this.options;
    const queueName = queueArn.split(":").at(-1);
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));
    await sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: body,
        MessageGroupId: messageGroupId,
        MessageAttributes: attributes,
      }),
    );
  }
}

function keyOf(groupName: string, name: string): string {
  return `${groupName}/${name}`;
}

/** The attributes EventBridge Scheduler puts on a message it dead-letters. */
function deadLetterAttributes(entry: Entry, error: unknown): Record<string, MessageAttributeValue> {
  const text = (value: string) => ({ DataType: "String", StringValue: value });
  return {
    ERROR_CODE: text(error instanceof Error ? error.name : "Unknown"),
    ERROR_MESSAGE: text(error instanceof Error ? error.message || error.name : String(error)),
    EXHAUSTED_RETRY_CONDITION: text("MaximumRetryAttempts"),
    RETRY_ATTEMPTS: {
      DataType: "Number",
      StringValue: String(
        Math.min(entry.schedule.target.RetryPolicy?.MaximumRetryAttempts ?? 185, LOCAL_MAX_RETRIES),
      ),
    },
    SCHEDULE_ARN: text(entry.schedule.arn),
    TARGET_ARN: text(entry.schedule.target.Arn),
  };
}
