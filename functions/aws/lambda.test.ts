import type { Context, DynamoDBRecord, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { LakeJob } from '../../core/lake/queue.ts';
import { parseLakeJob, jobKey } from '../../core/lake/queue.ts';
import { eachJob, lambda } from './lambda.ts';
import { maintenanceJobs } from './maintenance.ts';
import { createStreamHandler } from './stream.ts';

const context = {} as Context;
const quiet = (): void => {};

function logRecord(seq: number, n: number, atSeconds: number, pk = 'L#0', eventName: 'INSERT' | 'MODIFY' = 'INSERT'): DynamoDBRecord {
  return {
    eventName,
    dynamodb: { Keys: { pk: { S: pk }, sk: { S: String(seq).padStart(20, '0') } }, NewImage: { n: { N: String(n) } }, SequenceNumber: String(1000 + seq), ApproximateCreationDateTime: atSeconds },
  };
}

describe('stream consumer', () => {
  it('asks for a flush once the count or the age threshold is crossed, naming the request by the batch', async () => {
    const sent: LakeJob[] = [];
    let now = 1_000_000;
    const h = createStreamHandler({ flushQueue: { send: async (j) => void sent.push(...j) }, log: quiet, now: () => now }, { flushMaxDeltas: 10, flushMaxAgeMs: 60_000 });
    const t = now / 1000;
    expect(await h({ Records: [logRecord(1, 4, t), logRecord(5, 3, t)] }, context)).toEqual({ batchItemFailures: [] });
    expect(sent).toEqual([]);
    // Row items and modifications are not counted.
    await h({ Records: [logRecord(8, 50, t, 'R#5:todos:x'), logRecord(8, 50, t, 'L#0', 'MODIFY')] }, context);
    expect(sent).toEqual([]);
    await h({ Records: [logRecord(8, 3, t)] }, context);
    expect(sent).toEqual([{ kind: 'flush', ref: 's1008' }]);
    // Age: one delta, but the oldest unflushed one seen is a minute old.
    await h({ Records: [logRecord(11, 1, t)] }, context);
    expect(sent).toHaveLength(1);
    now += 60_000;
    await h({ Records: [logRecord(12, 1, now / 1000)] }, context);
    expect(sent).toHaveLength(2);
  });

  it('reports a failed flush request by the first record\'s SequenceNumber and counts the retry again', async () => {
    let fail = true;
    const sent: LakeJob[] = [];
    const h = createStreamHandler(
      {
        flushQueue: {
          send: async (j) => {
            if (fail) throw new Error('down');
            sent.push(...j);
          },
        },
        log: quiet,
      },
      { flushMaxDeltas: 5, flushMaxAgeMs: 60_000 },
    );
    const batch = { Records: [logRecord(1, 3, Date.now() / 1000), logRecord(4, 3, Date.now() / 1000)] };
    expect(await h(batch, context)).toEqual({ batchItemFailures: [{ itemIdentifier: '1001' }] });
    fail = false;
    expect(await h(batch, context)).toEqual({ batchItemFailures: [] });
    expect(sent).toHaveLength(1);
  });
});

function sqsRecord(id: string, body: string, fifo = false): SQSRecord {
  return {
    messageId: id,
    receiptHandle: id,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'x', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:us-east-1:1:q${fifo ? '.fifo' : ''}`,
    awsRegion: 'us-east-1',
  };
}

describe('SQS consumers', () => {
  const jobs = ['{"kind":"compact","table":"todos"}', 'not json', '{"kind":"lifecycle"}', '{"kind":"fanout","from":"1","to":"9"}'];

  it('report exactly the failed messages on a standard queue', async () => {
    const ran: LakeJob[] = [];
    const r = await eachJob(
      { Records: jobs.map((b, i) => sqsRecord(`m${i}`, b)) },
      async (job) => {
        if (job.kind === 'lifecycle') throw new Error('boom');
        ran.push(job);
      },
      quiet,
    );
    expect(r.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }]);
    expect(ran.map((j) => j.kind)).toEqual(['compact', 'fanout']);
  });

  it('on a FIFO queue also return every message after the first failure, keeping the order', async () => {
    const ran: string[] = [];
    const r = await eachJob({ Records: jobs.map((b, i) => sqsRecord(`m${i}`, b, true)) }, async (job) => void ran.push(job.kind), quiet);
    expect(r.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1', 'm2', 'm3']);
    expect(ran).toEqual(['compact']);
  });

  it('on a FIFO queue release the returned messages early: the failed one after a backoff by its receive count, the untried ones at once', async () => {
    const released: { id: string; seconds: number }[] = [];
    const records = jobs.map((b, i) => sqsRecord(`m${i}`, b, true));
    records[1] = { ...(records[1] as SQSRecord), attributes: { ...(records[1] as SQSRecord).attributes, ApproximateReceiveCount: '3' } };
    const r = await eachJob({ Records: records }, async () => undefined, quiet, {
      release: async (items) => {
        released.push(...items.map(({ record, seconds }) => ({ id: record.messageId, seconds })));
      },
    });
    expect(r.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1', 'm2', 'm3']);
    // Without this the group waits out the visibility timeout (30 minutes on the flush queue) per receive.
    expect(released).toEqual([
      { id: 'm1', seconds: 40 },
      { id: 'm2', seconds: 0 },
      { id: 'm3', seconds: 0 },
    ]);
    // A release that fails only costs time: the failures are reported all the same.
    const again = await eachJob({ Records: records }, async () => undefined, quiet, { release: () => Promise.reject(new Error('denied')) });
    expect(again.batchItemFailures).toHaveLength(3);
    // Standard queues: nothing waits behind a failure, nothing is released.
    const none: unknown[] = [];
    await eachJob({ Records: jobs.map((b, i) => sqsRecord(`m${i}`, b)) }, async () => undefined, quiet, { release: async (items) => void none.push(...items) });
    expect(none).toEqual([]);
  });
});

describe('near the deadline', () => {
  it('starts no further job and returns the ones not started as failures (no early timeout that leaves a job running)', async () => {
    const started: string[] = [];
    const handler = lambda((event: { Records: SQSRecord[] }, ctx: Context) =>
      eachJob(event, async (_job, record) => {
        started.push(record.messageId);
        await new Promise((r) => setTimeout(r, 200));
      }, quiet, { context: ctx }),
    );
    const deadline = Date.now() + 800;
    const ctx = { getRemainingTimeInMillis: () => deadline - Date.now() } as Context;
    const records = ['a', 'b', 'c', 'd'].map((id) => sqsRecord(id, '{"kind":"compact","table":"todos"}'));
    expect(await handler({ Records: records }, ctx)).toEqual({ batchItemFailures: [{ itemIdentifier: 'c' }, { itemIdentifier: 'd' }] });
    await new Promise((r) => setTimeout(r, 300));
    expect(started).toEqual(['a', 'b']);
  });
});

describe('jobs', () => {
  it('parse strictly and name duplicates alike', () => {
    expect(parseLakeJob('{"kind":"checkpoint","cursor":"42"}')).toEqual({ kind: 'checkpoint', cursor: '42' });
    expect(parseLakeJob('{"kind":"flush"}')).toEqual({ kind: 'flush' });
    expect(() => parseLakeJob('{"kind":"compact","table":"../x"}')).toThrow(/table/);
    expect(() => parseLakeJob('{"kind":"checkpoint","cursor":"-1"}')).toThrow(/cursor/);
    expect(() => parseLakeJob('[]')).toThrow(/kind/);
    expect(jobKey({ kind: 'flush', ref: 's1' })).toBe(jobKey(parseLakeJob('{"kind":"flush","ref":"s1"}')));
  });

  it('maintenance asks for compaction and lifecycle of every lake table and one checkpoint', () => {
    const jobs = maintenanceJobs({ version: 1, tables: [{ name: 'todos', columns: [] }] });
    expect(jobs).toEqual([
      { kind: 'compact', table: 'todos' },
      { kind: 'lifecycle', table: 'todos' },
      { kind: 'compact', table: 'todos_changes' },
      { kind: 'lifecycle', table: 'todos_changes' },
      { kind: 'checkpoint' },
    ]);
  });
});
