import Database from 'better-sqlite3';
import type { AppendResult, DeltaBuffer, LogEntry, LogEntryDraft, ReadResult, RowWrite, StoredRow } from '../engine/ports.ts';
import { rowKey } from '../engine/ports.ts';
import { decodeDelta, decodeRow, decodeSnapshot, encodeDelta, encodeRow, encodeSnapshot } from '../codec/storage.ts';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ls_log (
  seq INTEGER PRIMARY KEY,
  delta_id TEXT NOT NULL UNIQUE,
  body BLOB NOT NULL,
  before BLOB,
  after BLOB,
  fresh INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ls_rows (
  tbl TEXT NOT NULL,
  row_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (tbl, row_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ls_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`;

/**
 * The embedded default buffer: one SQLite file in WAL mode. Appends run in
 * one write transaction, which is the serialization point for server order.
 */
export class SqliteBuffer implements DeltaBuffer {
  private readonly db: Database.Database;
  private seq: bigint;
  private readonly stmts;
  private readonly appendTx: (entries: readonly LogEntryDraft[], rows: readonly RowWrite[]) => bigint;

  constructor(options: SqliteBufferOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      existing: db.prepare<[string], { delta_id: string }>(
        'SELECT delta_id FROM ls_log WHERE delta_id IN (SELECT value FROM json_each(?))',
      ),
      loadRow: db.prepare<[string, string], { version: number; state: Buffer }>(
        'SELECT version, state FROM ls_rows WHERE tbl = ? AND row_id = ?',
      ),
      insertLog: db.prepare<[bigint, string, Uint8Array, Uint8Array | null, Uint8Array | null, number]>(
        'INSERT INTO ls_log (seq, delta_id, body, before, after, fresh) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      insertRow: db.prepare<[string, string, Uint8Array]>(
        'INSERT INTO ls_rows (tbl, row_id, version, state) VALUES (?, ?, 1, ?) ON CONFLICT DO NOTHING',
      ),
      updateRow: db.prepare<[number, Uint8Array, string, string, number]>(
        'UPDATE ls_rows SET version = ?, state = ? WHERE tbl = ? AND row_id = ? AND version = ?',
      ),
      read: db
        .prepare<[bigint, number], { seq: bigint; body: Buffer; before: Buffer | null; after: Buffer | null; fresh: bigint }>(
          'SELECT seq, body, before, after, fresh FROM ls_log WHERE seq > ? ORDER BY seq LIMIT ?',
        )
        .safeIntegers(true),
      head: db.prepare<[], { value: bigint }>("SELECT value FROM ls_meta WHERE key = 'head'").safeIntegers(true),
      setHead: db.prepare<[bigint]>(
        "INSERT INTO ls_meta (key, value) VALUES ('head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
    };
    this.seq = this.stmts.head.get()?.value ?? 0n;
    this.appendTx = db.transaction((entries: readonly LogEntryDraft[], rows: readonly RowWrite[]) => {
      for (const w of rows) {
        const { table, rowId } = w.state;
        const body = encodeRow(w.state);
        const changed =
          w.expectedVersion === 0
            ? this.stmts.insertRow.run(table, rowId, body).changes
            : this.stmts.updateRow.run(w.expectedVersion + 1, body, table, rowId, w.expectedVersion).changes;
        if (changed !== 1) throw new Conflict();
      }
      // Read the head inside the write transaction: it is the serialization point.
      let seq = this.stmts.head.get()?.value ?? 0n;
      for (const e of entries) {
        seq += 1n;
        try {
          this.stmts.insertLog.run(
            seq,
            e.delta.deltaId,
            encodeDelta(e.delta),
            encodeSnapshot(e.before),
            encodeSnapshot(e.after),
            e.fresh ? 1 : 0,
          );
        } catch (err) {
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new Conflict();
          throw err;
        }
      }
      this.stmts.setHead.run(seq);
      return seq;
    });
  }

  existing(deltaIds: readonly string[]): Promise<Set<string>> {
    if (deltaIds.length === 0) return Promise.resolve(new Set());
    const rows = this.stmts.existing.all(JSON.stringify(deltaIds));
    return Promise.resolve(new Set(rows.map((r) => r.delta_id)));
  }

  loadRows(keys: readonly { table: string; rowId: string }[]): Promise<Map<string, StoredRow>> {
    const out = new Map<string, StoredRow>();
    for (const k of keys) {
      const row = this.stmts.loadRow.get(k.table, k.rowId);
      if (row !== undefined) {
        out.set(rowKey(k.table, k.rowId), { version: row.version, state: decodeRow(k.table, k.rowId, row.state) });
      }
    }
    return Promise.resolve(out);
  }

  append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    try {
      this.seq = this.appendTx(entries, rows);
      return Promise.resolve({ ok: true, lastSeq: this.seq });
    } catch (err) {
      if (err instanceof Conflict) return Promise.resolve({ ok: false, reason: 'conflict' });
      return Promise.reject(err as Error);
    }
  }

  read(after: bigint, limit: number): Promise<ReadResult> {
    const rows = this.stmts.read.all(after, limit + 1);
    const hasMore = rows.length > limit;
    const entries: LogEntry[] = [];
    for (let i = 0; i < Math.min(limit, rows.length); i++) {
      const r = rows[i] as (typeof rows)[number];
      entries.push({
        seq: r.seq,
        delta: decodeDelta(r.body),
        before: decodeSnapshot(r.before),
        after: decodeSnapshot(r.after),
        fresh: r.fresh === 1n,
      });
    }
    const last = entries.length > 0 ? (entries[entries.length - 1] as LogEntry).seq : after;
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
