import { DeleteItemCommand, DynamoDBClient, QueryCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { AwsFetch } from '../../core/adapters/aws-fetch.ts';
import { sdkDynamoDbApi, type DynamoDbApi, type DynamoDbOp } from '../../core/adapters/dynamodb-api.ts';
import { fetchDynamoDbApi } from '../../core/adapters/dynamodb-api-fetch.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBufferConformance } from '../../core/adapters/buffer.conformance.ts';
import { createDynamoDbBufferTable, DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import { makeDelta, type Delta } from '../../core/delta.ts';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import { applyDelta, type RowState } from '../../core/merge.ts';
import { LakeSyncError } from '../../core/errors.ts';
import { FORGOTTEN, type DeltaBuffer, type LogEntryDraft, type RowWrite } from '../../core/engine/ports.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { encodeHlc, HybridLogicalClock } from '../../core/hlc.ts';
import type { Schema } from '../../core/schema.ts';
import { formatWcu, measureWcu } from '../bench/ddb.ts';
import { MOTO_CREDENTIALS, MOTO_REGION, motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';

/**
 * The DynamoDB buffer against moto's server: the conformance suite (a fresh
 * table per test; reopen = a new client over the same table), concurrent
 * appenders and readers through separate buffers (like separate Lambdas),
 * appends larger than one item, the row and stamp index against the log
 * tail, crashes and lost answers at each step, and the write units.
 * Everything runs twice: over the SDK's DynamoDBClient and over the fetch
 * client the http function uses (core/adapters/dynamodb-api-fetch.ts).
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

/** An SDK client, for the tests' own direct reads and writes (as TTL or another process would make them). */
function sdkClient(): DynamoDBClient {
  const c = new DynamoDBClient({ ...motoClientConfig(moto), maxAttempts: 3 });
  clients.push(c);
  return c;
}

type Impl = 'sdk' | 'fetch';

/** The buffer's operations over one implementation, each call its own client (a Lambda of its own). */
function makeApi(impl: Impl): DynamoDbApi {
  if (impl === 'sdk') return sdkDynamoDbApi(sdkClient());
  return fetchDynamoDbApi(new AwsFetch({ service: 'dynamodb', region: MOTO_REGION, credentials: MOTO_CREDENTIALS, endpoint: moto.endpoint, maxAttempts: 3 }));
}

type Input = { Item?: Record<string, AttributeValue>; Key?: Record<string, AttributeValue>; UpdateExpression?: string };
type Next = (op: DynamoDbOp, input: Input) => Promise<unknown>;

/** Put `wrap` between the buffer and its DynamoDB (fault injection). */
function intercept(b: DynamoDbBuffer, wrap: (next: Next, op: DynamoDbOp, input: Input) => Promise<unknown>): void {
  const api = b['api'];
  const next = api.call.bind(api) as unknown as Next;
  api.call = ((op: DynamoDbOp, input: Input) => wrap(next, op, input)) as DynamoDbApi['call'];
}

const tableOf = new WeakMap<DeltaBuffer, string>();

async function freshTable(): Promise<string> {
  const table = `ls-buffer-${process.pid}-${++tables}`;
  await createDynamoDbBufferTable(sdkClient(), table);
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
function serialized(api: DynamoDbApi): DynamoDbApi {
  const call = api.call.bind(api) as unknown as (op: DynamoDbOp, input: unknown) => Promise<unknown>;
  return {
    call: ((op: DynamoDbOp, input: unknown) => {
      const run = queue.then(() => call(op, input));
      queue = run.catch(() => undefined);
      return run;
    }) as DynamoDbApi['call'],
  };
}

let n = 0;
function delta(clientId: string, rowId: string, title: string): Delta {
  n += 1;
  return makeDelta({ table: 'todos', rowId, op: 'insert', columns: { title }, hlc: BigInt(5_000_000 + n), clientId });
}

const draft = (d: Delta): LogEntryDraft => ({ delta: d, before: null, after: null, fresh: true });

function suite(impl: Impl): void {
  const client = (): DynamoDbApi => makeApi(impl);

  function open(table: string, serial = false): DynamoDbBuffer {
    const b = new DynamoDbBuffer({ client: serial ? serialized(client()) : client(), table });
    tableOf.set(b, table);
    return b;
  }

  runBufferConformance(`DynamoDB (${impl})`, {
    async create() {
      return open(await freshTable(), true);
    },
    async reopen(b) {
      await b.close();
      return open(tableOf.get(b) as string, true);
    },
  });

  describe(`DynamoDB buffer (${impl})`, () => {
    it('read stops taking appends once the page holds maxBytes (never before the first entry); pages still cover the log', async () => {
      const b = open(await freshTable(), true);
      for (let k = 0; k < 5; k++) expect((await b.append([draft(delta('big', `b${k}`, 'x'.repeat(100_000)))], [])).ok).toBe(true);
      const budgeted = await b.read(0n, 1000, 250_000);
      expect(budgeted.entries.map((e) => e.seq)).toEqual([1n, 2n, 3n]);
      expect(budgeted).toMatchObject({ lastSeq: 3n, hasMore: true });
      expect(await b.read(3n, 1000, 250_000)).toMatchObject({ lastSeq: 5n, hasMore: false });
      expect((await b.read(0n, 1000, 1)).entries.map((e) => e.seq)).toEqual([1n]);
      expect((await b.read(0n, 1000)).entries).toHaveLength(5);
    });

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

    it('an append larger than one item (one transaction of several log items) reads back intact', async () => {
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

    it('a large append writes its rows, and refuses stale versions as a whole', async () => {
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

    it('rows and stamps read the same from the index as from the log tail, across materializations', async () => {
      const table = await freshTable();
      const a = new DynamoDbBuffer({ client: client(), table, materializeEvery: 7 });
      const other = new DynamoDbBuffer({ client: client(), table, materializeEvery: 1000 });
      const model = new MemoryBuffer();
      const rowIds = ['h0', 'h1', 'h2', 'h3'];
      const sent: Delta[] = [];
      for (let i = 0; i < 30; i++) {
        const b = i % 3 === 0 ? other : a;
        const ds = Array.from({ length: 1 + (i % 4) }, (_, j) => delta(`m${i % 2}`, rowIds[(i + j) % 4] as string, `v${i}-${j}`));
        const refs = [...new Set(ds.map((d) => d.rowId))].map((rowId) => ({ table: 'todos', rowId }));
        const stored = await b.loadRows(refs);
        expect(stored).toEqual(await model.loadRows(refs));
        const states = new Map<string, RowState | undefined>(refs.map((r, k) => [r.rowId, stored[k]?.state]));
        const entries = ds.map((d) => {
          const before = states.get(d.rowId);
          states.set(d.rowId, applyDelta(before, d));
          return { delta: d, before: null, after: null, fresh: before === undefined };
        });
        const rows: RowWrite[] = refs.map((r, k) => ({ state: states.get(r.rowId) as RowState, expectedVersion: stored[k]?.version ?? 0 }));
        const got = await b.append(entries, rows);
        expect(got).toEqual(await model.append(entries, rows));
        sent.push(...ds);
      }
      for (const b of [a, other, open(table)]) {
        const refs = rowIds.map((rowId) => ({ table: 'todos', rowId }));
        expect(await b.loadRows(refs)).toEqual(await model.loadRows(refs));
        for (const c of ['m0', 'm1']) {
          const hlcs = sent.filter((d) => d.clientId === c).map((d) => d.hlc);
          expect(await b.existing(c, [...hlcs, 1n])).toEqual([...sent.filter((d) => d.clientId === c).map((d) => d.deltaId), null]);
        }
      }
      // Trimmed: rows stay, stamps still deduplicate.
      await a.markFlushed(await a.head());
      await a.trim(await a.head());
      expect(await a.floor()).toBe(await a.head());
      const refs = rowIds.map((rowId) => ({ table: 'todos', rowId }));
      expect(await open(table).loadRows(refs)).toEqual(await model.loadRows(refs));
      expect(await open(table).existing('m0', [sent[0]?.hlc as bigint])).toEqual([FORGOTTEN]);
      expect((await a.append([draft(sent[5] as Delta)], [])).ok).toBe(false);
    });

    it('keeps a row state that is not the fold of the deltas, and a row written without an entry of its own', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table, materializeEvery: 2 });
      const p = delta('x', 'p', 'one');
      const odd: RowState = { ...applyDelta(undefined, p), columns: {} };
      const q = applyDelta(undefined, delta('x', 'q', 'two'));
      expect((await b.append([draft(p)], [{ state: odd, expectedVersion: 0 }, { state: q, expectedVersion: 0 }])).ok).toBe(true);
      const refs = [{ table: 'todos', rowId: 'p' }, { table: 'todos', rowId: 'q' }];
      expect(await b.loadRows(refs)).toEqual([{ state: odd, version: 1 }, { state: q, version: 1 }]);
      const p2 = delta('x', 'p', 'three');
      expect((await b.append([draft(p2)], [{ state: applyDelta(odd, p2), expectedVersion: 1 }])).ok).toBe(true); // materializes
      expect(await open(table).loadRows(refs)).toEqual([{ state: applyDelta(odd, p2), version: 2 }, { state: q, version: 1 }]);
    });

    it('a writer that dies after its put leaves a whole append; the next writer indexes it', async () => {
      const table = await freshTable();
      const dying = new DynamoDbBuffer({ client: client(), table, materializeEvery: 2 });
      // The Lambda dies right after its log put: every later write fails.
      let dead = false;
      intercept(dying, (send, op, input) => {
        if (dead && op !== 'GetItem' && op !== 'Query' && op !== 'BatchGetItem') return Promise.reject(new Error('Lambda timed out'));
        const r = send(op, input);
        if (op === 'PutItem' && input.Item?.pk?.S === 'L#0') dead = true;
        return r;
      });
      const ds = [delta('dead', 'd1', 'x'), delta('dead', 'd2', 'y')];
      const rows = ds.map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 }));
      // Committed: its answer says so even though indexing failed.
      expect(await dying.append(ds.map(draft), rows)).toEqual({ ok: true, lastSeq: 2n });
      const next = new DynamoDbBuffer({ client: client(), table, materializeEvery: 2 });
      expect(await next.existing('dead', ds.map((d) => d.hlc))).toEqual(ds.map((d) => d.deltaId));
      expect(await next.loadRows([{ table: 'todos', rowId: 'd1' }])).toEqual([{ state: rows[0]?.state, version: 1 }]);
      expect((await next.append([draft(ds[0] as Delta)], [])).ok).toBe(false);
      // The next writer's append (or a trim) indexes the whole tail.
      expect((await next.append([draft(delta('dead', 'd3', 'z'))], [])).ok).toBe(true);
      await next.markFlushed(3n);
      await next.trim(3n);
      expect(await next.floor()).toBe(3n);
      expect(await open(table).existing('dead', ds.map((d) => d.hlc))).toEqual([FORGOTTEN, FORGOTTEN]);
      expect(await open(table).loadRows([{ table: 'todos', rowId: 'd2' }])).toEqual([{ state: rows[1]?.state, version: 1 }]);
    });

    it('a put whose answer was lost (an SDK retry) is ok, not a conflict', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table });
      let puts = 0;
      intercept(b, async (send, op, input) => {
        if (op === 'PutItem' && input.Item?.pk?.S === 'L#0' && puts++ === 0) {
          await send(op, input); // written, but the answer is lost: the SDK sends it again
        }
        return send(op, input);
      });
      const ds = Array.from({ length: 5 }, (_, i) => delta('lost', `l-${i}`, 'x'));
      const rows = ds.map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 }));
      expect(await b.append(ds.map(draft), rows)).toEqual({ ok: true, lastSeq: 5n });
      expect((await b.read(0n, 100)).entries.map((e) => e.delta)).toEqual(ds);
      expect((await b.loadRows([{ table: 'todos', rowId: 'l-4' }]))[0]).toEqual({ version: 1, state: rows[4]?.state });
    });

    it('a writer whose head went stale during a flush and trim cannot reuse a seq', async () => {
      const table = await freshTable();
      const slow = new DynamoDbBuffer({ client: client(), table });
      const fast = open(table);
      let held = false;
      intercept(slow, async (send, op, input) => {
        if (!held && op === 'PutItem' && input.Item?.pk?.S === 'L#0') {
          held = true;
          // While this put is in flight, others append, flush and trim past its key.
          for (let i = 0; i < 3; i++) expect((await fast.append([draft(delta('fast', `f${i}`, 'x'))], [])).ok).toBe(true);
          await fast.markFlushed(3n);
          await fast.trim(3n);
        }
        return send(op, input);
      });
      const mine = delta('slow', 's', 'x');
      expect(await slow.append([draft(mine)], [])).toEqual({ ok: true, lastSeq: 4n });
      expect((await fast.read(3n, 10)).entries.map((e) => [e.seq, e.delta.deltaId])).toEqual([[4n, mine.deltaId]]);
    });

    it('a buffer whose view of the index is old still sees what others indexed and trimmed since', async () => {
      const table = await freshTable();
      const old = new DynamoDbBuffer({ client: client(), table });
      const first = delta('idx', 'o0', 'x');
      expect((await old.append([draft(first)], [{ state: applyDelta(undefined, first), expectedVersion: 0 }])).ok).toBe(true);
      // Others append, flush, index and trim past everything this buffer has seen.
      const fast = open(table);
      const later = Array.from({ length: 6 }, (_, i) => delta('idx', `o${i + 1}`, 'y'));
      for (const d of later) expect((await fast.append([draft(d)], [{ state: applyDelta(undefined, d), expectedVersion: 0 }])).ok).toBe(true);
      await fast.markFlushed(7n);
      await fast.trim(7n);
      expect(await old.existing('idx', later.map((d) => d.hlc))).toEqual(later.map(() => FORGOTTEN));
      expect(await old.loadRows([{ table: 'todos', rowId: 'o6' }])).toEqual([{ state: applyDelta(undefined, later[5] as Delta), version: 1 }]);
      expect((await old.append([draft(later[2] as Delta)], [])).ok).toBe(false);
      expect(await old.append([draft(delta('idx', 'o7', 'z'))], [])).toEqual({ ok: true, lastSeq: 8n });
    });

    it('with materialization off the append path, materializeIndex() does it', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table, materializeEvery: 2, materializeOnAppend: false });
      const ds = Array.from({ length: 3 }, (_, i) => delta('mi', `mi${i}`, 'x'));
      for (const d of ds) expect((await b.append([draft(d)], [{ state: applyDelta(undefined, d), expectedVersion: 0 }])).ok).toBe(true);
      expect((await b['readMeta']()).ix).toBe(0n);
      await b.materializeIndex();
      expect((await b['readMeta']()).ix).toBe(3n);
      await b.materializeIndex(); // nothing left: a no-op
      expect(await open(table).loadRows([{ table: 'todos', rowId: 'mi2' }])).toEqual([{ state: applyDelta(undefined, ds[2] as Delta), version: 1 }]);
      expect(await open(table).existing('mi', ds.map((d) => d.hlc))).toEqual(ds.map((d) => d.deltaId));
    });

    it('with materialization off the append path, an append still materializes once the tail is 8 windows long', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table, materializeEvery: 2, materializeOnAppend: false });
      for (let i = 0; i < 15; i++) expect((await b.append([draft(delta('bs', `bs${i}`, 'x'))], [])).ok).toBe(true);
      expect((await b['readMeta']()).ix).toBe(0n); // 15 < 8 x 2: still left to materializeIndex()
      expect((await b.append([draft(delta('bs', 'bs15', 'x'))], [])).ok).toBe(true);
      expect((await b['readMeta']()).ix).toBe(16n);
    });

    it('concurrent materializers leave one consistent index', async () => {
      const table = await freshTable();
      const bs = [0, 1, 2].map(() => new DynamoDbBuffer({ client: client(), table, materializeEvery: 1_000_000 }));
      const model = new MemoryBuffer();
      for (let i = 0; i < 12; i++) {
        const d = delta('cm', `c${i % 3}`, `v${i}`);
        const ref = [{ table: 'todos', rowId: d.rowId }];
        const [stored] = await model.loadRows(ref);
        const rows = [{ state: applyDelta(stored?.state, d), expectedVersion: stored?.version ?? 0 }];
        expect((await bs[i % 3]?.append([draft(d)], rows))?.ok).toBe(true);
        await model.append([draft(d)], rows);
        if (i % 4 === 3) await Promise.all(bs.map((b) => b['materialize'](true)));
      }
      await Promise.all(bs.map((b) => b['materialize'](true)));
      const refs = [0, 1, 2].map((i) => ({ table: 'todos', rowId: `c${i}` }));
      expect(await open(table).loadRows(refs)).toEqual(await model.loadRows(refs));
    });

    // The write units are those of the buffer's requests, the same over either client; the meter counts them on an SDK client.
    it.runIf(impl === 'sdk')('costs at most 300 write units per 1,000 hot-row updates of ~200 bytes in pushes of 100', async () => {
      const results = await measureWcu(sdkClient, [
        { name: 'inserts, distinct rows, pushes of 100', deltas: 1000, push: 100 },
        { name: 'updates, 50 hot rows, pushes of 100', deltas: 1000, push: 100, hotRows: 50 },
      ]);
      console.log(formatWcu(results));
      const [inserts, updates] = results;
      // Every new row is its own row item (1 WCU): about 1,200 per 1,000 (the old design: ~5,400).
      expect(inserts?.total).toBeLessThanOrEqual(1_300);
      expect(updates?.total).toBeLessThanOrEqual(300);
      expect(updates?.baseline).toBe(1000);
    });

    it('the engine over two buffers (two Lambdas) answers pushes and pulls exactly as over the memory buffer', async () => {
      const table = await freshTable();
      const schema: Schema = {
        version: 1,
        tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'team', type: 'string' }] }],
      };
      const rules = { buckets: [{ name: 'team', tables: { todos: [{ column: 'team', op: 'eq' as const, value: { claim: 'team' } }] } }] };
      const T0 = 1_700_000_000_000;
      const make = (buffer: DeltaBuffer): Gateway => new Gateway({ buffer, schema, rules, clock: new HybridLogicalClock({ wallClock: () => T0 }) });
      const lambdas = [0, 1].map(() => make(new DynamoDbBuffer({ client: client(), table, materializeEvery: 5 })));
      const reference = make(new MemoryBuffer());
      const who = (c: string, team: string, admin = false) => ({ clientId: c, userId: c, claims: { sub: c, team }, admin });
      const people = [who('ann', 'red'), who('bob', 'blue')];
      const admin = who('ops', 'none', true);
      // Each Lambda has its own clock: compare everything but the server's hlc.
      const noClock = <T extends { serverHlc: bigint }>(r: T): Omit<T, 'serverHlc'> => {
        const { serverHlc: _, ...rest } = r;
        return rest;
      };
      let tick = 0;
      const pushes: { p: ReturnType<typeof who>; deltas: Delta[] }[] = [];
      for (let i = 0; i < 30; i++) {
        // ann and bob write rows of their team; ops moves shared rows between teams (enter, evict).
        const p = i % 3 === 2 ? admin : (people[i % 3] as ReturnType<typeof who>);
        const deltas = Array.from({ length: 1 + (i % 4) }, (_, j) => {
          tick += 1;
          const rowId = p.admin ? `s${(i + j) % 4}` : `${p.clientId}${(i + j) % 5}`;
          const op = i < 9 ? 'insert' : i % 7 === 0 ? 'delete' : 'update';
          const team = p.admin ? ((i + j) % 2 === 0 ? 'red' : 'blue') : (p.claims.team as string);
          const columns = op === 'delete' ? {} : { title: `v${i}.${j}`, team };
          return makeDelta({ table: 'todos', rowId, op, columns, hlc: encodeHlc(T0 - 1000, tick), clientId: p.clientId });
        });
        pushes.push({ p, deltas });
      }
      // Every push once, some twice (a client retry through the other Lambda).
      for (const [i, { p, deltas }] of pushes.entries()) {
        for (const g of i % 5 === 0 ? [0, 1] : [i % 2]) {
          const input = { clientId: p.clientId, schemaVersion: 1, deltas };
          const want = await reference.push(p, input).then(noClock, (e: unknown) => e);
          const got = await (lambdas[g] as Gateway).push(p, input).then(noClock, (e: unknown) => e);
          expect(got).toEqual(want);
        }
      }
      let changes = 0;
      for (const p of people) {
        for (const g of lambdas) {
          for (const limit of [3, 100]) {
            let cursor = '';
            for (;;) {
              const want = await reference.pull(p, { cursor, limit });
              const got = await g.pull(p, { cursor, limit });
              expect(noClock(got)).toEqual(noClock(want));
              changes += got.changes.length;
              cursor = got.nextCursor;
              if (!got.hasMore) break;
            }
          }
        }
      }
      expect(changes).toBeGreaterThan(40);
    });

    it('concurrent pushes to the same hot rows through four Lambdas: every delta once, rows equal to the merge of all', async () => {
      const table = await freshTable();
      const schema: Schema = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] };
      const T0 = 1_700_000_000_000;
      const lambdas = [0, 1, 2, 3].map(
        () =>
          new Gateway({
            buffer: new DynamoDbBuffer({ client: serialized(client()), table, materializeEvery: 6 }),
            schema,
            rules: null,
            clock: new HybridLogicalClock({ wallClock: () => T0 }),
            // Four pushers on three rows, one request at a time (moto): far more contention than the default allows for.
            maxAppendAttempts: 200,
          }),
      );
      const clients = ['c0', 'c1', 'c2', 'c3'];
      const all: Delta[] = [];
      await Promise.all(
        clients.map(async (c, k) => {
          for (let i = 0; i < 8; i++) {
            const deltas = [0, 1].map((j) =>
              makeDelta({ table: 'todos', rowId: `hot${(i + j + k) % 3}`, op: i === 0 ? 'insert' : 'update', columns: { title: `${c}.${i}.${j}` }, hlc: encodeHlc(T0 - 1000, 10 * i + j + 1), clientId: c }),
            );
            all.push(...deltas);
            const p = { clientId: c, userId: c, claims: { sub: c }, admin: true };
            const r = await (lambdas[(i + k) % 4] as Gateway).push(p, { clientId: c, schemaVersion: 1, deltas });
            expect(r.accepted).toBe(2);
          }
        }),
      );
      const b = open(table);
      const page = await b.read(0n, 1000);
      expect(page.entries.map((e) => e.seq)).toEqual(all.map((_, i) => BigInt(i + 1)));
      expect(new Set(page.entries.map((e) => e.delta.deltaId))).toEqual(new Set(all.map((d) => d.deltaId)));
      const refs = [0, 1, 2].map((i) => ({ table: 'todos', rowId: `hot${i}` }));
      const rows = await b.loadRows(refs);
      const merged = refs.map((r) => all.filter((d) => d.rowId === r.rowId).reduce<RowState | undefined>((s, d) => applyDelta(s, d), undefined));
      expect(rows.map((r) => r?.state)).toEqual(merged);
    });
  });

  /** Found by review: TTL gaps, transaction conflicts on plain puts, partly stubbed appends. */
  describe(`DynamoDB buffer, review findings (${impl})`, () => {
    const logKey = (seq: number): Record<string, AttributeValue> => ({ pk: { S: 'L#0' }, sk: { S: String(seq).padStart(20, '0') } });
    const expire = async (table: string, seqs: number[]): Promise<void> => {
      const c = sdkClient();
      for (const s of seqs) await c.send(new DeleteItemCommand({ TableName: table, Key: logKey(s) })); // as TTL would
    };

    it('TTL: a buffer idle past the TTL whose cached tail ends before expired items never reuses a seq', async () => {
      const table = await freshTable();
      const idle = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl' });
      const busy = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl' });
      expect(await idle.append([draft(delta('a', 'x1', 'x'))], [])).toEqual({ ok: true, lastSeq: 1n });
      for (let i = 2; i <= 5; i++) expect((await busy.append([draft(delta('b', `y${i}`, 'y'))], [])).ok).toBe(true);
      await busy.markFlushed(5n);
      await busy.trim(5n); // TTL mode: only raises the floor (and materializes)
      await expire(table, [2, 3]); // the oldest items expire first; 4 and 5 are still there
      const mine = delta('a', 'x2', 'x');
      expect(await idle.append([draft(mine)], [])).toEqual({ ok: true, lastSeq: 6n });
      expect((await busy.read(5n, 10)).entries.map((e) => [e.seq, e.delta.deltaId])).toEqual([[6n, mine.deltaId]]);
      expect(await busy.append([draft(delta('b', 'y6', 'y'))], [])).toEqual({ ok: true, lastSeq: 7n });
    });

    it('TTL: a gap left by expired items that were never indexed is stepped over, not filled', async () => {
      const table = await freshTable();
      const idle = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl', materializeEvery: 1000 });
      const busy = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl', materializeEvery: 1000 });
      expect(await idle.append([draft(delta('a', 'g1', 'x'))], [])).toEqual({ ok: true, lastSeq: 1n });
      for (let i = 2; i <= 5; i++) expect((await busy.append([draft(delta('b', `g${i}`, 'y'))], [])).ok).toBe(true);
      await expire(table, [1, 2, 3]); // ix is still 0: the gap lies in the tail itself
      expect(await idle.append([draft(delta('a', 'g6', 'x'))], [])).toEqual({ ok: true, lastSeq: 6n });
      expect(await open(table).append([draft(delta('c', 'g7', 'x'))], [])).toEqual({ ok: true, lastSeq: 7n });
    });

    it('TTL: when every item after its view expired, a buffer with an old view still goes past the flushed mark', async () => {
      const table = await freshTable();
      const idle = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl', ttlSeconds: 86_400 });
      const busy = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl', ttlSeconds: 86_400 });
      expect(await idle.append([draft(delta('a', 'h1', 'x'))], [])).toEqual({ ok: true, lastSeq: 1n });
      for (let i = 2; i <= 5; i++) expect((await busy.append([draft(delta('b', `h${i}`, 'y'))], [])).ok).toBe(true);
      await busy.markFlushed(5n);
      await expire(table, [2, 3, 4, 5]);
      idle['metaReadAt'] = Date.now() - 86_400_000; // idle for a day (this test cannot wait that long)
      expect(await idle.append([draft(delta('a', 'h6', 'x'))], [])).toEqual({ ok: true, lastSeq: 6n });
    });

    it('TTL: trim raises the floor over flushed items that expire soon, even inside the retention window', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl', ttlSeconds: 86_400 });
      for (let i = 1; i <= 5; i++) expect((await b.append([draft(delta('a', `e${i}`, 'x'))], [])).ok).toBe(true);
      await b.markFlushed(4n);
      // Items 1-3 were appended long ago: they expire within the hour, 4 and 5 in a day.
      const soon = Math.floor(Date.now() / 1000) + 3600;
      for (const seq of [1, 2, 3]) {
        await sdkClient().send(
          new UpdateItemCommand({ TableName: table, Key: logKey(seq), UpdateExpression: 'SET #t = :t', ExpressionAttributeNames: { '#t': 'ttl' }, ExpressionAttributeValues: { ':t': { N: String(soon) } } }),
        );
      }
      await b.trim(0n); // the retention window alone would keep everything
      expect(await b.floor()).toBe(3n);
      // Not past the flushed mark, however soon items expire.
      for (const seq of [4, 5]) {
        await sdkClient().send(
          new UpdateItemCommand({ TableName: table, Key: logKey(seq), UpdateExpression: 'SET #t = :t', ExpressionAttributeNames: { '#t': 'ttl' }, ExpressionAttributeValues: { ':t': { N: String(soon) } } }),
        );
      }
      await b.trim(0n);
      expect(await b.floor()).toBe(4n);
      expect((await b.read(4n, 10)).entries.map((e) => e.seq)).toEqual([5n]);
    });

    it('a put whose answer was lost, then indexed by another Lambda before the retry, is still ok', async () => {
      const table = await freshTable();
      // A tail longer than 2 x materializeEvery: this buffer reads meta (ix) afresh on each attempt.
      for (let i = 0; i < 3; i++) expect((await open(table).append([draft(delta('pre', `pre-${i}`, 'x'))], [])).ok).toBe(true);
      const b = new DynamoDbBuffer({ client: client(), table, materializeEvery: 1, materializeOnAppend: false });
      const indexer = new DynamoDbBuffer({ client: client(), table, materializeEvery: 1 });
      let puts = 0;
      intercept(b, async (send, op, input) => {
        if (op === 'PutItem' && input.Item?.pk?.S === 'L#0' && puts++ === 0) {
          await send(op, input); // written, but the answer is lost ...
          await indexer.materializeIndex(); // ... and indexed before the SDK sends it again
        }
        return send(op, input);
      });
      const ds = Array.from({ length: 3 }, (_, i) => delta('lost2', `m-${i}`, 'x'));
      expect(await b.append(ds.map(draft), [])).toEqual({ ok: true, lastSeq: 6n });
      expect((await b.read(3n, 100)).entries.map((e) => e.delta)).toEqual(ds);
      // A real re-send of the same deltas (a new token) is still a conflict.
      expect((await open(table).append(ds.map(draft), [])).ok).toBe(false);
    });

    it('refuses an append whose merged row would not fit in a row item, so materialization and trim never block', async () => {
      const table = await freshTable();
      const b = open(table);
      let state: RowState | undefined;
      let version = 0;
      const push = (i: number): Promise<unknown> => {
        n += 1;
        const d = makeDelta({ table: 'todos', rowId: 'fat', op: i === 0 ? 'insert' : 'update', columns: { [`c${i}`]: 'x'.repeat(100_000) }, hlc: BigInt(9_000_000 + n), clientId: 'fat' });
        const next = applyDelta(state, d);
        return b.append([draft(d)], [{ state: next, expectedVersion: version }]).then((r) => {
          state = next;
          version += 1;
          return r;
        });
      };
      for (let i = 0; i < 3; i++) expect(await push(i)).toEqual({ ok: true, lastSeq: BigInt(i + 1) });
      const err = await push(3).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LakeSyncError);
      expect((err as LakeSyncError).code).toBe('BODY_TOO_LARGE');
      expect(await b.head()).toBe(3n);
      await b.markFlushed(3n);
      await b.trim(3n); // materializes the 300 KB row
      expect((await open(table).loadRows([{ table: 'todos', rowId: 'fat' }]))[0]).toEqual({ state, version: 3 });
    });

    it('a put that meets a transaction in flight on its key (TransactionConflictException) reads again and retries', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table });
      let conflicts = 0;
      intercept(b, async (send, op, input) => {
        if (op === 'PutItem' && input.Item?.pk?.S === 'L#0' && conflicts++ === 0) {
          throw Object.assign(new Error('Transaction is ongoing for the item'), { name: 'TransactionConflictException' });
        }
        return send(op, input);
      });
      expect(await b.append([draft(delta('tc', 't1', 'x'))], [])).toEqual({ ok: true, lastSeq: 1n });
      expect(conflicts).toBe(2);
    });

    it('an append whose items were only partly stubbed by a trim reads as trimmed, whole', async () => {
      const table = await freshTable();
      const old = open(table);
      expect(await old.head()).toBe(0n); // caches ix = 0
      const b = new DynamoDbBuffer({ client: client(), table });
      const big = 'v'.repeat(2048);
      const ds = Array.from({ length: 1000 }, (_, i) => delta('part', `p-${i}`, `${i}:${big}`));
      expect(await b.append(ds.map(draft), [])).toEqual({ ok: true, lastSeq: 1000n });
      await b.markFlushed(1000n);
      // The trim's Lambda dies while stubbing: every item but the first lost its body.
      const inFlight: Promise<unknown>[] = [];
      intercept(b, async (send, op, input) => {
        if (op === 'UpdateItem' && input.Key?.pk?.S === 'L#0' && input.Key.sk?.S === logKey(1).sk?.S) throw new Error('the Lambda died');
        const sent = send(op, input);
        inFlight.push(sent);
        return sent;
      });
      await expect(b.trim(1000n)).rejects.toThrow('the Lambda died');
      // The other stubs were sent alongside the failed one: let them land before looking.
      await Promise.allSettled(inFlight);
      const raw = await sdkClient().send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: 'L#0' } } }));
      expect((raw.Items ?? []).map((i) => i.b === undefined)).toEqual([false, ...Array.from({ length: (raw.Items?.length ?? 1) - 1 }, () => true)]);
      expect(await open(table).read(0n, 10)).toEqual({ entries: [], lastSeq: 0n, hasMore: false });
      expect(await old.existing('part', [ds[0]?.hlc as bigint, ds[999]?.hlc as bigint])).toEqual([FORGOTTEN, FORGOTTEN]);
      expect(await old.append([draft(delta('part', 'after', 'x'))], [])).toEqual({ ok: true, lastSeq: 1001n });
    });
  });

  /** Found by the second review (rev-ddb). */
  describe(`DynamoDB buffer, second review (${impl})`, () => {
    it('a trim whose cap falls inside a multi-item append never hides the part above the floor', async () => {
      const table = await freshTable();
      const b = open(table);
      const big = 'v'.repeat(2048);
      const ds = Array.from({ length: 1000 }, (_, i) => delta('mid', `mid-${i}`, `${i}:${big}`));
      expect(await b.append(ds.map(draft), [])).toEqual({ ok: true, lastSeq: 1000n });
      await b.markFlushed(1000n);
      await b.trim(700n); // the retention window ends inside the append (head - retain)
      const floor = await b.floor();
      const pulled: bigint[] = [];
      for (let c = floor; ; ) {
        const page = await open(table).read(c, 10_000);
        pulled.push(...page.entries.map((e) => e.seq));
        c = page.lastSeq;
        if (!page.hasMore) break;
      }
      // Every entry above the floor is still pulled.
      expect(pulled).toEqual(Array.from({ length: 1000 - Number(floor) }, (_, i) => floor + 1n + BigInt(i)));
    });

    it('refuses a single delta too large for one log item with BODY_TOO_LARGE (the client sets it aside), not a plain error (a 500 it retries for ever)', async () => {
      const table = await freshTable();
      const b = open(table);
      const d = delta('huge', 'huge', 'x'.repeat(360_000));
      const err = await b.append([draft(d)], []).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LakeSyncError);
      expect((err as LakeSyncError).code).toBe('BODY_TOO_LARGE');
      expect(await b.head()).toBe(0n);
    });

    it('TTL: items that expired before they were flushed are lost, but reads (the flush, pulls) go on past them', async () => {
      const table = await freshTable();
      const b = new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl' });
      const ds = Array.from({ length: 5 }, (_, i) => delta('late', `late-${i}`, 'x'));
      for (const d of ds) expect((await b.append([draft(d)], [])).ok).toBe(true);
      // The flush was down longer than the TTL: items 2 and 3 expired unflushed.
      const c = sdkClient();
      for (const seq of [2, 3]) {
        await c.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'L#0' }, sk: { S: String(seq).padStart(20, '0') } } }));
      }
      const seen: bigint[] = [];
      for (let cursor = 0n, i = 0; i < 10; i++) {
        const page = await new DynamoDbBuffer({ client: client(), table, ttlAttribute: 'ttl' }).read(cursor, 1);
        seen.push(...page.entries.map((e) => e.seq));
        cursor = page.lastSeq;
        if (!page.hasMore) break;
      }
      // Not stuck at 1 for ever (the flush would never move again, nor the floor, nor any pull).
      expect(seen).toEqual([1n, 4n, 5n]);
    });
  });

}

for (const impl of ['sdk', 'fetch'] as const) suite(impl);
