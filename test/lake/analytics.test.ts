import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeDelta, type Delta } from '../../core/delta.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { encodeHlc, HybridLogicalClock } from '../../core/hlc.ts';
import { asOfSql, parseAsOf } from '../../core/lake/analytics.ts';
import { compactTable } from '../../core/lake/maintenance.ts';
import { CHANGE_SYSTEM_FIELDS } from '../../core/lake/layout.ts';
import type { IcebergSchema } from '../../core/lake/iceberg/types.ts';
import { applyDelta, isLive, visibleValues, type RowState } from '../../core/merge.ts';
import { json, type ColumnValue } from '../../core/values.ts';
import { queryLake } from '../../functions/local/query.ts';
import type { Schema } from '../../core/schema.ts';
import { comparable, deltaMaker, expectedComparable, LAKE_SCHEMA, makeLakeEnv, principal, type LakeEnv } from '../support/lake.ts';

const TODO_COLUMNS = ['title', 'done', 'position', 'score', 'meta'];

/** DuckDB rows in pyiceberg's shape (bigints as text), keyed by row id. */
function rowsOf(rows: Record<string, unknown>[]): Map<string, Record<string, unknown>> {
  const plain = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v])));
  return comparable(plain, TODO_COLUMNS);
}

/** The engine's merge of the pushed deltas stamped at or before `hlc`. */
function expectedAsOf(env: LakeEnv, hlc: bigint): Map<string, Record<string, unknown>> {
  const states = new Map<string, RowState>();
  for (const d of env.pushed) if (d.table === 'todos' && d.hlc <= hlc) states.set(d.rowId, applyDelta(states.get(d.rowId), d));
  const out = new Map<string, Record<string, unknown>>();
  for (const [id, s] of states) {
    const v = visibleValues(s);
    if (v === null) continue;
    out.set(id, Object.fromEntries(TODO_COLUMNS.map((c) => [c, plain(v[c])])));
  }
  return out;
}

function plain(v: ColumnValue | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object') return v.json;
  return v;
}

describe('analytics: SQL over hot and cold data (DuckDB)', () => {
  it('a table is the lake plus the unflushed buffer; its changes are every delta; cold reads only the lake', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const b = deltaMaker('client-b');
    const first: Delta[] = [];
    for (let i = 0; i < 40; i++) first.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, done: false, position: BigInt(i), score: i / 2, meta: json({ i }) }));
    await env.push('client-a', first);
    const lake = env.lake();
    await lake.flush(env.source);
    const coldExpected = expectedComparable(env, 'todos', TODO_COLUMNS);

    // Hot: updates, deletes, a resurrection and new rows that no flush has seen.
    const second: Delta[] = [];
    for (let i = 0; i < 10; i++) second.push(b('todos', `t${i}`, 'update', { title: `edited ${i}`, meta: null }));
    for (let i = 10; i < 15; i++) second.push(b('todos', `t${i}`, 'delete'));
    second.push(b('todos', 't12', 'insert', { title: 'back' }));
    for (let i = 40; i < 45; i++) second.push(b('todos', `t${i}`, 'insert', { title: `new ${i}`, done: true }));
    await env.push('client-b', second);

    const hot = await queryLake(lake, env.buffer, 'SELECT * FROM todos');
    expect(rowsOf(hot.rows)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    const changes = await queryLake(lake, env.buffer, 'SELECT count(*) AS n, count(DISTINCT _delta_id) AS d FROM todos_changes');
    expect(changes.rows[0]).toEqual({ n: 61n, d: 61n });
    const cold = await queryLake(lake, undefined, 'SELECT * FROM todos');
    expect(rowsOf(cold.rows)).toEqual(coldExpected);

    // After the flush (position deletes in the lake) and after compaction the answer is the same.
    await lake.flush(env.source);
    const flushed = await queryLake(lake, env.buffer, 'SELECT * FROM todos');
    expect(rowsOf(flushed.rows)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    expect(rowsOf((await queryLake(lake, undefined, 'SELECT * FROM todos')).rows)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(rowsOf((await queryLake(lake, env.buffer, 'SELECT * FROM todos')).rows)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    // Other tables are views too, empty ones included.
    expect((await queryLake(lake, env.buffer, 'SELECT count(*) AS n FROM notes')).rows).toEqual([{ n: 0n }]);
  });

  it('a flush and trim between reading the lake and reading the buffer neither loses nor repeats a delta', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const batch = (from: number, to: number): Delta[] => {
      const out: Delta[] = [];
      for (let i = from; i < to; i++) out.push(a('todos', `t${i % 25}`, i < 25 ? 'insert' : 'update', { title: `v${i}` }));
      return out;
    };
    await env.push('client-a', batch(0, 30));
    const lake = env.lake();
    await lake.flush(env.source);
    await env.push('client-a', batch(30, 60));
    let raced = 0;
    const racing = {
      read: async (after: bigint, limit: number) => {
        if (raced++ === 0) {
          // The lake was read at the first flush; now the rest lands there and leaves the buffer.
          await lake.flush(env.source);
          await env.buffer.trim(await env.buffer.flushedThrough());
        }
        return env.buffer.read(after, limit);
      },
      loadRows: env.buffer.loadRows.bind(env.buffer),
    };
    const state = await queryLake(lake, racing, 'SELECT * FROM todos');
    expect(rowsOf(state.rows)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    const changes = await queryLake(lake, racing, 'SELECT count(*) AS n, count(DISTINCT _delta_id) AS d FROM todos_changes');
    expect(changes.rows[0]).toEqual({ n: 60n, d: 60n });
    expect(raced).toBeGreaterThan(1); // the first read was thrown away and done again
  });

  it('time travel by HLC: the state made of every delta stamped at or before it, hot or cold', async () => {
    const env = makeLakeEnv();
    const base = Date.now() - 10_000;
    const a = deltaMaker('client-a', base);
    const first: Delta[] = [];
    for (let i = 0; i < 20; i++) first.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, position: BigInt(i) }));
    await env.push('client-a', first);
    const lake = env.lake();
    await lake.flush(env.source);
    const cut = (first.at(-1) as Delta).hlc;
    const b = deltaMaker('client-b', base + 5_000);
    const second: Delta[] = [];
    for (let i = 0; i < 5; i++) second.push(b('todos', `t${i}`, 'update', { title: `later ${i}` }));
    second.push(b('todos', 't7', 'delete'));
    await env.push('client-b', second);

    const before = await queryLake(lake, env.buffer, 'SELECT * FROM todos', { asOf: cut });
    expect(rowsOf(before.rows)).toEqual(expectedAsOf(env, cut));
    expect(before.rows).toHaveLength(20);
    const now = await queryLake(lake, env.buffer, 'SELECT * FROM todos', { asOf: (second.at(-1) as Delta).hlc });
    expect(rowsOf(now.rows)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    // An ISO time means every delta stamped within that millisecond or before.
    expect(parseAsOf(new Date(base + 1).toISOString())).toBe(encodeHlc(base + 1, 0xffff));
    // Without a zone a time is UTC, like a bare date, whatever the machine's zone (Node reads TZ when it changes).
    const tz = process.env['TZ'];
    process.env['TZ'] = 'America/New_York';
    try {
      expect(parseAsOf('2026-11-26T14:00:00')).toBe(parseAsOf('2026-11-26T14:00:00Z'));
      expect(parseAsOf('2026-11-26')).toBe(encodeHlc(Date.UTC(2026, 10, 26), 0xffff));
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
    }
    expect(() => parseAsOf('yesterday')).toThrow(/ISO-8601/);
  });

  it('a column the schema gained reads as null from files written before it, even when no file has it yet', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'x' }), a('todos', 'z', 'insert', { title: 'z' })]);
    await env.lake().flush(env.source);
    await env.push('client-a', [a('todos', 'z', 'update', { title: 'z2' })]);
    await env.lake().flush(env.source); // a position delete too
    // v2 adds todos.due; the next flush (of a notes delta only) evolves every table, so no todos file has due.
    const v2: Schema = { version: 2, tables: LAKE_SCHEMA.tables.map((t) => (t.name === 'todos' ? { ...t, columns: [...t.columns, { name: 'due', type: 'string' }] } : t)) };
    const g2 = new Gateway({ buffer: env.buffer, schema: v2, rules: null, clock: new HybridLogicalClock() });
    await g2.push(principal('client-a'), { clientId: 'client-a', schemaVersion: 2, deltas: [a('notes', 'n', 'insert', { body: 'b' })] });
    const lake = env.lake({ schema: v2 });
    await lake.flush(env.source);
    for (const source of [env.buffer, undefined]) {
      const state = await queryLake(lake, source, 'SELECT _row_id, title, due FROM todos ORDER BY _row_id');
      expect(state.rows).toEqual([{ _row_id: 'x', title: 'x', due: null }, { _row_id: 'z', title: 'z2', due: null }]);
      expect((await queryLake(lake, source, 'SELECT count(*) AS n, count(due) AS d FROM todos_changes')).rows).toEqual([{ n: 3n, d: 0n }]);
    }
  });

  it('tables no flush has created yet, and columns no flush has added yet, read their hot data', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'x' })]);
    expect((await queryLake(env.lake(), env.buffer, 'SELECT _row_id, title FROM todos')).rows).toEqual([{ _row_id: 'x', title: 'x' }]);
    expect((await queryLake(env.lake(), undefined, 'SELECT count(*) AS n FROM todos_changes')).rows).toEqual([{ n: 0n }]);
    await env.lake().flush(env.source);
    // The engine moves to v2 (todos.due); no flush has evolved the lake yet.
    const v2: Schema = { version: 2, tables: LAKE_SCHEMA.tables.map((t) => (t.name === 'todos' ? { ...t, columns: [...t.columns, { name: 'due', type: 'string' }] } : t)) };
    const g2 = new Gateway({ buffer: env.buffer, schema: v2, rules: null, clock: new HybridLogicalClock() });
    await g2.push(principal('client-a'), { clientId: 'client-a', schemaVersion: 2, deltas: [a('todos', 'y', 'insert', { title: 'y', due: 'friday' })] });
    const lake = env.lake({ schema: v2 });
    expect((await queryLake(lake, env.buffer, 'SELECT _row_id, due FROM todos ORDER BY _row_id')).rows).toEqual([{ _row_id: 'x', due: null }, { _row_id: 'y', due: 'friday' }]);
    expect((await queryLake(lake, env.buffer, 'SELECT _row_id, due FROM todos_changes ORDER BY _row_id')).rows).toEqual([{ _row_id: 'x', due: null }, { _row_id: 'y', due: 'friday' }]);
    const asOf = await queryLake(lake, env.buffer, 'SELECT _row_id, due FROM todos ORDER BY _row_id', { asOf: encodeHlc(Date.now() + 60_000, 0) });
    expect(asOf.rows).toEqual([{ _row_id: 'x', due: null }, { _row_id: 'y', due: 'friday' }]);
  });

  it('partitioned tables read their values from the files, not from the (escaped) partition directories', async () => {
    const env = makeLakeEnv({ version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'n', type: 'integer' }] }] });
    const lake = env.lake({ partitioning: { changes: 'identity(title)', state: 'identity(title); truncate(2, title)' } });
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'r1', 'insert', { title: 'a b/c%d', n: 1n }), a('todos', 'r2', 'insert', { title: '0012', n: 2n })]);
    await lake.flush(env.source);
    for (const source of [env.buffer, undefined]) {
      expect((await queryLake(lake, source, 'SELECT _row_id, title, n FROM todos ORDER BY _row_id')).rows).toEqual([
        { _row_id: 'r1', title: 'a b/c%d', n: 1n },
        { _row_id: 'r2', title: '0012', n: 2n },
      ]);
      expect((await queryLake(lake, source, 'SELECT _row_id, title FROM todos_changes ORDER BY _row_id')).rows).toEqual([
        { _row_id: 'r1', title: 'a b/c%d' },
        { _row_id: 'r2', title: '0012' },
      ]);
    }
  });

  it('user columns named filename or file_row_number (DuckDB\'s own names) read back with position deletes', async () => {
    const env = makeLakeEnv({ version: 1, tables: [{ name: 'todos', columns: [{ name: 'filename', type: 'string' }, { name: 'file_row_number', type: 'integer' }] }] });
    const lake = env.lake();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'r1', 'insert', { filename: 'f1', file_row_number: 7n }), a('todos', 'r2', 'insert', { filename: 'f2', file_row_number: 8n })]);
    await lake.flush(env.source);
    await env.push('client-a', [a('todos', 'r1', 'update', { filename: 'f1b' }), a('todos', 'r2', 'delete')]);
    await lake.flush(env.source);
    for (const source of [env.buffer, undefined]) {
      expect((await queryLake(lake, source, 'SELECT _row_id, filename, file_row_number FROM todos')).rows).toEqual([{ _row_id: 'r1', filename: 'f1b', file_row_number: 7n }]);
    }
  });

  it('the SQL merge of asOfSql agrees with the engine on random histories (deletes, resurrection, nulls, equal HLCs)', async () => {
    const duck = await DuckDBInstance.create(':memory:');
    const conn = await duck.connect();
    const schema: IcebergSchema = {
      type: 'struct',
      'schema-id': 0,
      fields: [...CHANGE_SYSTEM_FIELDS, { id: 10, name: 'x', required: false, type: 'string' }, { id: 11, name: 'y', required: false, type: 'long' }],
    };
    const op = fc.constantFrom('insert' as const, 'update' as const, 'delete' as const);
    const write = fc.record({
      row: fc.constantFrom('r1', 'r2', 'r3'),
      op,
      wall: fc.integer({ min: 0, max: 6 }),
      client: fc.constantFrom('a', 'b', 'B', 'c-1'),
      x: fc.option(fc.option(fc.string({ maxLength: 3 }), { nil: null }), { nil: undefined }),
      y: fc.option(fc.option(fc.bigInt({ min: -5n, max: 5n }), { nil: null }), { nil: undefined }),
    });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(write, { maxLength: 25 }), fc.integer({ min: 0, max: 7 }), async (writes, cutWall) => {
          // One delta per stamp and row (the buffer refuses a reused stamp).
          const seen = new Set<string>();
          const deltas: Delta[] = [];
          for (const w of writes) {
            const key = `${w.row}/${w.wall}/${w.client}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const columns: Record<string, ColumnValue> = {};
            if (w.op !== 'delete') {
              if (w.x !== undefined) columns['x'] = w.x;
              if (w.y !== undefined) columns['y'] = w.y;
              if (w.op === 'update' && Object.keys(columns).length === 0) columns['x'] = null;
            }
            deltas.push(makeDelta({ table: 't', rowId: w.row, op: w.op, columns, hlc: encodeHlc(1_000_000 + w.wall, 0), clientId: w.client }));
          }
          const cut = encodeHlc(1_000_000 + cutWall, 0);
          const values = deltas
            .map(
              (d, i) =>
                `(${i + 1}, '${d.deltaId}', '${d.op}', '${d.rowId}', '${d.clientId}', ${d.hlc}, [${Object.keys(d.columns).map((c) => `'${c}'`).join(', ')}]::VARCHAR[], ` +
                `${sqlValue(d.columns['x'])}::VARCHAR, ${sqlValue(d.columns['y'])}::BIGINT)`,
            )
            .join(', ');
          const changes =
            deltas.length === 0
              ? `SELECT 1::BIGINT AS _seq, '' AS _delta_id, '' AS _op, '' AS _row_id, '' AS _client_id, 0::BIGINT AS _hlc, []::VARCHAR[] AS _set_columns, NULL::VARCHAR AS x, NULL::BIGINT AS y WHERE false`
              : `SELECT * FROM (VALUES ${values}) v(_seq, _delta_id, _op, _row_id, _client_id, _hlc, _set_columns, x, y)`;
          const got = (await conn.runAndReadAll(`${asOfSql(schema, changes, cut)} ORDER BY _row_id`)).getRowObjectsJS();
          const states = new Map<string, RowState>();
          for (const d of deltas) if (d.hlc <= cut) states.set(d.rowId, applyDelta(states.get(d.rowId), d));
          const want = [...states.entries()]
            .filter(([, s]) => isLive(s))
            .sort(([p], [q]) => (p < q ? -1 : 1))
            .map(([id, s]) => ({ id, x: visibleValues(s)?.['x'] ?? null, y: visibleValues(s)?.['y'] ?? null }));
          expect(got.map((r) => ({ id: r['_row_id'], x: r['x'], y: r['y'] }))).toEqual(want);
        }),
        { numRuns: 300 },
      );
    } finally {
      conn.closeSync();
      duck.closeSync();
    }
  });
});

function sqlValue(v: ColumnValue | undefined): string {
  if (v === undefined || v === null) return 'NULL';
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  return String(v);
}
