import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeDelta, encodeRow, encodeSnapshot } from '../codec/storage.ts';
import { makeDelta, type Delta } from '../delta.ts';
import { applyDelta, type RowState } from '../merge.ts';
import { LAYOUT_VERSION, SqliteBuffer } from './sqlite-buffer.ts';
import { runBufferConformance } from './buffer.conformance.ts';

const paths = new WeakMap<object, string>();

runBufferConformance('sqlite', {
  create: () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const b = new SqliteBuffer({ path, synchronous: 'normal' });
    paths.set(b, path);
    return Promise.resolve(b);
  },
  reopen: async (b) => {
    const path = paths.get(b)!;
    await b.close();
    const next = new SqliteBuffer({ path });
    paths.set(next, path);
    return next;
  },
});

runBufferConformance('sqlite, background checkpoints', {
  create: () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const b = new SqliteBuffer({ path, synchronous: 'normal', checkpoint: 'background' });
    paths.set(b, path);
    return Promise.resolve(b);
  },
  reopen: async (b) => {
    const path = paths.get(b)!;
    await b.close();
    const next = new SqliteBuffer({ path, checkpoint: 'background' });
    paths.set(next, path);
    return next;
  },
});

describe('SqliteBuffer background checkpoints', () => {
  it('copies the WAL into the database off the writing thread', async () => {
    // With SQLite's own checkpoints, 50 small appends stay in the WAL (under
    // 1000 pages); the database file only grows once something checkpoints.
    const sizes: Record<string, number> = {};
    for (const mode of ['auto', 'background'] as const) {
      const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
      const b = new SqliteBuffer({ path, synchronous: 'normal', checkpoint: mode });
      for (let k = 1n; k <= 50n; k++) {
        const d = makeDelta({ table: 'todos', rowId: `r${k}`, op: 'insert', columns: { title: 'x'.repeat(500) }, hlc: k, clientId: 'c1' });
        await b.append([{ delta: d, before: null, after: null, fresh: true }], [{ state: applyDelta(undefined, d), expectedVersion: 0 }]);
      }
      // Give the worker time to start and run (generously: the machine may be busy).
      for (let waited = 0; waited < 5000 && statSync(path).size < 2 * 50 * 500; waited += 50) {
        if (mode === 'auto' && waited >= 300) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      sizes[mode] = statSync(path).size;
      await b.close();
      const again = new SqliteBuffer({ path });
      expect(await again.head()).toBe(50n);
      await again.close();
    }
    expect(sizes['auto']).toBeLessThan(50 * 500);
    expect(sizes['background']).toBeGreaterThan(2 * 50 * 500);
  });
});

describe('SqliteBuffer layout', () => {
  const V1 = `
CREATE TABLE ls_log (seq INTEGER PRIMARY KEY, delta_id TEXT NOT NULL UNIQUE, body BLOB NOT NULL, before BLOB, after BLOB, fresh INTEGER NOT NULL);
CREATE TABLE ls_rows (tbl TEXT NOT NULL, row_id TEXT NOT NULL, version INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tbl, row_id)) WITHOUT ROWID;
CREATE TABLE ls_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`;

  it('migrates a layout 1 file (keyed by delta id) with its seqs, rows and stamps', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const db = new Database(path);
    db.exec(V1);
    const at = (k: bigint, rowId: string, op: Delta['op'] = 'insert', columns: Delta['columns'] = { title: `t${k}`, n: k }) =>
      makeDelta({ table: 'todos', rowId, op, columns, hlc: k, clientId: 'c1' });
    const deltas = [at(10n, 'a'), at(11n, 'b'), at(12n, 'a', 'update', { title: 'a2' }), at(2n ** 63n + 5n, 'c', 'delete', {})];
    const reused = at(11n, 'z'); // layout 1 could hold a reused stamp: both stay, the stamp names the first
    const insert = db.prepare('INSERT INTO ls_log (seq, delta_id, body, before, after, fresh) VALUES (?, ?, ?, ?, ?, ?)');
    [...deltas, reused].forEach((d, i) =>
      insert.run(i + 1, d.deltaId, encodeDelta(d), encodeSnapshot(i === 2 ? { title: 't10' } : null), encodeSnapshot({ title: 'x' }), i === 2 ? 0 : 1),
    );
    const states = new Map<string, RowState>();
    for (const d of deltas) states.set(d.rowId, applyDelta(states.get(d.rowId), d));
    for (const [rowId, state] of states) {
      db.prepare('INSERT INTO ls_rows VALUES (?, ?, ?, ?)').run('todos', rowId, rowId === 'a' ? 2 : 1, encodeRow(state));
    }
    db.prepare("INSERT INTO ls_meta VALUES ('head', 5)").run();
    db.close();

    const b = new SqliteBuffer({ path });
    expect(await b.head()).toBe(5n);
    const page = await b.read(0n, 10);
    expect(page.entries.map((e) => e.seq)).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(page).toMatchObject({ lastSeq: 5n, hasMore: false });
    expect(page.entries.map((e) => e.delta)).toEqual([...deltas, reused]);
    expect(page.entries[2]).toMatchObject({ before: { title: 't10' }, after: { title: 'x' }, fresh: false });
    expect(page.entries[0]).toMatchObject({ before: null, fresh: true });
    const rows = await b.loadRows(['a', 'b', 'c'].map((rowId) => ({ table: 'todos', rowId })));
    expect(rows.map((r) => r?.version)).toEqual([2, 1, 1]);
    expect(rows.map((r) => r?.state)).toEqual(['a', 'b', 'c'].map((id) => states.get(id)));
    expect(await b.existing('c1', deltas.map((d) => d.hlc))).toEqual(deltas.map((d) => d.deltaId));
    const next = await b.append([{ delta: at(13n, 'd'), before: null, after: {}, fresh: true }], []);
    expect(next).toEqual({ ok: true, lastSeq: 6n });
    await b.close();
    // Reopening does not migrate again.
    const again = new SqliteBuffer({ path });
    expect(await again.head()).toBe(6n);
    await again.close();
  });

  it('refuses a file from a newer LakeSync', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const db = new Database(path);
    db.pragma(`user_version = ${LAYOUT_VERSION + 1}`);
    db.close();
    expect(() => new SqliteBuffer({ path })).toThrow(/layout/);
  });

  it('stores a row state compactly: one stamp for an inserted row', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const b = new SqliteBuffer({ path, synchronous: 'normal' });
    const d = makeDelta({ table: 'todos', rowId: 'r', op: 'insert', columns: { title: 'x', done: true, n: 1n, s: 0.5 }, hlc: 99n, clientId: 'c1' });
    const state = applyDelta(undefined, d);
    await b.append([{ delta: d, before: null, after: null, fresh: true }], [{ state, expectedVersion: 0 }]);
    await b.close();
    const db = new Database(path, { readonly: true });
    const { n } = db.prepare("SELECT length(state) AS n FROM ls_rows WHERE row_id = 'r'").get() as { n: number };
    db.close();
    expect(n).toBeLessThan(encodeRow(state).length / 2);
  });
});
