import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import { claimShardCount } from '../../core/adapters/dynamodb-shard-count.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import type { AwsSettings } from './env.ts';

/**
 * The one DynamoDB buffer options every function uses: the http function
 * appends, the stream consumer materializes the row and stamp index (so a
 * push never waits for it; appends keep a backstop), the lake jobs trim.
 * The http function passes the fetch client (no SDK), the others an SDK one.
 */
export function openBuffer(client: DynamoDBClient | DynamoDbApi, settings: Pick<AwsSettings, 'table' | 'logTtlDays'>, shard = '0'): DynamoDbBuffer {
  const days = settings.logTtlDays ?? 0;
  return new DynamoDbBuffer({
    client,
    table: settings.table,
    shard,
    materializeOnAppend: false,
    ...(days > 0 ? { ttlAttribute: 'ttl', ttlSeconds: days * 86_400 } : {}),
  });
}

/** Every shard of the deployment's buffer (shard k is named String(k)), on one table. */
export function openShards(client: DynamoDBClient | DynamoDbApi, settings: Pick<AwsSettings, 'table' | 'logTtlDays' | 'shards'>): BufferShards {
  return new BufferShards(Array.from({ length: settings.shards ?? 1 }, (_, k) => openBuffer(client, settings, String(k))));
}

/** The stream consumer's index step: materialize the shard a log item names (its pk is `L#<shard>`). */
export function shardIndexer(shards: BufferShards): (shard: string) => Promise<void> {
  return async (shard) => {
    const buffer = shards.buffers[Number(shard)];
    if (!/^\d+$/.test(shard) || !(buffer instanceof DynamoDbBuffer)) {
      throw new Error(`a log item of shard ${shard}, but the deployment has ${shards.count} shards`);
    }
    await buffer.materializeIndex();
  };
}

/**
 * Check (once per container) that the table is opened with the shard count
 * it was written with (core/adapters/dynamodb-shard-count.ts). A failure is
 * not remembered: the next invocation checks again.
 */
export function shardGuard(client: DynamoDBClient | DynamoDbApi, settings: Pick<AwsSettings, 'table' | 'shards'>): () => Promise<void> {
  let checked: Promise<void> | null = null;
  return () =>
    (checked ??= claimShardCount(client, settings.table, settings.shards ?? 1).catch((e: unknown) => {
      checked = null;
      throw e;
    }));
}

/** A handler that runs only once the shard count checked out. */
export function guarded<E, C, R>(guard: () => Promise<void>, fn: (event: E, context: C) => Promise<R>): (event: E, context: C) => Promise<R> {
  return async (event, context) => {
    await guard();
    return fn(event, context);
  };
}
