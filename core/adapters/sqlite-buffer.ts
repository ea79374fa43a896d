import Database from 'better-sqlite3';
import type { Hlc } from '../hlc.ts';
import type { AppendResult, DeltaBuffer, LogEntry, LogEntryDraft, ReadResult, RowRef, RowWrite, StoredRow } from '../engine/ports.ts';
import { entryDeltaId, Packer, packEntry, packRow, unpackEntry, unpackRow } from '../codec/storage.ts';
import { migrateFromV1 } from './sqlite-migrate.ts';

export interface SqliteBufferOptions {
  /** File path, or ':memory:'. */
  path: string;
  /**
   * 'full' fsyncs every commit (survives power loss); 'normal' survives a
   * killed process but may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal';
}

class Conflict extends Error {}

/** PRAGMA user_version of the layout below (1 was the layout keyed by delta id). */
export const LAYOUT_VERSION = 2;

/**
 * ls_log holds one row per delta. Deduplication is by stamp: the unique
 * (client_id, hlc) index grows at the end of each client's range, because a
 * client's hlcs only grow, so a batch touches a few index pages instead of
 * one page per delta as an index on random delta ids does. `hlc` is stored
 * minus 2^63 (the u64 as a signed integer, in the same order). `entry` is
 * the rest of the delta plus its rule snapshots (core/codec/storage.ts
 * packEntry); `state` is packRow. ls_meta 'head' is the last seq handed out
 * (seqs are never reused, even if the entry is gone: see sqlite-migrate.ts).
 */
export const LAYOUT = `
CREATE TABLE IF NOT EXISTS ls_log (
  seq INTEGER PRIMARY KEY,
  client_id TEXT NOT NULL,
  hlc INTEGER NOT NULL,
  entry BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ls_log_stamp ON ls_log (client_id, hlc);
CREATE TABLE IF NOT EXISTS ls_rows (
  tbl TEXT NOT NULL,
  row_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (tbl, row_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ls_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`;

const HLC_OFFSET = 1n << 63n;

/** Rows per multi-row statement: one statement per chunk costs far less than one per row. */
const CHUNK = 64;

type Statement = Database.Statement<unknown[], unknown>;

/**
 * The embedded default buffer: one SQLite file in WAL mode. Appends run in
 * one immediate write transaction, which is the serialization point for
 * server order.
 */
export class SqliteBuffer implements DeltaBuffer {
  private readonly db: Database.Database;
  private seq: bigint;
  private readonly packer = new Packer();
  private readonly stmts;
  /** Multi-row statements by kind and row count, prepared on first use. */
  private readonly chunked = new Map<string, Statement>();
  private readonly appendTx: Database.Transaction<(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]) => bigint>;

  constructor(options: SqliteBufferOptions) {
    this.db = new Database(options.path);
    const db = this.db;
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    // Row states are read back by every push that touches them: keep more pages cached (32 MiB).
    db.pragma('cache_size = -32768');
    openLayout(db);
    this.stmts = {
      stampRange: db
        .prepare<[string, bigint, bigint, number], [bigint, Buffer]>(
          'SELECT hlc, entry FROM ls_log WHERE client_id = ? AND hlc BETWEEN ? AND ? ORDER BY hlc LIMIT ?',
        )
        .raw(true)
        .safeIntegers(true),
      stamp: db.prepare<[string, bigint], [Buffer]>('SELECT entry FROM ls_log WHERE client_id = ? AND hlc = ?').raw(true),
      head: db.prepare<[], [bigint]>("SELECT value FROM ls_meta WHERE key = 'head'").raw(true).safeIntegers(true),
      setHead: db.prepare<[number]>(
        "INSERT INTO ls_meta (key, value) VALUES ('head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      read: db
        .prepare<[bigint, number], [bigint, string, bigint, Buffer]>(
          'SELECT seq, client_id, hlc, entry FROM ls_log WHERE seq > ? ORDER BY seq LIMIT ?',
        )
        .raw(true)
        .safeIntegers(true),
    };
    this.seq = this.stmts.head.get()?.[0] ?? 0n;
    this.appendTx = db.transaction((entries: readonly LogEntryDraft[], rows: readonly RowWrite[]) => this.write(entries, rows));
  }

  /** A statement over `n` rows of `tuple`, cached per kind and size. */
  private chunk(kind: string, n: number, build: (values: string) => string, tuple: string): Statement {
    const key = `${kind}:${n}`;
    let stmt = this.chunked.get(key);
    if (stmt === undefined) {
      stmt = this.db.prepare(build(Array.from({ length: n }, () => tuple).join(', ')));
      if (stmt.reader) stmt.raw(true);
      this.chunked.set(key, stmt);
    }
    return stmt;
  }

  existing(clientId: string, hlcs: readonly Hlc[]): Promise<(string | null)[]> {
    const out = new Array<string | null>(hlcs.length).fill(null);
    if (hlcs.length === 0) return Promise.resolve(out);
    let min = hlcs[0] as Hlc;
    let max = min;
    for (const h of hlcs) {
      if (h < min) min = h;
      if (h > max) max = h;
    }
    // One range query finds every stored stamp of this batch: usually none
    // (new deltas lie above everything stored), or the batch itself on a
    // retry. Only when far more stamps lie in between than the batch holds
    // (a client mixing old and new hlcs) ask stamp by stamp instead.
    const cap = 2 * hlcs.length + 16;
    const found = this.stmts.stampRange.all(clientId, min - HLC_OFFSET, max - HLC_OFFSET, cap + 1);
    if (found.length <= cap) {
      if (found.length === 0) return Promise.resolve(out);
      const byHlc = new Map<Hlc, Buffer>();
      for (const [h, entry] of found) byHlc.set(h + HLC_OFFSET, entry);
      for (let i = 0; i < hlcs.length; i++) {
        const entry = byHlc.get(hlcs[i] as Hlc);
        if (entry !== undefined) out[i] = entryDeltaId(entry);
      }
    } else {
      for (let i = 0; i < hlcs.length; i++) {
        const row = this.stmts.stamp.get(clientId, (hlcs[i] as Hlc) - HLC_OFFSET);
        if (row !== undefined) out[i] = entryDeltaId(row[0]);
      }
    }
    return Promise.resolve(out);
  }

  loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    const out = new Array<StoredRow | undefined>(keys.length);
    // Group by table (a push usually touches one), then ask in chunks.
    const byTable = new Map<string, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const table = (keys[i] as RowRef).table;
      let idx = byTable.get(table);
      if (idx === undefined) byTable.set(table, (idx = []));
      idx.push(i);
    }
    for (const [table, idx] of byTable) {
      for (let start = 0; start < idx.length; start += CHUNK) {
        const n = Math.min(CHUNK, idx.length - start);
        const params: unknown[] = [table];
        for (let j = start; j < start + n; j++) params.push((keys[idx[j] as number] as RowRef).rowId);
        const stmt = this.chunk(
          'load',
          n,
          (list) => `SELECT row_id, version, state FROM ls_rows WHERE tbl = ? AND row_id IN (${list})`,
          '?',
        );
        const found = stmt.all(params) as [string, number, Buffer][];
        if (found.length === 0) continue;
        const byId = new Map<string, StoredRow>();
        for (const [rowId, version, state] of found) byId.set(rowId, { version, state: unpackRow(table, rowId, state) });
        for (let j = start; j < start + n; j++) {
          const i = idx[j] as number;
          out[i] = byId.get((keys[i] as RowRef).rowId);
        }
      }
    }
    return Promise.resolve(out);
  }

  append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    try {
      this.seq = this.appendTx.immediate(entries, rows);
      return Promise.resolve({ ok: true, lastSeq: this.seq });
    } catch (err) {
      if (err instanceof Conflict) return Promise.resolve({ ok: false, reason: 'conflict' });
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        return Promise.resolve({ ok: false, reason: 'conflict' }); // a stamp already stored, or repeated in the batch
      }
      return Promise.reject(err as Error);
    }
  }

  /** The body of the append transaction; returns the last seq. */
  private write(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): bigint {
    const p = this.packer;
    // Rows first: a stale version ends the transaction before any log write.
    const fresh: RowWrite[] = [];
    const known: RowWrite[] = [];
    for (const w of rows) (w.expectedVersion === 0 ? fresh : known).push(w);
    for (let start = 0; start < fresh.length; start += CHUNK) {
      const n = Math.min(CHUNK, fresh.length - start);
      p.reset();
      const params: unknown[] = [];
      for (let j = start; j < start + n; j++) {
        const w = fresh[j] as RowWrite;
        const at = p.pos;
        packRow(p, w.state);
        params.push(w.state.table, w.state.rowId, p.view(at));
      }
      const stmt = this.chunk(
        'insertRows',
        n,
        (list) => `INSERT INTO ls_rows (tbl, row_id, version, state) VALUES ${list} ON CONFLICT DO NOTHING`,
        '(?, ?, 1, ?)',
      );
      if (stmt.run(params).changes !== n) throw new Conflict();
    }
    for (let start = 0; start < known.length; start += CHUNK) {
      const n = Math.min(CHUNK, known.length - start);
      p.reset();
      const params: unknown[] = [];
      for (let j = start; j < start + n; j++) {
        const w = known[j] as RowWrite;
        const at = p.pos;
        packRow(p, w.state);
        params.push(w.state.table, w.state.rowId, w.expectedVersion, p.view(at));
      }
      const stmt = this.chunk(
        'updateRows',
        n,
        (list) =>
          `WITH v (tbl, row_id, expected, state) AS (VALUES ${list}) ` +
          'UPDATE ls_rows SET version = v.expected + 1, state = v.state FROM v ' +
          'WHERE ls_rows.tbl = v.tbl AND ls_rows.row_id = v.row_id AND ls_rows.version = v.expected',
        '(?, ?, ?, ?)',
      );
      if (stmt.run(params).changes !== n) throw new Conflict();
    }

    // Read the head inside the write transaction: it is the serialization point.
    const head = this.stmts.head.get()?.[0] ?? 0n;
    if (head + BigInt(entries.length) > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('log sequence exhausted');
    let seq = Number(head);
    for (let start = 0; start < entries.length; start += CHUNK) {
      const n = Math.min(CHUNK, entries.length - start);
      p.reset();
      const params: unknown[] = [];
      for (let j = start; j < start + n; j++) {
        const e = entries[j] as LogEntryDraft;
        const at = p.pos;
        packEntry(p, e);
        params.push(++seq, e.delta.clientId, e.delta.hlc - HLC_OFFSET, p.view(at));
      }
      const stmt = this.chunk('insertLog', n, (list) => `INSERT INTO ls_log (seq, client_id, hlc, entry) VALUES ${list}`, '(?, ?, ?, ?)');
      stmt.run(params); // a stored or repeated stamp fails the unique index: SQLITE_CONSTRAINT_UNIQUE
    }
    this.stmts.setHead.run(seq);
    return BigInt(seq);
  }

  read(after: bigint, limit: number): Promise<ReadResult> {
    const rows = this.stmts.read.all(after, limit + 1);
    const hasMore = rows.length > limit;
    const n = Math.min(limit, rows.length);
    const entries = new Array<LogEntry>(n);
    for (let i = 0; i < n; i++) {
      const [seq, clientId, hlc, entry] = rows[i] as [bigint, string, bigint, Buffer];
      const e = unpackEntry(entry, clientId, hlc + HLC_OFFSET);
      entries[i] = { seq, delta: e.delta, before: e.before, after: e.after, fresh: e.fresh };
    }
    const last = n > 0 ? (entries[n - 1] as LogEntry).seq : after;
    return Promise.resolve({ entries, lastSeq: last, hasMore });
  }

  head(): Promise<bigint> {
    return Promise.resolve(this.seq);
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}

/** Create the layout, or bring an older file up to it. */
function openLayout(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === LAYOUT_VERSION) return;
  if (version > LAYOUT_VERSION) {
    throw new Error(`buffer file has layout ${version}; this LakeSync reads up to ${LAYOUT_VERSION}`);
  }
  const hasV1 = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ls_log'").get() !== undefined;
  db.transaction(() => {
    if (hasV1) migrateFromV1(db, LAYOUT);
    else db.exec(LAYOUT);
    db.pragma(`user_version = ${LAYOUT_VERSION}`);
  }).immediate();
}
