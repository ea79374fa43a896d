import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { SqsJobQueue } from '../../core/adapters/sqs-job-queue.ts';
import type { JobQueue } from '../../core/lake/queue.ts';
import { openShards, shardGuard, shardIndexer } from './buffer.ts';
import { settingsFromEnv, type AwsSettings } from './env.ts';
import { errorText, jsonLog, lambda, perContainer, type Log } from './lambda.ts';
import { isLogInsert } from './stream-records.ts';

/**
 * DynamoDB Streams on the buffer table -> a flush job on the flush queue.
 * Counts the deltas of new log items (their `n` attribute; nothing is
 * decoded, the buffer is not read) and asks for a flush once
 * `flushMaxDeltas` arrived or the oldest one not yet asked for is
 * `flushMaxAgeMs` old. The count lives in the container: a new container
 * starts from zero, a duplicated record counts twice; both only move a
 * flush earlier or later, and a flush job is idempotent. Deltas that arrive
 * and are followed by silence are flushed by the scheduled flush tick.
 * It also materializes the buffer's row and stamp index once the log tail is
 * long enough, so that no push waits for it.
 */
export interface StreamDeps {
  readonly flushQueue: JobQueue;
  /**
   * Materializes one shard's row and stamp index off the push path (a no-op
   * until its tail is long enough); called for each shard the batch wrote.
   */
  readonly index?: (shard: string) => Promise<void>;
  readonly log?: Log;
  readonly now?: () => number;
}

export type StreamHandler = (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse>;

export function createStreamHandler(deps: StreamDeps, settings: Pick<AwsSettings, 'flushMaxDeltas' | 'flushMaxAgeMs'>): StreamHandler {
  const log = deps.log ?? jsonLog;
  const now = deps.now ?? Date.now;
  let counted = 0;
  let oldestMs: number | null = null;
  return lambda(async (event) => {
    const records = event.Records.filter(isLogInsert);
    if (records.length === 0) return { batchItemFailures: [] };
    let deltas = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const r of records) {
      const n = Number(r.dynamodb?.NewImage?.['n']?.N ?? '1');
      deltas += Number.isFinite(n) && n > 0 ? n : 1;
      const at = (r.dynamodb?.ApproximateCreationDateTime ?? now() / 1000) * 1000;
      if (at < oldest) oldest = at;
    }
    if (deps.index !== undefined) {
      const shards = new Set(records.map((r) => (r.dynamodb?.Keys?.['pk']?.S as string).slice(2)));
      for (const shard of shards) {
        try {
          await deps.index(shard);
        } catch (e) {
          // Not this batch's failure: the next batch, an append's backstop or trim materializes.
          log({ level: 'warn', msg: 'index materialization failed', shard, error: errorText(e) });
        }
      }
    }
    const before = { counted, oldestMs };
    counted += deltas;
    oldestMs = oldestMs === null ? oldest : Math.min(oldestMs, oldest);
    const age = now() - oldestMs;
    if (counted < settings.flushMaxDeltas && age < settings.flushMaxAgeMs) return { batchItemFailures: [] };
    try {
      // Named by the batch's last record: a retried or duplicated batch asks for the same flush.
      const ref = `s${records[records.length - 1]?.dynamodb?.SequenceNumber ?? now()}`;
      await deps.flushQueue.send([{ kind: 'flush', ref }]);
      log({ level: 'info', msg: 'flush requested', counted, ageMs: age, ref });
      counted = 0;
      oldestMs = null;
      return { batchItemFailures: [] };
    } catch (e) {
      // Lambda retries from the first reported record: the whole batch, which is counted again.
      ({ counted, oldestMs } = before);
      log({ level: 'error', msg: 'flush request failed', error: errorText(e) });
      return { batchItemFailures: [{ itemIdentifier: records[0]?.dynamodb?.SequenceNumber ?? '' }] };
    }
  });
}

export const handler: StreamHandler = perContainer(() => {
  const settings = settingsFromEnv(process.env);
  const client = new DynamoDBClient({});
  const shards = openShards(client, settings);
  const guard = shardGuard(client, settings);
  const indexer = shardIndexer(shards);
  return createStreamHandler(
    {
      flushQueue: new SqsJobQueue({ client: new SQSClient({}), queueUrl: settings.flushQueueUrl }),
      index: async (shard) => {
        await guard();
        await indexer(shard);
      },
    },
    settings,
  );
});
