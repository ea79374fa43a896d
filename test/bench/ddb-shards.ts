import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoDbApi, type DynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { createDynamoDbBufferTable, DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import { WriteMeter } from '../../core/adapters/dynamodb-buffer-wcu.ts';
import type { Principal } from '../../core/auth/principal.ts';
import { makeDelta, type Delta } from '../../core/delta.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import type { Schema } from '../../core/schema.ts';
import { motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';
import { chunk, hlcClock, now } from './support.ts';
import type { BenchRow } from './table.ts';

/**
 * `npm run bench -- ddb-shards`: what sharding the DynamoDB buffer by table
 * buys under concurrent writers. Four writers (each its own Gateway and
 * buffers, as four Lambdas would be) push to four tables at once, 300
 * deltas of ~200 bytes each in pushes of 10, against moto: once on one
 * shard, once on four (the four tables hash to four different shards).
 * Counted: appends that lost the race for their shard's next log key (a
 * failed conditional put: charged, then retried), write units per 1,000
 * deltas (core/adapters/dynamodb-buffer-wcu.ts; the pushes only: the row
 * and stamp index, which the stream consumer materializes, is not in it),
 * and wall time. On real
 * DynamoDB each shard's log is also its own partition key, with its own
 * ~1,000 WCU/s write limit.
 */
const TABLES = ['orders', 'products', 'customers', 'comments'] as const; // shards 0, 1, 2, 3 of 4
const SCHEMA: Schema = { version: 1, tables: TABLES.map((name) => ({ name, columns: [{ name: 'body', type: 'string' as const }] })) };
const PER_WRITER = 300;
const PUSH = 10;

interface ShardRun {
  readonly shards: number;
  readonly lostRaces: number;
  readonly appends: number;
  readonly wcuPer1000: number;
  readonly seconds: number;
}

function counting(api: DynamoDbApi, onLost: () => void): DynamoDbApi {
  return {
    async call(op, input) {
      try {
        return await api.call(op, input);
      } catch (e) {
        if (op === 'PutItem' && (e as Error).name === 'ConditionalCheckFailedException') onLost();
        throw e;
      }
    },
  };
}

async function run(moto: MotoServer, shardCount: number): Promise<ShardRun> {
  const table = `ls-shards-${process.pid}-${Date.now()}-${shardCount}`;
  const admin = new DynamoDBClient(motoClientConfig(moto));
  await createDynamoDbBufferTable(admin, table);
  admin.destroy();
  const meter = new WriteMeter();
  const clients: DynamoDBClient[] = [];
  let lostRaces = 0;
  const writers = TABLES.map((name, w) => {
    const client = meter.attach(new DynamoDBClient({ ...motoClientConfig(moto), maxAttempts: 3 }));
    clients.push(client);
    const api = counting(dynamoDbApi(client), () => lostRaces++);
    const shards = new BufferShards(Array.from({ length: shardCount }, (_, k) => new DynamoDbBuffer({ client: api, table, shard: String(k), materializeOnAppend: false })));
    const gateway = new Gateway({ buffer: shards, schema: SCHEMA, rules: null, clock: new HybridLogicalClock({ maxDriftMs: 60_000 }) });
    const clientId = `writer-${w}`;
    const hlcAt = hlcClock();
    const deltas: Delta[] = Array.from({ length: PER_WRITER }, (_, i) =>
      makeDelta({ table: name, rowId: `r${i}`, op: 'insert', columns: { body: `${name} ${i} `.padEnd(160, '.') }, hlc: hlcAt(i), clientId }),
    );
    const who: Principal = { clientId, userId: clientId, claims: { sub: clientId }, admin: false };
    return { gateway, who, deltas };
  });
  const t0 = now();
  let appends = 0;
  await Promise.all(
    writers.map(async ({ gateway, who, deltas }) => {
      for (const part of chunk(deltas, PUSH)) {
        await gateway.push(who, { clientId: who.clientId, schemaVersion: 1, deltas: part });
        appends++;
      }
    }),
  );
  const seconds = (now() - t0) / 1000;
  for (const c of clients) c.destroy();
  const total = TABLES.length * PER_WRITER;
  return { shards: shardCount, lostRaces, appends, wcuPer1000: (meter.units * 1000) / total, seconds };
}

export async function benchDdbShards(): Promise<BenchRow[]> {
  const moto = await startMoto();
  try {
    const runs = [await run(moto, 1), await run(moto, 4)];
    console.log(`DynamoDB buffer, ${TABLES.length} concurrent writers on ${TABLES.length} tables, ${PER_WRITER} deltas each in pushes of ${PUSH}`);
    console.log('shards  appends  lost races  WCU/1k deltas  seconds');
    for (const r of runs) {
      console.log(`${String(r.shards).padStart(6)}  ${String(r.appends).padStart(7)}  ${String(r.lostRaces).padStart(10)}  ${r.wcuPer1000.toFixed(0).padStart(13)}  ${r.seconds.toFixed(2).padStart(7)}`);
    }
    console.log('');
    const base = runs[0] as ShardRun;
    return runs.map((r) => ({
      name: `ddb-shards ${TABLES.length} writers, ${r.shards} shard${r.shards === 1 ? '' : 's'}`,
      count: TABLES.length * PER_WRITER,
      unit: 'deltas',
      seconds: r.seconds,
      ...(r === base ? {} : { ratio: base.seconds / r.seconds }),
      note: `${r.lostRaces} lost races in ${r.appends} appends; ${r.wcuPer1000.toFixed(0)} WCU/1k deltas`,
    }));
  } finally {
    await moto.stop();
  }
}
