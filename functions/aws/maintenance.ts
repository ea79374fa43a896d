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
 *
 * A second schedule (every flush max age, a minute by default) invokes it
 * with the input `{"lakesync": "flush"}`: then it only sends a flush. The
 * stream consumer sees records only when they arrive, so without this the
 * last deltas before writes go quiet would wait for the hourly maintenance;
 * a flush with nothing to do only reads the buffer's marks.
 */
export interface MaintenanceDeps {
  readonly flushQueue: JobQueue;
  readonly jobsQueue: JobQueue;
  readonly log?: Log;
}

/** The flush schedule's input (EventBridge passes it instead of the scheduled event). */
export interface FlushTick {
  readonly lakesync: 'flush';
}

export type MaintenanceHandler = (event: ScheduledEvent | FlushTick, context: Context) => Promise<{ readonly jobs: number }>;

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
    if ('lakesync' in event && event.lakesync === 'flush') {
      // One flush per minute at most: a repeated tick within it is the same FIFO message.
      await deps.flushQueue.send([{ kind: 'flush', ref: `tick-${Math.floor(Date.now() / 60_000)}` }]);
      return { jobs: 1 };
    }
    if (!('id' in event)) throw new Error(`maintenance: unexpected event ${JSON.stringify(event).slice(0, 200)}`);
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
