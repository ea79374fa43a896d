import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryBuffer } from '../adapters/memory-buffer.ts';
import type { Principal } from '../auth/principal.ts';
import { makeDelta, type Delta, type Op } from '../delta.ts';
import { HybridLogicalClock, encodeHlc } from '../hlc.ts';
import { applyDelta, emptyRow, mergeRows, visibleValues, type RowState } from '../merge.ts';
import type { SyncRules } from '../rules.ts';
import type { Schema } from '../schema.ts';
import type { ColumnValue } from '../values.ts';
import { Gateway, type Change } from './gateway.ts';
import type { AppendResult, DeltaBuffer, LogEntryDraft, RowWrite } from './ports.ts';
import { BufferShards, anyAbove, distance, encodeCursor, parseCursor } from './shards.ts';

// With 3 shards, todos and notes hash to different shards (2 and 1); asserted below.
const schema: Schema = {
  version: 1,
  tables: [
    { name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }] },
    { name: 'notes', columns: [{ name: 'body', type: 'string' }, { name: 'owner', type: 'string' }] },
  ],
};
const TABLES = ['todos', 'notes'] as const;
const OWNER_RULES: SyncRules = {
  buckets: [
    { name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }], notes: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } },
  ],
};
const T0 = 1_700_000_000_000;

function who(clientId: string, claims: Record<string, unknown> = {}): Principal {
  return { clientId, userId: clientId, claims: { sub: clientId, ...claims }, admin: false };
}

function sharded(n: number, rules: SyncRules | null = null, wrap?: (b: MemoryBuffer, k: number) => DeltaBuffer): { g: Gateway; shards: BufferShards } {
  const shards = new BufferShards(Array.from({ length: n }, (_, k) => (wrap ? wrap(new MemoryBuffer(), k) : new MemoryBuffer())));
  return { g: new Gateway({ buffer: shards, schema, rules, clock: new HybridLogicalClock({ wallClock: () => T0 }) }), shards };
}

/** The buffer, with `hook` run (and awaited) before each append. */
function beforeAppend(b: MemoryBuffer, hook: () => void | Promise<void>): DeltaBuffer {
  return new Proxy(b, {
    get(target, prop, receiver) {
      if (prop !== 'append') return Reflect.get(target, prop, receiver) as unknown;
      return async (entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> => {
        await hook();
        return target.append(entries, rows);
      };
    },
  });
}

let tick = 0;
function d(clientId: string, op: Op, table: string, rowId: string, columns: Record<string, ColumnValue> = {}): Delta {
  tick += 1;
  return makeDelta({ table, rowId, op, columns, hlc: encodeHlc(T0, tick), clientId });
}

async function pullAll(g: Gateway, p: Principal, cursor = '', limit = 1000): Promise<{ changes: Change[]; cursor: string }> {
  const changes: Change[] = [];
  for (;;) {
    const page = await g.pull(p, { cursor, limit });
    changes.push(...page.changes);
    cursor = page.nextCursor;
    if (!page.hasMore) return { changes, cursor };
  }
}

function apply(rows: Map<string, RowState>, c: Change): void {
  if (c.kind === 'delta') {
    const key = `${c.delta.table}/${c.delta.rowId}`;
    rows.set(key, applyDelta(rows.get(key), c.delta));
  } else if (c.kind === 'evict') rows.delete(`${c.table}/${c.rowId}`);
  else {
    const key = `${c.row.table}/${c.row.rowId}`;
    rows.set(key, mergeRows(rows.get(key) ?? emptyRow(c.row.table, c.row.rowId), c.row));
  }
}

function visible(rows: Map<string, RowState>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of [...rows].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const v = visibleValues(s);
    if (v !== null) out[k] = { ...v };
  }
  return out;
}

describe('cursors over shards', () => {
  it('encode one seq per shard; one shard looks like the plain seq', () => {
    expect(encodeCursor([42n])).toBe('42');
    expect(encodeCursor([1n, 0n, 7n])).toBe('1.0.7');
    expect(parseCursor('', 3)).toEqual([0n, 0n, 0n]);
    expect(parseCursor('1.0.7', 3)).toEqual([1n, 0n, 7n]);
    expect(anyAbove([1n, 5n], [2n, 4n])).toBe(true);
    expect(anyAbove([1n, 4n], [2n, 4n])).toBe(false);
    expect(distance([10n, 3n], [4n, 5n])).toBe(6n);
  });

  it.each(['1.2', '1.2.3.4', 'x', '1..2', '-1.0.0', '1.2.', '12345678901234567890.0.0'])('refuses %j for 3 shards with INVALID_CURSOR', (c) => {
    expect(() => parseCursor(c, 3)).toThrow(expect.objectContaining({ code: 'INVALID_CURSOR' }));
  });

  it('a table always goes to the same shard, and the test tables to different ones', () => {
    const { shards } = sharded(3);
    expect(shards.shardOf('todos')).toBe(2);
    expect(shards.shardOf('notes')).toBe(1);
    expect(new BufferShards([new MemoryBuffer()]).shardOf('todos')).toBe(0);
  });
});

describe('Gateway over shards', () => {
  it('writes each table to its shard, pulls all of them, and refuses cursors of another shard count', async () => {
    const { g, shards } = sharded(3);
    const a = who('a');
    const r = await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'todos', 't1', { title: 'x' }), d('a', 'insert', 'notes', 'n1', { body: 'y' }), d('a', 'insert', 'todos', 't2')] });
    expect(r).toMatchObject({ accepted: 3, duplicates: 0, cursor: '0.1.2' });
    expect(await shards.heads()).toEqual([0n, 1n, 2n]);
    expect(await g.head()).toBe('0.1.2');
    const all = await pullAll(g, who('b'));
    expect(all.cursor).toBe('0.1.2');
    expect(all.changes.map((c) => (c.kind === 'delta' ? `${c.delta.table}/${c.delta.rowId}` : c.kind)).sort()).toEqual(['notes/n1', 'todos/t1', 'todos/t2']);
    await expect(g.pull(a, { cursor: '2' })).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
    await expect(g.pull(a, { cursor: '0.2.0' })).rejects.toMatchObject({ code: 'INVALID_CURSOR' }); // ahead in one shard
    // The same push again: every delta is found by stamp in its own shard.
    const again = await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'notes', 'n2')] });
    expect(again.cursor).toBe('0.2.0');
  });

  it('a retried push across shards is deduplicated per shard', async () => {
    const { g, shards } = sharded(3);
    const a = who('a');
    const batch = [d('a', 'insert', 'todos', 't1'), d('a', 'insert', 'notes', 'n1'), d('a', 'update', 'todos', 't1', { title: 'z' })];
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch });
    expect(await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch })).toMatchObject({ accepted: 0, duplicates: 3 });
    expect(await shards.heads()).toEqual([0n, 1n, 2n]);
  });

  it('a push whose second shard fails keeps the first shard written; the retry appends only the rest', async () => {
    let failNotes = true;
    const { g, shards } = sharded(3, null, (b, k) =>
      k !== 1
        ? b
        : beforeAppend(b, () => {
            if (failNotes) throw new Error('shard 1 unavailable');
          }),
    );
    const a = who('a');
    const batch = [d('a', 'insert', 'todos', 't1'), d('a', 'insert', 'notes', 'n1'), d('a', 'insert', 'todos', 't2')];
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch })).rejects.toThrow(/unavailable/);
    expect(await shards.heads()).toEqual([0n, 0n, 2n]);
    failNotes = false;
    expect(await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch })).toMatchObject({ accepted: 1, duplicates: 2 });
    expect(await shards.heads()).toEqual([0n, 1n, 2n]);
    expect((await pullAll(g, a)).changes).toHaveLength(3);
  });

  it('a push whose second shard fails still reports the first shard\'s appended entries (live pokes), and the retry the rest', async () => {
    let failNotes = true;
    let release: () => void = () => {};
    const slowTodos = new Promise<void>((r) => (release = r));
    const appended: string[][] = [];
    const shards = new BufferShards(
      Array.from({ length: 3 }, (_, k) => {
        const b = new MemoryBuffer();
        if (k === 1) return beforeAppend(b, () => (failNotes ? Promise.reject(new Error('shard 1 unavailable')) : undefined));
        // The todos shard appends after the notes shard failed.
        if (k === 2) return beforeAppend(b, () => slowTodos);
        return b;
      }),
    );
    const g = new Gateway({ buffer: shards, schema, rules: null, clock: new HybridLogicalClock({ wallClock: () => T0 }), onAppend: (e) => appended.push(e.map((x) => x.delta.rowId)) });
    const a = who('a');
    const batch = [d('a', 'insert', 'todos', 't1'), d('a', 'insert', 'notes', 'n1'), d('a', 'insert', 'todos', 't2')];
    const pushed = g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch });
    setTimeout(release, 10);
    await expect(pushed).rejects.toThrow(/unavailable/);
    expect(await shards.heads()).toEqual([0n, 0n, 2n]);
    expect(appended).toEqual([['t1', 't2']]);
    failNotes = false;
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch });
    expect(appended).toEqual([['t1', 't2'], ['n1']]);
  });

  it('a delta the rules refuse in one shard writes nothing in any shard', async () => {
    const { g, shards } = sharded(3, OWNER_RULES);
    const a = who('a');
    const push = g.push(a, {
      clientId: 'a',
      schemaVersion: 1,
      deltas: [d('a', 'insert', 'todos', 't1', { owner: 'a' }), d('a', 'insert', 'notes', 'n1', { owner: 'someone-else' })],
    });
    await expect(push).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    expect(await shards.heads()).toEqual([0n, 0n, 0n]);
  });

  it("an insert over another client's row in one shard is refused before the other shard is written (no guessing across shards)", async () => {
    const { g, shards } = sharded(3, OWNER_RULES);
    await g.push(who('b'), { clientId: 'b', schemaVersion: 1, deltas: [d('b', 'insert', 'notes', 'n1', { owner: 'b' })] });
    const push = g.push(who('a'), { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'todos', 't1', { owner: 'a' }), d('a', 'insert', 'notes', 'n1', { owner: 'a' })] });
    await expect(push).rejects.toMatchObject({ code: 'RULE_VIOLATION', deltaIndex: 1 });
    expect(await shards.heads()).toEqual([0n, 1n, 0n]);
  });

  it('across shards, a reused stamp is reported before a rule refusal, whichever shard answers first', async () => {
    const { g } = sharded(3, OWNER_RULES);
    const a = who('a');
    const first = d('a', 'insert', 'todos', 't1', { owner: 'a' });
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [first] });
    const reused = makeDelta({ table: 'todos', rowId: 't2', op: 'insert', columns: { owner: 'a' }, hlc: first.hlc, clientId: 'a' });
    const refused = d('a', 'insert', 'notes', 'n1', { owner: 'someone-else' });
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [refused, reused] })).rejects.toMatchObject({ code: 'STAMP_REUSED' });
  });

  it('a stalled shard does not hold up pushes and pulls of tables in other shards', async () => {
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    const { g } = sharded(3, null, (b, k) => (k !== 2 ? b : beforeAppend(b, () => stalled)));
    const hot = g.push(who('a'), { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'todos', 't1')] });
    // todos (shard 2) is stuck; notes (shard 1) goes through meanwhile.
    expect(await g.push(who('b'), { clientId: 'b', schemaVersion: 1, deltas: [d('b', 'insert', 'notes', 'n1')] })).toMatchObject({ accepted: 1 });
    const page = await g.pull(who('c'), { cursor: '' });
    expect(page.changes.map((c) => (c.kind === 'delta' ? c.delta.rowId : c.kind))).toEqual(['n1']);
    release();
    expect(await hot).toMatchObject({ accepted: 1 });
    expect((await g.pull(who('c'), { cursor: page.nextCursor })).changes).toHaveLength(1);
  });

  it('CURSOR_EXPIRED when any shard trimmed past the cursor', async () => {
    const { g, shards } = sharded(3);
    const a = who('a');
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'todos', 't1'), d('a', 'insert', 'notes', 'n1'), d('a', 'insert', 'notes', 'n2')] });
    const notes = shards.buffers[1] as MemoryBuffer;
    await notes.markFlushed(1n);
    await notes.trim(1n);
    await expect(g.pull(a, { cursor: '' })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
    expect((await g.pull(a, { cursor: '0.1.0' })).changes).toHaveLength(2);
  });

  it('shares the pull limit between shards and gives what a short shard leaves to the others', async () => {
    const { g } = sharded(3);
    const a = who('a');
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [1, 2, 3, 4, 5, 6].map((i) => d('a', 'insert', 'todos', `t${i}`)) });
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'notes', 'n1')] });
    const page = await g.pull(a, { cursor: '', limit: 4 });
    expect(page.changes).toHaveLength(4); // 1 note + 3 todos (2 in the first round, 1 left over by notes)
    expect(page.hasMore).toBe(true);
    const rest = await g.pull(a, { cursor: page.nextCursor, limit: 4 });
    expect(rest.changes).toHaveLength(3);
    expect(rest.hasMore).toBe(false);
  });

  it('property: clients pulling with any limits converge to the server rows, which equal a one-shard gateway fed the same pushes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            client: fc.integer({ min: 0, max: 2 }),
            deltas: fc.array(
              fc.record({
                table: fc.constantFrom(...TABLES),
                row: fc.constantFrom('r0', 'r1', 'r2'),
                op: fc.constantFrom<Op>('insert', 'update', 'delete'),
                text: fc.string({ maxLength: 2 }),
              }),
              { minLength: 1, maxLength: 4 },
            ),
            pullLimit: fc.integer({ min: 1, max: 5 }),
            pullAfter: fc.boolean(),
          }),
          { maxLength: 25 },
        ),
        fc.integer({ min: 2, max: 4 }),
        async (pushes, shardCount) => {
          const { g } = sharded(shardCount);
          const single = sharded(1).g;
          const clients = ['c0', 'c1', 'c2'];
          const replicas = clients.map(() => new Map<string, RowState>());
          const cursors = clients.map(() => '');
          const pull = async (i: number, limit: number) => {
            for (;;) {
              const page = await g.pull(who(clients[i] as string), { cursor: cursors[i] as string, limit });
              for (const c of page.changes) apply(replicas[i] as Map<string, RowState>, c);
              cursors[i] = page.nextCursor;
              if (!page.hasMore) return;
            }
          };
          for (const p of pushes) {
            const id = clients[p.client] as string;
            const deltas = p.deltas.map((x) => d(id, x.op, x.table, x.row, x.op === 'delete' ? {} : x.table === 'todos' ? { title: x.text } : { body: x.text }));
            const input = { clientId: id, schemaVersion: 1, deltas };
            const [a, b] = [await g.push(who(id), input), await single.push(who(id), input)];
            expect(a.accepted).toBe(b.accepted);
            if (p.pullAfter) await pull(p.client, p.pullLimit);
          }
          const truth = new Map<string, RowState>();
          for (const c of (await pullAll(single, who('x'))).changes) apply(truth, c);
          for (let i = 0; i < clients.length; i++) {
            await pull(i, 3);
            expect(visible(replicas[i] as Map<string, RowState>)).toEqual(visible(truth));
          }
          // And the server's merged rows agree with the one-shard gateway.
          for (const table of TABLES) {
            for (const row of ['r0', 'r1', 'r2']) {
              const got = await g.getRow({ ...who('x'), admin: true }, table, row).catch(() => null);
              const want = await single.getRow({ ...who('x'), admin: true }, table, row).catch(() => null);
              expect(got).toEqual(want);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('pull answers bounded in bytes (AWS Lambda returns at most 6 MB)', () => {
  it.each([1, 3])('%i shard(s): large deltas come in several answers under the limit, each once, in order per shard', async (n) => {
    const shards = new BufferShards(Array.from({ length: n }, () => new MemoryBuffer()));
    const maxPullBytes = 64 * 1024;
    const g = new Gateway({ buffer: shards, schema, rules: null, clock: new HybridLogicalClock({ wallClock: () => T0 }), limits: { maxPullBytes } });
    const writer = who('w');
    const big = 'x'.repeat(5000);
    const valid: Delta[] = [];
    for (let i = 0; i < 60; i++) valid.push(i % 2 === 0 ? d('w', 'insert', 'todos', `r${i}`, { title: big, owner: 'w' }) : d('w', 'insert', 'notes', `r${i}`, { body: big, owner: 'w' }));
    await g.push(writer, { clientId: 'w', schemaVersion: 1, deltas: valid });
    let cursor = '';
    const got: Delta[] = [];
    let answers = 0;
    for (;;) {
      const page = await g.pull(who('r'), { cursor, limit: 5000 });
      answers++;
      const size = new TextEncoder().encode(JSON.stringify(page.changes, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).length;
      expect(size).toBeLessThanOrEqual(maxPullBytes);
      for (const c of page.changes) if (c.kind === 'delta') got.push(c.delta);
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    expect(answers).toBeGreaterThan(3);
    expect(got.map((x) => x.deltaId).sort()).toEqual(valid.map((x) => x.deltaId).sort());
    for (const t of TABLES) expect(got.filter((x) => x.table === t).map((x) => x.rowId)).toEqual(valid.filter((x) => x.table === t).map((x) => x.rowId));
    // A single change larger than the limit still goes (alone), so a pull always moves on.
    const huge = makeDelta({ table: 'todos', rowId: 'huge', op: 'insert', columns: { title: 'y'.repeat(100_000), owner: 'w' }, hlc: encodeHlc(T0 + 1, 0), clientId: 'w' });
    await g.push(writer, { clientId: 'w', schemaVersion: 1, deltas: [huge] });
    const page = await g.pull(who('r'), { cursor, limit: 5000 });
    expect(page.changes.map((c) => (c.kind === 'delta' ? c.delta.rowId : c.kind))).toEqual(['huge']);
  });

  it('property: with rules (rows entering and leaving views), pages cut by bytes at any limit neither skip nor repeat a delta, over 1 to 3 shards', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            client: fc.constantFrom('a', 'b'),
            table: fc.constantFrom(...TABLES),
            row: fc.constantFrom('r0', 'r1', 'r2'),
            op: fc.constantFrom<Op>('insert', 'update', 'delete'),
            owner: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
            size: fc.integer({ min: 0, max: 600 }),
            pull: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 200, max: 2000 }),
        fc.integer({ min: 1, max: 10 }),
        async (ops, n, maxPullBytes, limit) => {
          const shards = new BufferShards(Array.from({ length: n }, () => new MemoryBuffer()));
          const clock = new HybridLogicalClock({ wallClock: () => T0 });
          const g = new Gateway({ buffer: shards, schema, rules: OWNER_RULES, clock, limits: { maxPullBytes } });
          const unbounded = new Gateway({ buffer: shards, schema, rules: OWNER_RULES, clock });
          const replicas = { a: new Map<string, RowState>(), b: new Map<string, RowState>() };
          const cursors = { a: '', b: '' };
          const seen = new Set<string>();
          const pull = async (c: 'a' | 'b'): Promise<void> => {
            for (;;) {
              const page = await g.pull(who(c), { cursor: cursors[c], limit });
              for (const ch of page.changes) {
                apply(replicas[c], ch);
                if (ch.kind !== 'delta') continue;
                expect(seen.has(`${c}/${ch.delta.deltaId}`)).toBe(false);
                seen.add(`${c}/${ch.delta.deltaId}`);
              }
              cursors[c] = page.nextCursor;
              if (!page.hasMore) return;
            }
          };
          for (const o of ops) {
            const columns = o.op === 'delete' ? {} : { [o.table === 'todos' ? 'title' : 'body']: 'x'.repeat(o.size), ...(o.owner === undefined ? {} : { owner: o.owner }) };
            await g.push({ ...who(o.client), admin: true }, { clientId: o.client, schemaVersion: 1, deltas: [d(o.client, o.op, o.table, o.row, columns)] });
            if (o.pull) await pull(o.client);
          }
          for (const c of ['a', 'b'] as const) {
            await pull(c);
            const fresh = new Map<string, RowState>();
            for (const ch of (await pullAll(unbounded, who(c), '', 5000)).changes) apply(fresh, ch);
            expect(visible(replicas[c])).toEqual(visible(fresh));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('pull over shards within the byte budget', () => {
  // gateway.ts readShards: a shard page cut short by maxPullBytes (hasMore, fewer entries than asked)
  // left entry budget over, so every later round read that shard again for another maxPullBytes: up to
  // shards + 1 budgets of large deltas held in memory for one pull that sends at most one.
  it('a shard page cut by its byte budget is not read again in the same pull', async () => {
    const reads: number[] = [];
    const { g, shards } = sharded(3, null, (b, k) =>
      new Proxy(b, {
        get(target, prop, receiver) {
          if (prop !== 'read') return Reflect.get(target, prop, receiver) as unknown;
          // A buffer whose entries are all large: each page stops after one (never before the first).
          return (after: bigint, limit: number, maxBytes?: number) => (reads.push(k), target.read(after, maxBytes === undefined ? limit : Math.min(limit, 1)));
        },
      }),
    );
    const k = shards.shardOf('todos');
    await g.push(who('c1'), { clientId: 'c1', schemaVersion: 1, deltas: Array.from({ length: 10 }, (_, i) => d('c1', 'insert', 'todos', `r${i}`, { title: 'x' })) });
    reads.length = 0;
    const page = await g.pull(who('c2'), { cursor: '', limit: 100 });
    expect(page.changes).toHaveLength(1);
    expect(page.hasMore).toBe(true);
    expect(reads.filter((s) => s === k)).toHaveLength(1);
  });
});
