import { SchedulerClient } from "@aws-sdk/client-scheduler";

/**
 * The EventBridge Scheduler client, created once per process; only the deliver function
 * schedules retries, so only its bundle carries it (see `dynamodb-client.ts`).
 */
export const scheduler = new SchedulerClient({});
