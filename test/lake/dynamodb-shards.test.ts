import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoDbBufferTable, DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import type { DynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { claimShardCount, ShardCountMismatch } from '../../core/adapters/dynamodb-shard-count.ts';
import { makeDelta } from '../../core/delta.ts';
import { encodeHlc } from '../../core/hlc.ts';
import { applyDelta } from '../../core/merge.ts';
import type { Principal } from '../../core/auth/principal.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import type { Schema } from '../../core/schema.ts';
import { shardGuard } from '../../functions/aws/buffer.ts';
import { motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';

/** A sharded DynamoDB buffer against moto: concurrent writers and a reader across shards; the recorded shard count. */
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

describe('a two-shard DynamoDB buffer under concurrent writers', () => {
  it('a reader pulling with a small limit while two Lambdas push to tables in different shards gets every delta once, each shard in order', async () => {
    const t = await table();
    const schema: Schema = { version: 1, tables: ['orders', 'products'].map((name) => ({ name, columns: [{ name: 'n', type: 'integer' as const }] })) };
    // Each "Lambda" has its own buffers over the same table, as containers would.
    const open = (): Gateway =>
      new Gateway({
        buffer: new BufferShards([0, 1].map((k) => new DynamoDbBuffer({ client, table: t, shard: String(k), materializeEvery: 20, materializeOnAppend: false }))),
        schema,
        rules: null,
        clock: new HybridLogicalClock({ maxDriftMs: 60_000 }),
      });
    const who = (id: string): Principal => ({ clientId: id, userId: id, claims: { sub: id }, admin: false });
    const base = Date.now() - 1000;
    const writer = async (g: Gateway, id: string, tableName: string): Promise<void> => {
      for (let i = 0; i < 60; i += 5) {
        const deltas = Array.from({ length: 5 }, (_, j) =>
          makeDelta({ table: tableName, rowId: `${id}-${i + j}`, op: 'insert', columns: { n: BigInt(i + j) }, hlc: encodeHlc(base, i + j + 1), clientId: id }),
        );
        await g.push(who(id), { clientId: id, schemaVersion: 1, deltas });
      }
    };
    const reader = open();
    const seen: string[] = [];
    let cursor = '';
    let writing = true;
    const read = async (): Promise<void> => {
      for (;;) {
        const page = await reader.pull(who('reader'), { cursor, limit: 7 });
        for (const c of page.changes) if (c.kind === 'delta') seen.push(c.delta.rowId);
        cursor = page.nextCursor;
        if (!writing && !page.hasMore && cursor === (await reader.head())) return;
      }
    };
    const reading = read();
    await Promise.all([writer(open(), 'a', 'orders'), writer(open(), 'b', 'products'), writer(open(), 'c', 'orders')]);
    writing = false;
    await reading;
    expect(seen).toHaveLength(180);
    expect(new Set(seen).size).toBe(180);
    // Within a writer (a client's pushes into one shard), server order is push order.
    for (const id of ['a', 'b', 'c']) {
      const mine = seen.filter((r) => r.startsWith(`${id}-`)).map((r) => Number(r.slice(2)));
      expect(mine).toEqual(Array.from({ length: 60 }, (_, i) => i));
    }
    expect(cursor).toBe('120.60');
  });
});
