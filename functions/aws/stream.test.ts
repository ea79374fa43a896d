import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { JobQueue, LakeJob } from '../../core/lake/queue.ts';
import { createStreamHandler } from './stream.ts';

const context = { getRemainingTimeInMillis: () => 60_000 } as Context;

function logInserts(n: number, shard = (_i: number) => '0'): DynamoDBStreamEvent {
  return {
    Records: Array.from({ length: n }, (_, i) => ({
      eventName: 'INSERT' as const,
      dynamodb: { Keys: { pk: { S: `L#${shard(i)}` }, sk: { S: String(i + 1).padStart(20, '0') } }, NewImage: { n: { N: '10' } }, SequenceNumber: String(100 + i) },
    })),
  };
}

describe('stream function', () => {
  it('materializes the buffer index on every batch of log inserts, and a failing materialization fails nothing', async () => {
    const sent: LakeJob[] = [];
    const flushQueue: JobQueue = { send: (jobs) => (sent.push(...jobs), Promise.resolve()) };
    let calls = 0;
    let fail = false;
    const index = (): Promise<void> => {
      calls++;
      return fail ? Promise.reject(new Error('throttled')) : Promise.resolve();
    };
    const handler = createStreamHandler({ flushQueue, index, log: () => {} }, { flushMaxDeltas: 25, flushMaxAgeMs: 60_000 });
    expect(await handler(logInserts(2), context)).toEqual({ batchItemFailures: [] });
    expect(calls).toBe(1);
    expect(sent).toEqual([]);
    fail = true;
    expect(await handler(logInserts(1), context)).toEqual({ batchItemFailures: [] });
    expect(calls).toBe(2);
    expect(sent).toEqual([{ kind: 'flush', ref: 's100' }]); // 30 deltas counted: past the threshold
    expect(await handler({ Records: [] }, context)).toEqual({ batchItemFailures: [] });
    expect(calls).toBe(2); // nothing new in the log: nothing to materialize
  });

  it('materializes each shard the batch wrote, once', async () => {
    const flushQueue: JobQueue = { send: () => Promise.resolve() };
    const seen: string[] = [];
    const handler = createStreamHandler({ flushQueue, index: (shard) => (seen.push(shard), Promise.resolve()), log: () => {} }, { flushMaxDeltas: 1000, flushMaxAgeMs: 60_000 });
    await handler(logInserts(5, (i) => String(i % 2 === 0 ? 2 : 0)), context);
    expect(seen.sort()).toEqual(['0', '2']);
  });
});
