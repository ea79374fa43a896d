import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { encodeDelta, encodeRow, encodeSnapshot, Packer, packSegment } from '../codec/storage.ts';
import { makeDelta, type Delta } from '../delta.ts';
import { applyDelta, type RowState } from '../merge.ts';
import { LAYOUT, LAYOUT_VERSION, SqliteBuffer } from './sqlite-buffer.ts';
import { migrateFromV2 } from './sqlite-migrate.ts';
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

  it('migrates a layout 2 file (a stamp row per delta) to packed stamp runs, keeping every stamp', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    // Write a layout 2 file by hand: the current layout with layout 2's ls_stamps instead of ls_stamp_runs.
    const db = new Database(path);
    db.exec(`
CREATE TABLE ls_log (first_seq INTEGER PRIMARY KEY, count INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE ls_stamps (client_id TEXT NOT NULL, hlc INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (client_id, hlc)) WITHOUT ROWID;
CREATE TABLE ls_rows (tbl TEXT NOT NULL, row_id TEXT NOT NULL, version INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tbl, row_id)) WITHOUT ROWID;
CREATE TABLE ls_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 2;`);
    const deltas: Delta[] = [];
    for (let i = 0; i < 2500; i++) {
      const clientId = i % 3 === 0 ? 'c1' : 'c2';
      deltas.push(makeDelta({ table: 'todos', rowId: `r${i}`, op: 'insert', columns: { n: BigInt(i) }, hlc: 1000n + BigInt(i) * 70000n, clientId }));
    }
    deltas.push(makeDelta({ table: 'todos', rowId: 'big', op: 'insert', columns: {}, hlc: 2n ** 64n - 1n, clientId: 'c1' }));
    const p = new Packer();
    packSegment(p, deltas.map((delta) => ({ delta, before: null, after: {}, fresh: true })));
    db.prepare('INSERT INTO ls_log VALUES (1, ?, ?)').run(deltas.length, p.view(0));
    const stamp = db.prepare('INSERT INTO ls_stamps VALUES (?, ?, ?)');
    db.transaction(() => deltas.forEach((d, i) => stamp.run(d.clientId, d.hlc - (1n << 63n), i + 1)))();
    db.prepare("INSERT INTO ls_meta VALUES ('head', ?)").run(deltas.length);
    db.close();

    const b = new SqliteBuffer({ path });
    for (const clientId of ['c1', 'c2']) {
      const mine = deltas.filter((d) => d.clientId === clientId);
      expect(await b.existing(clientId, mine.map((d) => d.hlc))).toEqual(mine.map((d) => d.deltaId));
      expect(await b.existing(clientId, mine.map((d) => d.hlc - 1n))).toEqual(mine.map(() => null));
    }
    const dup = deltas[7] as Delta;
    expect(await b.append([{ delta: dup, before: null, after: {}, fresh: true }], [])).toEqual({ ok: false, reason: 'conflict' });
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(LAYOUT_VERSION);
    expect(raw.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'ls_stamps'").get()).toEqual({ n: 0 });
    expect((raw.prepare('SELECT count(*) AS n FROM ls_stamp_runs').get() as { n: number }).n).toBeLessThan(10);
    raw.close();
    await b.close();
  });

  it('keeps the stamps of a mixed, unsorted append exact per client', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const b = new SqliteBuffer({ path });
    const d = (clientId: string, hlc: bigint) => makeDelta({ table: 'todos', rowId: `${clientId}${hlc}`, op: 'insert', columns: {}, hlc, clientId });
    const batch = [d('a', 50n), d('b', 10n), d('a', 20n), d('b', 90n), d('a', 35n)];
    expect(await b.append(batch.map((delta) => ({ delta, before: null, after: {}, fresh: true })), [])).toEqual({ ok: true, lastSeq: 5n });
    expect(await b.existing('a', [20n, 21n, 35n, 50n])).toEqual([batch[2]?.deltaId, null, batch[4]?.deltaId, batch[0]?.deltaId]);
    expect(await b.existing('b', [10n, 50n, 90n])).toEqual([batch[1]?.deltaId, null, batch[3]?.deltaId]);
    // A stamp inside a stored run's range but not in it is new; one in it is a conflict.
    expect(await b.append([{ delta: d('a', 30n), before: null, after: {}, fresh: true }], [])).toEqual({ ok: true, lastSeq: 6n });
    expect(await b.append([{ delta: d('a', 99n), before: null, after: {}, fresh: true }, { delta: d('a', 35n), before: null, after: {}, fresh: true }], [])).toEqual({
      ok: false,
      reason: 'conflict',
    });
    // Repeated inside one unsorted batch.
    expect(await b.append([{ delta: d('c', 5n), before: null, after: {}, fresh: true }, { delta: d('c', 1n), before: null, after: {}, fresh: true }, { delta: d('c', 5n), before: null, after: {}, fresh: true }], [])).toEqual({
      ok: false,
      reason: 'conflict',
    });
    expect(await b.head()).toBe(6n);
    await b.close();
  });

  it('opens a file that another connection migrated while this one waited for the write lock', async () => {
    // The local server's lake worker, or `lakesync flush`, may open the buffer while the server migrates it.
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const other = new Database(path);
    other.pragma('journal_mode = WAL');
    other.exec(`
CREATE TABLE ls_log (first_seq INTEGER PRIMARY KEY, count INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE ls_stamps (client_id TEXT NOT NULL, hlc INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (client_id, hlc)) WITHOUT ROWID;
CREATE TABLE ls_rows (tbl TEXT NOT NULL, row_id TEXT NOT NULL, version INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tbl, row_id)) WITHOUT ROWID;
CREATE TABLE ls_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 2;`);
    other.exec('BEGIN IMMEDIATE'); // the other connection starts migrating
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.tsx)
        .then(({ register }) => { register(); return import(workerData.entry); })
        .then(async ({ SqliteBuffer }) => {
          parentPort.postMessage('opening');
          const b = new SqliteBuffer({ path: workerData.path }); // waits for the write lock
          await b.close();
          parentPort.postMessage('ok');
        })
        .catch((err) => parentPort.postMessage(String(err)));`,
      { eval: true, workerData: { path, tsx: import.meta.resolve('tsx/esm/api'), entry: new URL('./sqlite-buffer.ts', import.meta.url).href } },
    );
    const answers: string[] = [];
    const done = new Promise<string>((resolve) => worker.on('message', (m: string) => (answers.push(m), m !== 'opening' && resolve(m))));
    while (!answers.includes('opening')) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300)); // it has read the old version and waits for the lock
    migrateFromV2(other, LAYOUT);
    other.pragma(`user_version = ${LAYOUT_VERSION}`);
    other.exec('COMMIT');
    other.close();
    expect(await done).toBe('ok');
    await worker.terminate();
  }, 20_000);

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

describe('SqliteBuffer.read with a byte budget', () => {
  // A pull sends about 4 MiB, but read() decoded `limit` entries (up to 5000) whatever their size:
  // 40 pushes of one 3.5 MB delta made every pull over them hold 140 MB to send one.
  it('stops taking appends once the page holds maxBytes (never before the first entry)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const b = new SqliteBuffer({ path, synchronous: 'normal' });
    for (let k = 1n; k <= 5n; k++) {
      const d = makeDelta({ table: 'todos', rowId: `r${k}`, op: 'insert', columns: { title: 'x'.repeat(100_000) }, hlc: k, clientId: 'c1' });
      await b.append([{ delta: d, before: null, after: null, fresh: true }], [{ state: applyDelta(undefined, d), expectedVersion: 0 }]);
    }
    const budgeted = await b.read(0n, 1000, 250_000);
    expect(budgeted.entries.map((e) => e.seq)).toEqual([1n, 2n, 3n]);
    expect(budgeted).toMatchObject({ lastSeq: 3n, hasMore: true });
    const rest = await b.read(3n, 1000, 250_000);
    expect(rest).toMatchObject({ lastSeq: 5n, hasMore: false });
    expect((await b.read(0n, 1000, 1)).entries.map((e) => e.seq)).toEqual([1n]);
    expect((await b.read(0n, 1000)).entries).toHaveLength(5);
    await b.close();
  });
});
