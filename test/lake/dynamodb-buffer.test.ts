import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBufferConformance } from '../../core/adapters/buffer.conformance.ts';
import { createDynamoDbBufferTable, DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import { makeDelta, type Delta } from '../../core/delta.ts';
import type { DeltaBuffer, LogEntryDraft } from '../../core/engine/ports.ts';
import { applyDelta } from '../../core/merge.ts';
import { motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';

/**
 * The DynamoDB buffer against moto's server: the conformance suite (a fresh
 * table per test; reopen = a new client over the same table), concurrent
 * appenders and readers through separate buffers (like separate Lambdas),
 * and appends larger than one item and one transaction.
 */
let moto: MotoServer;
const clients: DynamoDBClient[] = [];
let tables = 0;

beforeAll(async () => {
  moto = await startMoto();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await moto?.stop();
});

function client(): DynamoDBClient {
  const c = new DynamoDBClient({ ...motoClientConfig(moto), maxAttempts: 3 });
  clients.push(c);
  return c;
}

const tableOf = new WeakMap<DeltaBuffer, string>();

async function freshTable(): Promise<string> {
  const table = `ls-buffer-${process.pid}-${++tables}`;
  await createDynamoDbBufferTable(client(), table);
  return table;
}

/**
 * moto runs requests on threads without a lock, and rolls a cancelled
 * transaction back by restoring a copy of the whole table, which can undo
 * another request's writes: its transactions are not isolated. DynamoDB's
 * are (serializable per item). Clients that run concurrently therefore
 * send one request at a time; the appends and reads still interleave
 * between requests, as Lambdas do.
 */
let queue: Promise<unknown> = Promise.resolve();
function serialized(c: DynamoDBClient): DynamoDBClient {
  const send = c.send.bind(c) as (cmd: unknown) => Promise<unknown>;
  c.send = ((cmd: unknown) => {
    const run = queue.then(() => send(cmd));
    queue = run.catch(() => undefined);
    return run;
  }) as typeof c.send;
  return c;
}

function open(table: string, serial = false): DynamoDbBuffer {
  const b = new DynamoDbBuffer({ client: serial ? serialized(client()) : client(), table });
  tableOf.set(b, table);
  return b;
}

runBufferConformance('DynamoDB', {
  async create() {
    return open(await freshTable(), true);
  },
  async reopen(b) {
    await b.close();
    return open(tableOf.get(b) as string, true);
  },
});

let n = 0;
function delta(clientId: string, rowId: string, title: string): Delta {
  n += 1;
  return makeDelta({ table: 'todos', rowId, op: 'insert', columns: { title }, hlc: BigInt(5_000_000 + n), clientId });
}

const draft = (d: Delta): LogEntryDraft => ({ delta: d, before: null, after: null, fresh: true });

describe('DynamoDB buffer', () => {
  it('8 concurrent appenders and 2 paging readers: every entry once, in seq order, no gap', async () => {
    const table = await freshTable();
    const writers = Array.from({ length: 8 }, () => open(table, true));
    const perWriter = 12;
    const appended = new Set<string>();
    let writing = true;
    const write = async (b: DynamoDbBuffer, w: number): Promise<void> => {
      for (let i = 0; i < perWriter; i++) {
        const ds = Array.from({ length: 1 + ((w + i) % 4) }, (_, j) => delta(`w${w}`, `w${w}-${i}-${j}`, 'x'));
        const r = await b.append(ds.map(draft), []);
        expect(r.ok).toBe(true);
        for (const d of ds) appended.add(d.deltaId);
      }
    };
    const readAll = async (b: DynamoDbBuffer, limit: number): Promise<{ seq: bigint; id: string }[]> => {
      const seen: { seq: bigint; id: string }[] = [];
      let cursor = 0n;
      for (;;) {
        const page = await b.read(cursor, limit);
        for (const e of page.entries) {
          expect(e.seq).toBe(cursor + 1n); // no gap, no repeat
          cursor = e.seq;
          seen.push({ seq: e.seq, id: e.delta.deltaId });
        }
        expect(page.lastSeq).toBe(cursor);
        if (!writing && !page.hasMore && cursor === (await b.head())) return seen;
        if (page.entries.length === 0) await new Promise((r) => setTimeout(r, 5));
      }
    };
    const readers = Promise.all([readAll(open(table, true), 3), readAll(open(table, true), 5)]);
    await Promise.all(writers.map((b, w) => write(b, w)));
    writing = false;
    const [a, b] = await readers;
    const total = appended.size;
    const head = await open(table).head();
    expect(head).toBe(BigInt(total));
    for (const seen of [a, b]) {
      expect(seen).toHaveLength(total);
      expect(new Set(seen.map((s) => s.id))).toEqual(appended);
    }
    expect(a).toEqual(b);
  });

  it('an append larger than one item and one transaction reads back intact', async () => {
    const b = open(await freshTable());
    const big = 'v'.repeat(2048);
    const ds = Array.from({ length: 1000 }, (_, i) => delta('big', `big-${i}`, `${i}:${big}`));
    const r = await b.append(ds.map(draft), []);
    expect(r).toEqual({ ok: true, lastSeq: 1000n });
    const back: Delta[] = [];
    for (let c = 0n; ; ) {
      const page = await b.read(c, 300);
      back.push(...page.entries.map((e) => e.delta));
      c = page.lastSeq;
      if (!page.hasMore) break;
    }
    expect(back).toEqual(ds);
    // Its stamps deduplicate, and a re-sent part of it is refused as a whole.
    expect(await b.existing('big', [ds[0]?.hlc as bigint, ds[999]?.hlc as bigint])).toEqual([ds[0]?.deltaId, ds[999]?.deltaId]);
    const again = [delta('big', 'new', 'y'), ...ds.slice(500, 700)];
    expect((await b.append(again.map(draft), [])).ok).toBe(false);
    expect(await b.head()).toBe(1000n);
    expect(await b.existing('big', [again[0]?.hlc as bigint])).toEqual([null]);
  });

  it('a two-phase append writes its rows, and refuses stale versions as a whole', async () => {
    const b = open(await freshTable());
    const ds = Array.from({ length: 150 }, (_, i) => delta('two', `two-${i}`, 'x'));
    const rows = ds.map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 }));
    expect(await b.append(ds.map(draft), rows)).toEqual({ ok: true, lastSeq: 150n });
    const loaded = await b.loadRows(ds.map((d) => ({ table: 'todos', rowId: d.rowId })));
    expect(loaded).toEqual(rows.map((w) => ({ version: 1, state: w.state })));
    // Stale row versions: nothing of it stays.
    const more = Array.from({ length: 150 }, (_, i) => delta('two', `two-${i}`, 'z'));
    const stale = more.map((d, i) => ({ state: applyDelta(rows[i]?.state, d), expectedVersion: i === 149 ? 7 : 1 }));
    expect((await b.append(more.map(draft), stale)).ok).toBe(false);
    expect(await b.existing('two', more.map((d) => d.hlc))).toEqual(more.map(() => null));
    expect((await b.loadRows([{ table: 'todos', rowId: 'two-0' }]))[0]?.version).toBe(1);
    // With the right versions it goes through.
    const fresh = more.map((d, i) => ({ state: applyDelta(rows[i]?.state, d), expectedVersion: 1 }));
    expect(await b.append(more.map(draft), fresh)).toEqual({ ok: true, lastSeq: 300n });
    expect((await b.loadRows([{ table: 'todos', rowId: 'two-149' }]))[0]).toEqual({ version: 2, state: fresh[149]?.state });
    expect((await b.read(150n, 1)).entries[0]?.delta).toEqual(more[0]);
  });

  it('a large append of a writer that died after prepare is aborted once its lease ends', async () => {
    const table = await freshTable();
    const b = new DynamoDbBuffer({ client: client(), table, lockLeaseMs: 200 });
    const ds = Array.from({ length: 120 }, (_, i) => delta('dead', `d-${i}`, 'x'));
    const rows = ds.map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 }));
    // Simulate the crash: fail the commit transaction once.
    const send = b['client'].send.bind(b['client']);
    let commits = 0;
    b['client'].send = ((cmd: { input?: { TransactItems?: { Update?: unknown }[] } }) => {
      if (cmd.input?.TransactItems?.[0]?.Update !== undefined && commits++ === 0) return Promise.reject(new Error('Lambda timed out'));
      return send(cmd as never);
    }) as typeof send;
    await expect(b.append(ds.map(draft), rows)).rejects.toThrow('Lambda timed out');
    const other = open(table);
    // Within the lease: held (a competing append conflicts), not visible.
    expect(await other.existing('dead', [ds[0]?.hlc as bigint])).toEqual([null]);
    expect((await other.append([draft(ds[0] as Delta)], [])).ok).toBe(false);
    expect(await other.head()).toBe(0n);
    await new Promise((r) => setTimeout(r, 250));
    const lazy = new DynamoDbBuffer({ client: client(), table, lockLeaseMs: 200 });
    expect(await lazy.existing('dead', ds.map((d) => d.hlc))).toEqual(ds.map(() => null));
    expect(await lazy.loadRows([{ table: 'todos', rowId: 'd-0' }])).toEqual([undefined]);
    expect(await lazy.append([draft(ds[0] as Delta)], [rows[0] as (typeof rows)[number]])).toEqual({ ok: true, lastSeq: 1n });
  });

  it('a two-phase append whose commit answer was lost (an SDK retry) is ok, not aborted', async () => {
    const table = await freshTable();
    const b = new DynamoDbBuffer({ client: client(), table });
    const ds = Array.from({ length: 60 }, (_, i) => delta('lost', `l-${i}`, 'x'));
    const rows = ds.map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 }));
    const send = b['client'].send.bind(b['client']) as (cmd: unknown) => Promise<unknown>;
    let commits = 0;
    b['client'].send = (async (cmd: { input?: { TransactItems?: { Update?: unknown }[] } }) => {
      if (cmd.input?.TransactItems?.[0]?.Update !== undefined && commits++ === 0) {
        await send(cmd); // committed, but the answer is lost: the SDK sends it again
      }
      return send(cmd);
    }) as typeof b['client']['send'];
    expect(await b.append(ds.map(draft), rows)).toEqual({ ok: true, lastSeq: 60n });
    expect(await b.existing('lost', [ds[59]?.hlc as bigint])).toEqual([ds[59]?.deltaId]);
    expect((await b.loadRows([{ table: 'todos', rowId: 'l-59' }]))[0]).toEqual({ version: 1, state: rows[59]?.state });
    expect((await b.read(0n, 100)).entries.map((e) => e.delta)).toEqual(ds);
  });

  it('reports the write units of ~200-byte deltas', async () => {
    // moto reports no consumed capacity for transactions: count it from the
    // items sent, by DynamoDB's rules (item size = names + values, rounded
    // up to 1 KB; x2 in a transaction).
    const report: string[] = [];
    for (const size of [10, 100]) {
      const table = await freshTable();
      const c = client();
      let wcu = 0;
      const send = c.send.bind(c) as (cmd: unknown) => Promise<unknown>;
      c.send = ((cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = cmd.constructor.name;
        if (name === 'TransactWriteItemsCommand') {
          for (const t of cmd.input.TransactItems as Record<string, { Item?: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown> }>[]) {
            const op = Object.values(t)[0];
            wcu += 2 * Math.ceil(itemBytes(op?.Item ?? op?.ExpressionAttributeValues ?? {}) / 1024);
          }
        } else if (name === 'UpdateItemCommand' || name === 'PutItemCommand' || name === 'DeleteItemCommand') {
          wcu += 1; // finalize: a row of ~0.3 KB
        }
        return send(cmd);
      }) as typeof c.send;
      const b = new DynamoDbBuffer({ client: c, table });
      const count = 200;
      const ds = Array.from({ length: count }, (_, i) => delta(`wcu${size}`, `wcu${size}-${i}`, 't'.repeat(120)));
      for (let i = 0; i < ds.length; i += size) {
        const part = ds.slice(i, i + size);
        const r = await b.append(
          part.map(draft),
          part.map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 })),
        );
        expect(r.ok).toBe(true);
      }
      report.push(`pushes of ${size}: ${(wcu * 1000) / count} WCU per 1,000 deltas`);
      expect(wcu / count).toBeLessThan(6);
    }
    console.log(report.join('\n'));
  });
});

/** DynamoDB's item size: attribute names plus values (numbers: about 1 byte per 2 digits + 1). */
function itemBytes(item: Record<string, unknown>): number {
  let n = 0;
  for (const [name, v] of Object.entries(item)) {
    n += name.length;
    const a = v as { S?: string; N?: string; B?: Uint8Array };
    if (a.S !== undefined) n += Buffer.byteLength(a.S);
    else if (a.N !== undefined) n += Math.ceil(a.N.length / 2) + 1;
    else if (a.B !== undefined) n += a.B.length;
  }
  return n;
}
