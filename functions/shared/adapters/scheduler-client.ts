import { SchedulerClient } from "@aws-sdk/client-scheduler";

/**
 * The EventBridge Scheduler client, created once per process; only the deliver function
 * schedules retries, and the api function deletes one when it cancels an enrollment, so only
 * their bundles carry it (see `dynamodb-client.ts`).
 */
export const scheduler = new SchedulerClient({});
