import type { SQSClient, SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import type { LakeJob } from '../lake/queue.ts';
import { SqsJobQueue } from './sqs-job-queue.ts';

/** Records the entries sent; SQS's own limits on a FIFO deduplication id are checked here. */
function recorder(): { client: SQSClient; entries: SendMessageBatchRequestEntry[] } {
  const entries: SendMessageBatchRequestEntry[] = [];
  const client = {
    send: (command: { input: { Entries: SendMessageBatchRequestEntry[] } }) => {
      entries.push(...command.input.Entries);
      return Promise.resolve({ Successful: [], Failed: [] });
    },
  } as unknown as SQSClient;
  return { client, entries };
}

// SQS: at most 128 characters, alphanumerics and punctuation.
const DEDUP_ID = /^[!-~]{1,128}$/;

describe('SqsJobQueue', () => {
  it('on a FIFO queue, every job gets a deduplication id SQS accepts, also a checkpoint cursor of 64 shards; equal jobs get equal ids, different ones different ids', async () => {
    const { client, entries } = recorder();
    const q = new SqsJobQueue({ client, queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/jobs.fifo' });
    const cursor = (k: number): string => Array.from({ length: 64 }, (_, i) => String(1_000_000_000_000_000_000n + BigInt(i + k))).join('.');
    const jobs: LakeJob[] = [
      { kind: 'checkpoint', cursor: cursor(0) },
      { kind: 'checkpoint', cursor: cursor(0) },
      { kind: 'checkpoint', cursor: cursor(1) },
      { kind: 'flush', ref: 'x'.repeat(100) },
      { kind: 'fanout', shard: '63', from: '18446744073709551615', to: '18446744073709551615' },
    ];
    await q.send(jobs);
    const ids = entries.map((e) => e.MessageDeduplicationId as string);
    for (const id of ids) expect(id).toMatch(DEDUP_ID);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[0]).not.toBe(ids[2]);
    expect(ids[3]).toBe(`flush-${'x'.repeat(100)}`);
  });

  it('on a standard queue sends no deduplication id or group', async () => {
    const { client, entries } = recorder();
    await new SqsJobQueue({ client, queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/jobs' }).send([{ kind: 'checkpoint' }]);
    expect(entries[0]).toEqual({ Id: '0', MessageBody: '{"kind":"checkpoint"}' });
  });
});
