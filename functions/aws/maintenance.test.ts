import type { Context, ScheduledEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { JobQueue, LakeJob } from '../../core/lake/queue.ts';
import { createMaintenanceHandler } from './maintenance.ts';

const context = { getRemainingTimeInMillis: () => 60_000 } as Context;
const schema = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' as const }] }] };

function queue(): JobQueue & { sent: LakeJob[] } {
  const sent: LakeJob[] = [];
  return { sent, send: (jobs) => (sent.push(...jobs), Promise.resolve()) };
}

describe('maintenance function', () => {
  it('on the flush tick sends only a flush, one per minute', async () => {
    const flushQueue = queue();
    const jobsQueue = queue();
    const handler = createMaintenanceHandler({ flushQueue, jobsQueue, log: () => {} }, { schema });
    expect(await handler({ lakesync: 'flush' }, context)).toEqual({ jobs: 1 });
    expect(flushQueue.sent).toEqual([{ kind: 'flush', ref: expect.stringMatching(/^tick-\d+$/) as unknown as string }]);
    expect(jobsQueue.sent).toEqual([]);
  });

  it('on the maintenance schedule sends a flush and the per-table jobs', async () => {
    const flushQueue = queue();
    const jobsQueue = queue();
    const handler = createMaintenanceHandler({ flushQueue, jobsQueue, log: () => {} }, { schema });
    const event = { id: 'e1', 'detail-type': 'Scheduled Event', source: 'aws.events' } as ScheduledEvent;
    expect(await handler(event, context)).toEqual({ jobs: 6 });
    expect(flushQueue.sent).toEqual([{ kind: 'flush', ref: 'me1' }]);
    expect(jobsQueue.sent.map((j) => j.kind)).toEqual(['compact', 'lifecycle', 'compact', 'lifecycle', 'checkpoint']);
  });
});
