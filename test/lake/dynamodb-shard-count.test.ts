import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoDbBufferTable, DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import type { DynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { claimShardCount, ShardCountMismatch } from '../../core/adapters/dynamodb-shard-count.ts';
import { makeDelta } from '../../core/delta.ts';
import { encodeHlc } from '../../core/hlc.ts';
import { applyDelta } from '../../core/merge.ts';
import { shardGuard } from '../../functions/aws/buffer.ts';
import { motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';

/** The shard count recorded in the buffer table, against moto. */
let moto: MotoServer;
let client: DynamoDBClient;
let n = 0;

beforeAll(async () => {
  moto = await startMoto();
  client = new DynamoDBClient({ ...motoClientConfig(moto), maxAttempts: 3 });
});

afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

async function table(): Promise<string> {
  const name = `shard-count-${process.pid}-${++n}`;
  await createDynamoDbBufferTable(client, name);
  return name;
}

describe('the buffer table records its shard count', () => {
  it('the first opener records it; the same count opens again; another count is refused', async () => {
    const t = await table();
    await claimShardCount(client, t, 3);
    await claimShardCount(client, t, 3);
    await expect(claimShardCount(client, t, 4)).rejects.toThrow(ShardCountMismatch);
    await expect(claimShardCount(client, t, 1)).rejects.toThrow(/holds a 3-shard buffer/);
  });

  it('a table written before counts were recorded is a one-shard table', async () => {
    const t = await table();
    const b = new DynamoDbBuffer({ client, table: t });
    const delta = makeDelta({ table: 'todos', rowId: 'r1', op: 'insert', columns: { title: 'x' }, hlc: encodeHlc(Date.now(), 1), clientId: 'c' });
    expect((await b.append([{ delta, before: null, after: null, fresh: true }], [{ state: applyDelta(undefined, delta), expectedVersion: 0 }])).ok).toBe(true);
    await expect(claimShardCount(client, t, 4)).rejects.toThrow(/holds a 1-shard buffer; set LAKESYNC_SHARDS to 1, not 4/);
    await claimShardCount(client, t, 1);
  });

  it("the functions' guard checks once per container, and again after a failure", async () => {
    const t = await table();
    await claimShardCount(client, t, 2);
    const wrong = shardGuard(client, { table: t, shards: 4 });
    await expect(wrong()).rejects.toThrow(ShardCountMismatch);
    await expect(wrong()).rejects.toThrow(ShardCountMismatch); // a failure is not remembered as a pass
    let reads = 0;
    const counted: DynamoDbApi = {
      call: () => {
        reads++;
        return Promise.resolve({ Item: { n: { N: '2' } } } as never);
      },
    };
    const right = shardGuard(counted, { table: t, shards: 2 });
    await right();
    await right();
    expect(reads).toBe(1);
  });
});
