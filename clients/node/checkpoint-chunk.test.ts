import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  decodePullResponse,
  emptyRow,
  encodePullResponse,
  makeDelta,
  type Change,
  type ColumnValue,
  type Delta,
  type Op,
  type Schema,
} from '../../core/index.ts';
import { LocalStore } from './local-store.ts';

/**
 * LocalStore.applyCheckpointChunk reads protobuf chunks on a fast path
 * (checkpoint-chunk.ts + AppTable.insertChunkRow). Whatever the chunk and
 * whatever the client already holds, the database must end up exactly as
 * applyCheckpointPage of the decoded changes leaves it.
 */

const SCHEMA: Schema = {
  version: 1,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'done', type: 'boolean' },
        { name: 'n', type: 'integer' },
        { name: 'score', type: 'number' },
        { name: 'meta', type: 'json' },
      ],
    },
  ],
};
const COLUMNS = ['title', 'done', 'n', 'score', 'meta', 'extra'];
const ROWS = ['a', 'b', 'c', 'd', 'é'];

const valueArb: fc.Arbitrary<ColumnValue> = fc.oneof(
  fc.constant(null),
  fc.string({ maxLength: 3 }),
  fc.constant('x;y=1,'),
  fc.boolean(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map(BigInt),
  fc.double(),
  fc.constant({ json: '{"k":[1]}' }),
);

/** HLCs near 0, near 2^40 and near 2^64, with ties between clients. */
const hlcArb = fc.tuple(fc.constantFrom(0n, 2n ** 40n - 3n, 2n ** 63n, 2n ** 64n - 40n), fc.bigInt({ min: 1n, max: 30n })).map(([b, h]) => b + h);

const deltaArb = (rowId: fc.Arbitrary<string>): fc.Arbitrary<Delta> =>
  fc
    .record({
      table: fc.constantFrom('todos', 'todos', 'todos', 'lists'),
      rowId,
      op: fc.constantFrom<Op>('insert', 'insert', 'update', 'delete'),
      hlc: hlcArb,
      clientId: fc.constantFrom('x', 'y', 'zz', 'ü'),
      names: fc.uniqueArray(fc.constantFrom(...COLUMNS), { maxLength: 5 }),
      values: fc.array(valueArb, { minLength: COLUMNS.length, maxLength: COLUMNS.length }),
    })
    .map((r) => {
      const columns: Record<string, ColumnValue> = {};
      if (r.op !== 'delete') for (const n of r.names) columns[n] = r.values[COLUMNS.indexOf(n)] as ColumnValue;
      return makeDelta({ table: r.table, rowId: r.rowId, op: r.op, columns, hlc: r.hlc, clientId: r.clientId });
    });

/** A checkpoint row: the merge of a few deltas of one row. */
const rowArb: fc.Arbitrary<Change> = fc.array(deltaArb(fc.constantFrom(...ROWS)), { minLength: 1, maxLength: 4 }).map((ds) => {
  const first = ds[0] as Delta;
  let row = emptyRow(first.table, first.rowId);
  for (const d of ds) row = applyDelta(row, { ...d, table: first.table, rowId: first.rowId });
  return { kind: 'row', row };
});

function dump(db: Database.Database): unknown {
  const q = (sql: string): unknown[] => db.prepare(sql).safeIntegers().all();
  return {
    todos: q('SELECT id, title, done, n, score, meta, _ls_state, typeof(n) AS tn, typeof(score) AS ts FROM todos ORDER BY id'),
    rows: q('SELECT tbl, row_id, hex(state) AS state FROM _lakesync_rows ORDER BY tbl, row_id'),
  };
}

function open(): { db: Database.Database; store: LocalStore } {
  const db = new Database(':memory:');
  return { db, store: new LocalStore(db, SCHEMA) };
}

function chunk(changes: readonly Change[]): Uint8Array {
  return encodePullResponse('proto', { changes, nextCursor: '7', hasMore: false, serverHlc: 3n });
}

/** Both ways from the same local history; returns the two dumps. */
function both(before: readonly Change[], pages: readonly Uint8Array[]): { fast: unknown; exact: unknown; fastCount: number[] } {
  const a = open();
  const b = open();
  if (before.length > 0) {
    a.store.applyRemote(before, '1');
    b.store.applyRemote(before, '1');
  }
  const fastCount = pages.map((p) => a.store.applyCheckpointChunk('proto', p));
  // The exact path, as before: decode, then apply.
  for (const p of pages) b.store.applyCheckpointPage(decodePullResponse('proto', p).changes);
  const out = { fast: dump(a.db), exact: dump(b.db), fastCount };
  a.db.close();
  b.db.close();
  return out;
}

describe('LocalStore.applyCheckpointChunk', () => {
  it('property: gives the database applyCheckpointPage gives, whatever the rows and the local state', () => {
    fc.assert(
      fc.property(
        fc.array(deltaArb(fc.constantFrom(...ROWS)).map((delta): Change => ({ kind: 'delta', delta })), { maxLength: 6 }),
        fc.array(fc.array(rowArb, { maxLength: 12 }), { minLength: 1, maxLength: 3 }),
        (before, pages) => {
          const bytes = pages.map(chunk);
          const { fast, exact, fastCount } = both(before, bytes);
          expect(fast).toEqual(exact);
          expect(fastCount).toEqual(pages.map((p) => p.length));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('new rows with one stamp go in as the merge path writes them', () => {
    const rows = Array.from({ length: 50 }, (_, i) => ({
      kind: 'row' as const,
      row: applyDelta(undefined, makeDelta({ table: 'todos', rowId: `r${i}`, op: 'insert', columns: { title: `t${i}`, done: i % 2 === 0, n: BigInt(i) * 1_000_000_007n, score: i / 4, meta: { json: '[1]' } }, hlc: 2n ** 50n + BigInt(i), clientId: 'bench' })),
    }));
    const { fast, exact } = both([], [chunk(rows)]);
    expect(fast).toEqual(exact);
    expect((fast as { todos: unknown[] }).todos).toHaveLength(50);
  });

  it('a chunk not laid out as the server writes it goes the exact way', () => {
    const row = applyDelta(undefined, makeDelta({ table: 'todos', rowId: 'a', op: 'insert', columns: { title: 'x' }, hlc: 5n, clientId: 'c' }));
    const bytes = chunk([{ kind: 'row', row }]);
    // An unknown field (number 15, varint) appended to the response.
    const odd = new Uint8Array([...bytes, 0x78, 0x01]);
    const { fast, exact } = both([], [odd]);
    expect(fast).toEqual(exact);
    expect((fast as { todos: unknown[] }).todos).toHaveLength(1);
  });

  it('damaged bytes fail as decodePullResponse fails, writing nothing', () => {
    const row = applyDelta(undefined, makeDelta({ table: 'todos', rowId: 'a', op: 'insert', columns: { title: 'x' }, hlc: 5n, clientId: 'c' }));
    const bytes = chunk([{ kind: 'row', row }, { kind: 'row', row: { ...row, rowId: 'b' } }]);
    const cut = bytes.subarray(0, bytes.length - 3);
    let expected: unknown;
    try {
      decodePullResponse('proto', cut);
    } catch (err) {
      expected = err;
    }
    expect(expected).toBeDefined();
    const { db, store } = open();
    expect(() => store.applyCheckpointChunk('proto', cut)).toThrow(expected as Error);
    expect(db.prepare('SELECT count(*) FROM todos').pluck().get()).toBe(0);
    db.close();
  });

  it('reads JSON chunks through the decoder', () => {
    const row = applyDelta(undefined, makeDelta({ table: 'todos', rowId: 'a', op: 'insert', columns: { title: 'x' }, hlc: 5n, clientId: 'c' }));
    const { db, store } = open();
    expect(store.applyCheckpointChunk('json', encodePullResponse('json', { changes: [{ kind: 'row', row }], nextCursor: '1', hasMore: false, serverHlc: 0n }))).toBe(1);
    expect(db.prepare('SELECT title FROM todos').pluck().all()).toEqual(['x']);
    db.close();
  });
});
