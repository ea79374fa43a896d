import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { SqsJobQueue } from '../../core/adapters/sqs-job-queue.ts';
import { changeTableName } from '../../core/lake/layout.ts';
import type { JobQueue, LakeJob } from '../../core/lake/queue.ts';
import type { Schema } from '../../core/schema.ts';
import { settingsFromEnv } from './env.ts';
import { jsonLog, lambda, perContainer, type Log } from './lambda.ts';

/**
 * EventBridge schedule -> jobs. Per lake table (each synced table and its
 * change table): `compact` and `lifecycle`; once: `checkpoint` (refresh if
 * anything was flushed since the newest one) and a `flush` on the flush
 * queue, which catches deltas the stream consumer saw arrive but whose
 * thresholds were never crossed. This function does no lake work itself.
 */
export interface MaintenanceDeps {
  readonly flushQueue: JobQueue;
  readonly jobsQueue: JobQueue;
  readonly log?: Log;
}

export type MaintenanceHandler = (event: ScheduledEvent, context: Context) => Promise<{ readonly jobs: number }>;

export function maintenanceJobs(schema: Schema): LakeJob[] {
  const jobs: LakeJob[] = [];
  for (const t of schema.tables) {
    for (const table of [t.name, changeTableName(t.name)]) jobs.push({ kind: 'compact', table }, { kind: 'lifecycle', table });
  }
  jobs.push({ kind: 'checkpoint' });
  return jobs;
}

export function createMaintenanceHandler(deps: MaintenanceDeps, settings: { readonly schema: Schema }): MaintenanceHandler {
  const log = deps.log ?? jsonLog;
  return lambda(async (event) => {
    // The flush goes first: the checkpoint job then finds the newest deltas in the lake more often.
    await deps.flushQueue.send([{ kind: 'flush', ref: `m${event.id}` }]);
    const jobs = maintenanceJobs(settings.schema);
    await deps.jobsQueue.send(jobs);
    log({ level: 'info', msg: 'maintenance scheduled', jobs: jobs.length + 1, event: event.id });
    return { jobs: jobs.length + 1 };
  });
}

export const handler: MaintenanceHandler = perContainer(() => {
  const settings = settingsFromEnv(process.env);
  const client = new SQSClient({});
  return createMaintenanceHandler(
    {
      flushQueue: new SqsJobQueue({ client, queueUrl: settings.flushQueueUrl }),
      jobsQueue: new SqsJobQueue({ client, queueUrl: settings.jobsQueueUrl }),
    },
    settings,
  );
});
