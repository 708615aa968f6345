import { Duration } from "aws-cdk-lib";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { Construct } from "constructs";
import type { TeamFunction } from "#infra/constructs/team-function";

/** EventBridge's finest rate. */
const MIN_INTERVAL = Duration.minutes(1);
/** The longest an asynchronous Lambda event may wait, which a run's event is allowed to. */
const MAX_INTERVAL = Duration.hours(6);

export interface SweeperProps {
  /** The function that sweeps the open-work index (`functions/sweep/handler.ts`). */
  readonly sweepFunction: TeamFunction;
  /** How often it runs; at least a minute, EventBridge's finest rate. */
  readonly interval: Duration;
}

/**
 * Runs the sweeper on a schedule: an EventBridge rule that invokes the sweep function every
 * `interval`. A run that fails or cannot start is not retried: the next one, an interval later,
 * does the same work, and two runs at once would only get in each other's way.
 */
export class Sweeper extends Construct {
  readonly rule: Rule;
  readonly sweepFunction: TeamFunction;

  constructor(scope: Construct, id: string, props: SweeperProps) {
    const seconds = props.interval.toSeconds();
    if (seconds < MIN_INTERVAL.toSeconds() || seconds > MAX_INTERVAL.toSeconds()) {
      throw new Error(
        `${id}: the interval must be from a minute (EventBridge's finest rate) to 6 hours (the longest a Lambda event may wait), got ${seconds} s`,
      );
    }
    if (
      props.sweepFunction.timeout &&
      props.sweepFunction.timeout.toSeconds() >= props.interval.toSeconds()
    ) {
      throw new Error(`${id}: the sweep function's timeout must be shorter than the interval`);
    }
    super(scope, id);
    this.sweepFunction = props.sweepFunction;
    this.rule = new Rule(this, "Schedule", {
      description: "Runs the sweeper, which resumes or fails work that stopped moving",
      schedule: Schedule.rate(props.interval),
      targets: [
        new LambdaFunction(props.sweepFunction, {
          // A run EventBridge could not start within the interval is superseded by the next.
          maxEventAge: props.interval,
          retryAttempts: 2,
        }),
      ],
    });
    props.sweepFunction.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: props.interval });
  }
}
