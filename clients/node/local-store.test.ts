import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  emptyRow,
  isLive,
  makeDelta,
  mergeRows,
  rowKey,
  type Change,
  type ColumnValue,
  type Delta,
  type Op,
  type RowState,
  type Schema,
} from '../../core/index.ts';
import { encodeRow } from '../../core/codec/storage.ts';
import { LocalStore } from './local-store.ts';
import { encodeState, makeLayout } from './state-text.ts';

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
const LAYOUT = makeLayout(
  SCHEMA.tables[0]!.columns.map((c) => c.name),
  new Map(SCHEMA.tables[0]!.columns.map((c) => [c.name, c.type])),
);
/** A newer server schema: a column and a table this client does not have yet. */
const SCHEMA_V2: Schema = {
  version: 2,
  tables: [
    { name: 'todos', columns: [...SCHEMA.tables[0]!.columns, { name: 'extra', type: 'string' }] },
    { name: 'lists', columns: [{ name: 'name', type: 'string' }] },
  ],
};
const APP_COLUMNS = ['title', 'done', 'n', 'score', 'meta'];
const ROWS = ['a', 'b', 'c'];

const valueFor: Record<string, fc.Arbitrary<ColumnValue>> = {
  title: fc.oneof(fc.constant(null), fc.string({ maxLength: 3 }), fc.constant('x;y=1,')),
  done: fc.oneof(fc.constant(null), fc.boolean()),
  n: fc.oneof(fc.constant(null), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constant(2.5)), // 2.5: a value of the wrong type
  score: fc.oneof(fc.constant(null), fc.integer({ min: -8, max: 8 }).map((i) => i / 2 + 0)),
  meta: fc.oneof(fc.constant(null), fc.constant({ json: '{"k":[1]}' })),
  extra: fc.string({ maxLength: 3 }),
  name: fc.string({ maxLength: 3 }),
};

const deltaArb: fc.Arbitrary<Delta> = fc
  .record({
    table: fc.constantFrom('todos', 'todos', 'todos', 'lists'),
    rowId: fc.constantFrom(...ROWS),
    op: fc.constantFrom<Op>('insert', 'update', 'delete', 'insert', 'update'),
    hlc: fc.bigInt({ min: 1n, max: 30n }), // small: ties between clients happen
    clientId: fc.constantFrom('x', 'y', 'z'),
    names: fc.uniqueArray(fc.constantFrom(...APP_COLUMNS, 'extra'), { maxLength: 4 }),
    values: fc.tuple(...[...APP_COLUMNS, 'extra'].map((c) => valueFor[c]!)),
  })
  .map((r) => {
    const all = [...APP_COLUMNS, 'extra'];
    const columns: Record<string, ColumnValue> = {};
    if (r.op !== 'delete') {
      if (r.table === 'lists') columns['name'] = r.values[0] === null ? 'l' : String(r.values[0]);
      else for (const n of r.names) columns[n] = r.values[all.indexOf(n)] as ColumnValue;
    }
    return makeDelta({ table: r.table, rowId: r.rowId, op: r.op, columns, hlc: r.hlc, clientId: r.clientId });
  });

/** Pulled changes as the gateway sends them: deltas (often re-delivered), row snapshots, evictions. */
const pagesArb: fc.Arbitrary<Change[][]> = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: deltaArb.map((delta): Change => ({ kind: 'delta', delta })) },
      {
        weight: 1,
        arbitrary: fc.array(deltaArb, { minLength: 1, maxLength: 4 }).map((ds): Change => {
          const first = ds[0]!;
          let row = emptyRow(first.table, first.rowId);
          for (const d of ds) row = applyDelta(row, { ...d, table: first.table, rowId: first.rowId });
          return { kind: 'row', row };
        }),
      },
      { weight: 1, arbitrary: fc.record({ table: fc.constantFrom('todos', 'lists'), rowId: fc.constantFrom(...ROWS) }).map((e): Change => ({ kind: 'evict', ...e })) },
    ),
    { maxLength: 40 },
  )
  .chain((changes) => fc.array(fc.nat({ max: changes.length }), { maxLength: 4 }).map((cuts) => ({ changes, cuts })))
  .chain(({ changes, cuts }) =>
    // Re-deliver some changes (duplicates) and split into pages at random.
    fc.array(fc.nat({ max: Math.max(0, changes.length - 1) }), { maxLength: changes.length === 0 ? 0 : 5 }).map((dups) => {
      const all = [...changes, ...dups.map((i) => changes[i]!)];
      return { all, cuts };
    }),
  )
  .map(({ all, cuts }) => {
    const sorted = [...new Set([0, ...cuts.map((c) => Math.min(c, all.length)), all.length])].sort((a, b) => a - b);
    const pages: Change[][] = [];
    for (let i = 1; i < sorted.length; i++) pages.push(all.slice(sorted[i - 1], sorted[i]));
    return pages;
  });

/** What the old path computed: core's merge, change by change. */
function reference(pages: readonly Change[][]): Map<string, RowState> {
  const states = new Map<string, RowState>();
  for (const c of pages.flat()) {
    if (c.kind === 'evict') states.delete(rowKey(c.table, c.rowId));
    else if (c.kind === 'delta') states.set(rowKey(c.delta.table, c.delta.rowId), applyDelta(states.get(rowKey(c.delta.table, c.delta.rowId)), c.delta));
    else {
      const key = rowKey(c.row.table, c.row.rowId);
      states.set(key, mergeRows(states.get(key) ?? emptyRow(c.row.table, c.row.rowId), c.row));
    }
  }
  return states;
}

/** App-table values as SQLite returns them (numbers for small integers, 0/1 for booleans). */
function sqlOf(v: ColumnValue | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'object') return v.json;
  return v;
}

function appRows(db: Database.Database): unknown[] {
  return db
    .prepare(`SELECT id, ${APP_COLUMNS.join(', ')}, _ls_state FROM todos ORDER BY id`)
    .safeIntegers()
    .all()
    .map((r) => Object.fromEntries(Object.entries(r as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
}

function expectedAppRows(states: Map<string, RowState>): unknown[] {
  return ROWS.flatMap((id) => {
    const s = states.get(rowKey('todos', id));
    if (s === undefined || !isLive(s)) return [];
    return [{ id, ...Object.fromEntries(APP_COLUMNS.map((c) => [c, sqlOf(s.columns[c]?.value)])), _ls_state: encodeState(s, LAYOUT) }];
  });
}

function deadRows(db: Database.Database): string[] {
  return db.prepare("SELECT tbl || '/' || row_id FROM _lakesync_rows ORDER BY 1").pluck().all() as string[];
}

/** Every state this client holds: loadRow for each row, compared with the reference. */
function expectStates(store: LocalStore, ref: Map<string, RowState>): void {
  for (const table of ['todos', 'lists']) {
    for (const id of ROWS) expect(store.loadRow(table, id), `${table}/${id}`).toEqual(ref.get(rowKey(table, id)));
  }
}

function open(schema = SCHEMA): { db: Database.Database; store: LocalStore } {
  const db = new Database(':memory:');
  return { db, store: new LocalStore(db, schema) };
}

describe('LocalStore.applyRemote', () => {
  it('property: any pages of deltas, snapshots and evictions give the states of core merge, change by change', () => {
    fc.assert(
      fc.property(pagesArb, (pages) => {
        const { db, store } = open();
        pages.forEach((p, i) => store.applyRemote(p, String(i)));
        const ref = reference(pages);
        expectStates(store, ref);
        expect(appRows(db)).toEqual(expectedAppRows(ref));
        // _lakesync_rows holds what no app table shows: deleted rows and rows of unknown tables.
        const dead = [...ref].filter(([, s]) => s.table !== 'todos' || !isLive(s)).map(([, s]) => `${s.table}/${s.rowId}`);
        expect(deadRows(db)).toEqual(dead.sort());
        // Then the newer schema arrives: new columns and tables are backfilled from the states.
        store.migrate(SCHEMA_V2);
        expectStates(store, ref);
        const extra = db.prepare('SELECT id, extra FROM todos ORDER BY id').all();
        expect(extra).toEqual(expectedAppRows(ref).map((r) => ({ id: (r as { id: string }).id, extra: ref.get(rowKey('todos', (r as { id: string }).id))!.columns['extra']?.value ?? null })));
        const lists = ROWS.flatMap((id) => {
          const s = ref.get(rowKey('lists', id));
          return s !== undefined && isLive(s) ? [{ id, name: s.columns['name']?.value ?? null }] : [];
        });
        expect(db.prepare('SELECT id, name FROM lists ORDER BY id').all()).toEqual(lists);
        expect(db.prepare("SELECT count(*) FROM todos WHERE _ls_state LIKE '%extra=%'").pluck().get()).toBe(0);
        db.close();
      }),
      { numRuns: 400 },
    );
  });

  it('a page mixing inserts, updates, deletes, a resurrection and duplicates', () => {
    const { db, store } = open();
    const d = (rowId: string, op: Op, hlc: bigint, columns: Record<string, ColumnValue> = {}, clientId = 'x'): Change => ({
      kind: 'delta',
      delta: makeDelta({ table: 'todos', rowId, op, columns, hlc, clientId }),
    });
    const page: Change[] = [
      d('a', 'insert', 10n, { title: 'a', done: false, n: 1n }),
      d('b', 'insert', 11n, { title: 'b' }),
      d('a', 'update', 12n, { title: 'a2' }),
      d('a', 'update', 12n, { title: 'a2' }), // duplicate
      d('a', 'update', 9n, { n: 7n }, 'y'), // older than the row's insert: n keeps 1
      d('b', 'delete', 13n),
      d('b', 'update', 14n, { score: 1.5 }), // after the delete: kept, not visible
      d('c', 'update', 15n, { title: 'c' }), // an update alone: no live row
      d('b', 'insert', 16n, { done: true }), // resurrection: shows done and score
      d('a', 'insert', 12n, { meta: { json: '[1]' } }, 'y'), // same hlc as the update, greater client: wins meta only
    ];
    store.applyRemote(page, '1');
    store.applyRemote(page, '2'); // the whole page again changes nothing
    const ref = reference([page]);
    expectStates(store, ref);
    expect(db.prepare('SELECT id, title, done, n, score, meta FROM todos ORDER BY id').all()).toEqual([
      { id: 'a', title: 'a2', done: 0, n: 1, score: null, meta: '[1]' },
      { id: 'b', title: null, done: 1, n: null, score: 1.5, meta: null },
    ]);
    expect(deadRows(db)).toEqual(['todos/c']);
    expect(appRows(db)).toEqual(expectedAppRows(ref));
  });

  it('keeps mask numbers when a later schema lists the columns in another order', () => {
    const { db, store } = open();
    const page: Change[] = [
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'a', op: 'insert', columns: { title: 't', n: 3n, meta: { json: '1' } }, hlc: 1n, clientId: 'x' }) },
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'a', op: 'update', columns: { done: true }, hlc: 2n, clientId: 'x' }) },
    ];
    store.applyRemote(page, '1');
    const before = store.loadRow('todos', 'a');
    const reversed: Schema = { version: 2, tables: [{ name: 'todos', columns: [{ name: 'extra', type: 'string' }, ...SCHEMA.tables[0]!.columns.toReversed()] }] };
    store.migrate(reversed);
    expect(store.loadRow('todos', 'a')).toEqual(before);
    const reopened = new LocalStore(db, reversed);
    expect(reopened.loadRow('todos', 'a')).toEqual(before);
    reopened.applyRemote([{ kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'a', op: 'update', columns: { extra: 'e', n: 4n }, hlc: 3n, clientId: 'y' }) }], '2');
    expect(db.prepare('SELECT title, done, n, meta, extra FROM todos').all()).toEqual([{ title: 't', done: 1, n: 4, meta: '1', extra: 'e' }]);
    expect(reopened.loadRow('todos', 'a')?.columns['title']).toEqual(before?.columns['title']);
  });

  it('local writes go through the same merge', () => {
    const { db, store } = open();
    const w = (op: Op, hlc: bigint, columns: Record<string, ColumnValue> = {}): void =>
      store.writeLocal(makeDelta({ table: 'todos', rowId: 'a', op, columns, hlc, clientId: 'me' }), hlc);
    w('insert', 1n, { title: 't', done: false });
    w('update', 2n, { done: true });
    expect(db.prepare('SELECT title, done FROM todos').all()).toEqual([{ title: 't', done: 1 }]);
    w('delete', 3n);
    expect(db.prepare('SELECT count(*) FROM todos').pluck().get()).toBe(0);
    expect(store.loadRow('todos', 'a')?.deleted).toEqual({ hlc: 3n, clientId: 'me' });
    expect(store.pendingCount()).toBe(3);
  });
});

describe('LocalStore format upgrade', () => {
  /** A database as the format-1 store left it: every state in _lakesync_rows, app tables without _ls_state. */
  function formatOneDb(states: readonly RowState[]): Database.Database {
    const db = new Database(':memory:');
    db.exec(`
      CREATE TABLE _lakesync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE _lakesync_rows (tbl TEXT NOT NULL, row_id TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tbl, row_id)) WITHOUT ROWID;
      CREATE TABLE _lakesync_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, delta BLOB NOT NULL);
      CREATE TABLE _lakesync_rejected (seq INTEGER PRIMARY KEY, delta BLOB NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL);
      CREATE TABLE todos (id TEXT PRIMARY KEY NOT NULL);
      ALTER TABLE todos ADD COLUMN title TEXT; ALTER TABLE todos ADD COLUMN done INTEGER; ALTER TABLE todos ADD COLUMN n INTEGER;
      ALTER TABLE todos ADD COLUMN score REAL; ALTER TABLE todos ADD COLUMN meta TEXT;`);
    db.prepare("INSERT INTO _lakesync_meta VALUES ('schema', ?), ('cursor', '42'), ('client_id', 'me')").run(JSON.stringify(SCHEMA));
    const app = db.prepare('INSERT INTO todos (id, title, done, n, score, meta) VALUES (?, ?, ?, ?, ?, ?)');
    for (const s of states) {
      db.prepare('INSERT INTO _lakesync_rows VALUES (?, ?, ?)').run(s.table, s.rowId, encodeRow(s));
      if (s.table === 'todos' && isLive(s)) {
        const v = (c: string): unknown => {
          const x = s.columns[c]?.value ?? null;
          return typeof x === 'boolean' ? (x ? 1 : 0) : x !== null && typeof x === 'object' ? x.json : x;
        };
        app.run(s.rowId, v('title'), v('done'), v('n'), v('score'), v('meta'));
      }
    }
    return db;
  }

  it('opens a format-1 database and keeps its data', () => {
    const deltas: Change[] = [
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'a', op: 'insert', columns: { title: 'a', n: 5n, meta: { json: '{}' } }, hlc: 1n, clientId: 'x' }) },
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'a', op: 'update', columns: { done: true, extra: 'e' }, hlc: 2n, clientId: 'y' }) },
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'b', op: 'insert', columns: { title: 'b' }, hlc: 3n, clientId: 'x' }) },
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'b', op: 'delete', columns: {}, hlc: 4n, clientId: 'x' }) },
      { kind: 'delta', delta: makeDelta({ table: 'lists', rowId: 'l', op: 'insert', columns: { name: 'L' }, hlc: 5n, clientId: 'x' }) },
    ];
    const ref = reference([deltas]);
    const db = formatOneDb([...ref.values()]);
    db.prepare('INSERT INTO _lakesync_outbox (delta) VALUES (?)').run(Buffer.from([1]));
    const store = new LocalStore(db, SCHEMA);
    expect(store.getMeta('store_format')).toBe('2');
    expect(store.getMeta('cursor')).toBe('42');
    expect(store.pendingCount()).toBe(1);
    expectStates(store, ref);
    expect(appRows(db)).toEqual(expectedAppRows(ref).map((r) => ({ ...(r as object) })));
    expect(deadRows(db)).toEqual(['lists/l', 'todos/b']);
    // It keeps working: the next pull merges into the upgraded rows.
    const more: Change[] = [
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'a', op: 'update', columns: { title: 'a2' }, hlc: 6n, clientId: 'x' }) },
      { kind: 'delta', delta: makeDelta({ table: 'todos', rowId: 'b', op: 'insert', columns: { score: 2 }, hlc: 7n, clientId: 'x' }) },
    ];
    store.applyRemote(more, '43');
    const ref2 = reference([deltas, more]);
    expectStates(store, ref2);
    expect(appRows(db)).toEqual(expectedAppRows(ref2));
    // Opening again is a no-op.
    const again = new LocalStore(db, SCHEMA);
    expectStates(again, ref2);
    store.migrate(SCHEMA_V2);
    expect(db.prepare('SELECT id, title, extra FROM todos ORDER BY id').all()).toEqual([
      { id: 'a', title: 'a2', extra: 'e' },
      { id: 'b', title: null, extra: null },
    ]);
    expect(db.prepare('SELECT id, name FROM lists').all()).toEqual([{ id: 'l', name: 'L' }]);
  });

  it('refuses a database written by a newer SDK', () => {
    const db = new Database(':memory:');
    new LocalStore(db, SCHEMA).setMeta('store_format', '3');
    expect(() => new LocalStore(db, SCHEMA)).toThrow(/format 3/);
  });
});

describe('LocalStore with columns named like SQLite rowid aliases', () => {
  it('addresses app rows by their real rowid when the schema has columns "rowid" and "oid"', () => {
    const schema: Schema = {
      version: 1,
      tables: [{ name: 'things', columns: [{ name: 'title', type: 'string' }, { name: 'rowid', type: 'integer' }, { name: 'oid', type: 'integer' }] }],
    };
    const db = new Database(':memory:');
    const store = new LocalStore(db, schema);
    const d = (rowId: string, op: Op, hlc: bigint, columns: Record<string, ColumnValue>): Change => ({
      kind: 'delta',
      delta: makeDelta({ table: 'things', rowId, op, columns, hlc, clientId: 'x' }),
    });
    // The column values point at each other's real rowids (1 and 2), or are NULL.
    store.applyRemote([d('a', 'insert', 1n, { title: 'a', rowid: 2n, oid: 2n }), d('b', 'insert', 2n, { title: 'b', rowid: 1n, oid: 1n }), d('c', 'insert', 3n, { title: 'c' })], '1');
    store.applyRemote([d('a', 'update', 4n, { title: 'a2' }), d('c', 'update', 5n, { title: 'c2' }), d('b', 'delete', 6n, {})], '2');
    expect(db.prepare('SELECT id, title, "rowid" AS r, "oid" AS o FROM things ORDER BY id').all()).toEqual([
      { id: 'a', title: 'a2', r: 2, o: 2 },
      { id: 'c', title: 'c2', r: null, o: null },
    ]);
    expect(store.loadRow('things', 'a')?.columns['title']?.value).toBe('a2');
    expect(store.loadRow('things', 'b')?.deleted).toEqual({ hlc: 6n, clientId: 'x' });
  });
});
