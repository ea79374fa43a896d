import Database from 'better-sqlite3';
import type { Hlc } from '../hlc.ts';
import { FORGOTTEN, type AppendResult, type DeltaBuffer, type LogEntry, type LogEntryDraft, type ReadResult, type RowRef, type RowWrite, type StoredRow } from '../engine/ports.ts';
import { Packer, packRow, packSegment, SegmentReader, unpackRow } from '../codec/storage.ts';
import { BackgroundCheckpointer } from './sqlite-checkpointer.ts';
import { packStamps, unpackStamps } from '../codec/stamps.ts';
import { migrateFromV1, migrateFromV2 } from './sqlite-migrate.ts';

export interface SqliteBufferOptions {
  /** File path, or ':memory:'. */
  path: string;
  /**
   * 'full' fsyncs every commit (survives power loss); 'normal' survives a
   * killed process but may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal';
  /**
   * 'background' runs WAL checkpoints on a worker thread (a server: commits
   * stay short); 'auto' (default) leaves them to SQLite, inside commits.
   */
  checkpoint?: 'auto' | 'background';
}

class Conflict extends Error {}

/**
 * PRAGMA user_version of the layout below (1 was the layout keyed by delta
 * id; 2 kept one ls_stamps row per delta).
 */
export const LAYOUT_VERSION = 3;

/**
 * ls_log holds one row per append: a segment of the entries it appended,
 * which have consecutive seqs from `first_seq` (core/codec/storage.ts
 * packSegment). A pull reads a few large rows instead of one row per entry.
 * ls_stamp_runs deduplicates: one row per (append, client) holds that
 * client's (hlc, seq) pairs packed (core/codec/stamps.ts), keyed by its
 * highest hlc. A client's hlcs only grow, so a new append's run lies above
 * every stored run of its client, and checking it is one range lookup that
 * finds nothing; a retry finds the run it repeats. (Layout 2 kept an index
 * row per delta: about 13% of an append's CPU.) Hlcs are stored minus 2^63:
 * the u64 as a signed integer, in the same order. ls_rows holds the merged rows (packRow). ls_meta 'head' is the
 * last seq handed out: seqs are never reused, even if an entry is gone (see
 * sqlite-migrate.ts).
 */
export const LAYOUT = `
CREATE TABLE IF NOT EXISTS ls_log (
  first_seq INTEGER PRIMARY KEY,
  count INTEGER NOT NULL,
  body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ls_stamp_runs (
  client_id TEXT NOT NULL,
  max_hlc INTEGER NOT NULL,
  min_hlc INTEGER NOT NULL,
  stamps BLOB NOT NULL,
  PRIMARY KEY (client_id, max_hlc)
) WITHOUT ROWID;
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

interface Chunk {
  readonly stmt: Database.Statement<unknown[], unknown>;
  readonly params: unknown[];
}

/**
 * The embedded default buffer: one SQLite file in WAL mode. Appends run in
 * one immediate write transaction, which is the serialization point for
 * server order.
 */
export class SqliteBuffer implements DeltaBuffer {
  private readonly db: Database.Database;
  private seq: bigint;
  private readonly packer = new Packer();
  private checkpointer: BackgroundCheckpointer | null = null;
  private readonly stmts;
  /** Multi-row statements by kind and row count, prepared on first use. */
  private readonly chunked = new Map<string, Chunk>();
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
    if (options.checkpoint === 'background' && options.path !== ':memory:') {
      // SQLite still checkpoints by itself if the worker falls far behind (40 MiB of WAL).
      db.pragma('wal_autocheckpoint = 10000');
      this.checkpointer = new BackgroundCheckpointer(options.path, 100);
    }
    this.stmts = {
      /** Runs of a client that may hold an hlc in [lo, hi]. */
      stampRuns: db
        .prepare<[string, bigint, bigint], [Buffer]>('SELECT stamps FROM ls_stamp_runs WHERE client_id = ? AND max_hlc >= ? AND min_hlc <= ?')
        .raw(true),
      insertStampRun: db.prepare<[string, bigint, bigint, Uint8Array]>(
        'INSERT INTO ls_stamp_runs (client_id, max_hlc, min_hlc, stamps) VALUES (?, ?, ?, ?)',
      ),
      /** The segment that holds `seq`, if any: the last one starting at or before it. */
      segmentAt: db
        .prepare<[bigint], [bigint, Buffer]>('SELECT first_seq, body FROM ls_log WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1')
        .raw(true)
        .safeIntegers(true),
      segmentsAfter: db
        .prepare<[bigint, number], [bigint, Buffer]>('SELECT first_seq, body FROM ls_log WHERE first_seq > ? ORDER BY first_seq LIMIT ?')
        .raw(true)
        .safeIntegers(true),
      insertSegment: db.prepare<[number, number, Uint8Array]>('INSERT INTO ls_log (first_seq, count, body) VALUES (?, ?, ?)'),
      head: db.prepare<[], [bigint]>("SELECT value FROM ls_meta WHERE key = 'head'").raw(true).safeIntegers(true),
      meta: db.prepare<[string], [bigint]>('SELECT value FROM ls_meta WHERE key = ?').raw(true).safeIntegers(true),
      setMeta: db.prepare<[string, bigint]>(
        'INSERT INTO ls_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      /** Segments entirely at or below a seq: first_seq + count - 1 <= ?. */
      trimmable: db
        .prepare<[bigint], [bigint, bigint]>('SELECT first_seq, count FROM ls_log WHERE first_seq + count - 1 <= ? ORDER BY first_seq')
        .raw(true)
        .safeIntegers(true),
      deleteSegmentsTo: db.prepare<[bigint]>('DELETE FROM ls_log WHERE first_seq + count - 1 <= ?'),
      setHead: db.prepare<[number]>(
        "INSERT INTO ls_meta (key, value) VALUES ('head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
    };
    this.seq = this.stmts.head.get()?.[0] ?? 0n;
    this.appendTx = db.transaction((entries: readonly LogEntryDraft[], rows: readonly RowWrite[]) => this.write(entries, rows));
  }

  /**
   * A statement over `n` rows of `tuple`, cached per kind and size, with a
   * parameter array of its size to fill (reused: no array per call).
   */
  private chunk(kind: string, n: number, build: (values: string) => string, tuple: string): Chunk {
    const key = `${kind}:${n}`;
    let c = this.chunked.get(key);
    if (c === undefined) {
      const stmt = this.db.prepare(build(Array.from({ length: n }, () => tuple).join(', ')));
      if (stmt.reader) stmt.raw(true);
      c = { stmt, params: new Array<unknown>(n * (tuple.split('?').length - 1)) };
      this.chunked.set(key, c);
    }
    return c;
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
    // One range query finds every run that may hold a stamp of this batch:
    // usually none (new deltas lie above everything stored), or the run of
    // the batch itself on a retry.
    const byHlc = this.storedStamps(clientId, min, max);
    if (byHlc.size === 0) return Promise.resolve(out);
    const seqs = new Array<bigint | undefined>(hlcs.length);
    for (let i = 0; i < hlcs.length; i++) {
      const seq = byHlc.get(hlcs[i] as Hlc);
      if (seq !== undefined) seqs[i] = BigInt(seq);
    }
    // Stored stamps mean duplicates (or a reused stamp). A stamp whose entry
    // was trimmed after a flush is a duplicate whose id is no longer kept.
    const floor = this.floorSeq();
    const ids = this.deltaIdsAt(seqs.filter((seq): seq is bigint => seq !== undefined && seq > floor));
    for (let i = 0; i < hlcs.length; i++) {
      const seq = seqs[i];
      if (seq !== undefined) out[i] = seq <= floor ? FORGOTTEN : (ids.get(seq) ?? null);
    }
    return Promise.resolve(out);
  }

  /** The delta ids stored at these seqs: each segment is read once, walked forward. */
  private deltaIdsAt(seqs: bigint[]): Map<bigint, string> {
    const ids = new Map<bigint, string>();
    seqs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let first = 0n;
    let reader: SegmentReader | null = null;
    for (const seq of seqs) {
      if (ids.has(seq)) continue;
      if (reader === null || seq >= first + BigInt(reader.count)) {
        const segment = this.stmts.segmentAt.get(seq);
        if (segment === undefined) continue;
        first = segment[0];
        reader = new SegmentReader(segment[1]);
      }
      const k = Number(seq - first);
      if (k >= reader.count) continue;
      reader.skip(k - reader.index);
      ids.set(seq, reader.next(seq).delta.deltaId);
    }
    return ids;
  }

  /** Stored stamps of a client with hlc in [lo, hi]: hlc -> seq. */
  private storedStamps(clientId: string, lo: Hlc, hi: Hlc): Map<Hlc, number> {
    const byHlc = new Map<Hlc, number>();
    for (const [blob] of this.stmts.stampRuns.all(clientId, lo - HLC_OFFSET, hi - HLC_OFFSET)) {
      const run = unpackStamps(blob);
      for (let i = 0; i < run.hlcs.length; i++) {
        const h = run.hlcs[i] as Hlc;
        if (h >= lo && h <= hi) byHlc.set(h, run.seqs[i] as number);
      }
    }
    return byHlc;
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
        const { stmt, params } = this.chunk(
          'load',
          n,
          (list) => `SELECT row_id, version, state FROM ls_rows WHERE tbl = ? AND row_id IN (${list})`,
          '?',
        );
        const table1 = [table];
        for (let j = 0; j < n; j++) params[j] = (keys[idx[start + j] as number] as RowRef).rowId;
        const found = stmt.all(table1, params) as [string, number, Buffer][];
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
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
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
      const { stmt, params } = this.chunk(
        'insertRows',
        n,
        (list) => `INSERT INTO ls_rows (tbl, row_id, version, state) VALUES ${list} ON CONFLICT DO NOTHING`,
        '(?, ?, 1, ?)',
      );
      p.reset();
      for (let j = 0, k = 0; j < n; j++) {
        const w = fresh[start + j] as RowWrite;
        const at = p.pos;
        packRow(p, w.state);
        params[k++] = w.state.table;
        params[k++] = w.state.rowId;
        params[k++] = p.view(at);
      }
      if (stmt.run(params).changes !== n) throw new Conflict();
    }
    for (let start = 0; start < known.length; start += CHUNK) {
      const n = Math.min(CHUNK, known.length - start);
      const { stmt, params } = this.chunk(
        'updateRows',
        n,
        (list) =>
          `WITH v (tbl, row_id, expected, state) AS (VALUES ${list}) ` +
          'UPDATE ls_rows SET version = v.expected + 1, state = v.state FROM v ' +
          'WHERE ls_rows.tbl = v.tbl AND ls_rows.row_id = v.row_id AND ls_rows.version = v.expected',
        '(?, ?, ?, ?)',
      );
      p.reset();
      for (let j = 0, k = 0; j < n; j++) {
        const w = known[start + j] as RowWrite;
        const at = p.pos;
        packRow(p, w.state);
        params[k++] = w.state.table;
        params[k++] = w.state.rowId;
        params[k++] = w.expectedVersion;
        params[k++] = p.view(at);
      }
      if (stmt.run(params).changes !== n) throw new Conflict();
    }

    // Read the head inside the write transaction: it is the serialization point.
    const head = Number(this.stmts.head.get()?.[0] ?? 0n);
    if (head + entries.length > Number.MAX_SAFE_INTEGER) throw new RangeError('log sequence exhausted');
    if (entries.length > 0) {
      p.reset();
      packSegment(p, entries);
      this.stmts.insertSegment.run(head + 1, entries.length, p.view(0));
      this.writeStamps(entries, head + 1);
    }
    const last = head + entries.length;
    this.stmts.setHead.run(last);
    return BigInt(last);
  }

  /**
   * One stamp run per client of the append (a push has one client). A stamp
   * stored before or repeated in the batch is a conflict.
   */
  private writeStamps(entries: readonly LogEntryDraft[], firstSeq: number): void {
    const first = (entries[0] as LogEntryDraft).delta.clientId;
    let mixed = false;
    for (const e of entries) if (e.delta.clientId !== first) mixed = true;
    if (!mixed) {
      this.writeRun(first, entries, Array.from({ length: entries.length }, (_, i) => i), firstSeq);
      return;
    }
    const byClient = new Map<string, number[]>();
    entries.forEach((e, i) => {
      let idx = byClient.get(e.delta.clientId);
      if (idx === undefined) byClient.set(e.delta.clientId, (idx = []));
      idx.push(i);
    });
    for (const [clientId, idx] of byClient) this.writeRun(clientId, entries, idx, firstSeq);
  }

  private writeRun(clientId: string, entries: readonly LogEntryDraft[], idx: number[], firstSeq: number): void {
    const hlcOf = (i: number): Hlc => (entries[i] as LogEntryDraft).delta.hlc;
    let sorted = true;
    for (let k = 1; k < idx.length; k++) if (hlcOf(idx[k] as number) <= hlcOf(idx[k - 1] as number)) sorted = false;
    if (!sorted) {
      idx.sort((a, b) => (hlcOf(a) < hlcOf(b) ? -1 : hlcOf(a) > hlcOf(b) ? 1 : 0));
      for (let k = 1; k < idx.length; k++) if (hlcOf(idx[k] as number) === hlcOf(idx[k - 1] as number)) throw new Conflict(); // repeated in the batch
    }
    const hlcs = idx.map(hlcOf);
    const lo = hlcs[0] as Hlc;
    const hi = hlcs[hlcs.length - 1] as Hlc;
    const stored = this.storedStamps(clientId, lo, hi);
    for (const h of hlcs) if (stored.has(h)) throw new Conflict();
    const stamps = packStamps({ hlcs, seqs: idx.map((i) => firstSeq + i) });
    this.stmts.insertStampRun.run(clientId, hi - HLC_OFFSET, lo - HLC_OFFSET, stamps);
  }

  read(after: bigint, limit: number, maxBytes = Number.POSITIVE_INFINITY): Promise<ReadResult> {
    const entries: LogEntry[] = [];
    let hasMore = false;
    let bytes = 0;
    const from = after + 1n;
    // Take entries from one segment until the page is full; true once it is full and more remain.
    const take = (first: bigint, body: Buffer): boolean => {
      const reader = new SegmentReader(body);
      bytes += body.length;
      let seq = first;
      if (from > first) {
        const skip = from - first;
        if (skip >= BigInt(reader.count)) return false;
        reader.skip(Number(skip));
        seq = from;
      }
      while (reader.index < reader.count) {
        if (entries.length === limit) return true;
        entries.push(reader.next(seq));
        seq += 1n;
      }
      return false;
    };
    let cursor = after;
    const first = this.stmts.segmentAt.get(from);
    if (first !== undefined) {
      hasMore = take(first[0], first[1]);
      cursor = first[0];
    }
    while (!hasMore) {
      const next = this.stmts.segmentsAfter.all(cursor, 4);
      for (const [firstSeq, body] of next) {
        // The page holds its byte budget: this append (a whole one, after the cursor) waits for the next page.
        if (bytes >= maxBytes && entries.length > 0) {
          hasMore = true;
          break;
        }
        cursor = firstSeq;
        if ((hasMore = take(firstSeq, body))) break;
      }
      if (next.length < 4) break;
    }
    const last = entries.length > 0 ? (entries[entries.length - 1] as LogEntry).seq : after;
    return Promise.resolve({ entries, lastSeq: last, hasMore });
  }

  /** Read from the file, not this connection's cache: another process or thread may be the writer. */
  head(): Promise<bigint> {
    return Promise.resolve(this.stmts.head.get()?.[0] ?? 0n);
  }

  private metaValue(key: string): bigint {
    return this.stmts.meta.get(key)?.[0] ?? 0n;
  }

  private floorSeq(): bigint {
    return this.metaValue('floor');
  }

  flushedThrough(): Promise<bigint> {
    return Promise.resolve(this.metaValue('flushed'));
  }

  markFlushed(seq: bigint): Promise<void> {
    let beyond = false;
    this.db.transaction(() => {
      if (seq > this.metaValue('head')) beyond = true;
      else if (seq > this.metaValue('flushed')) this.stmts.setMeta.run('flushed', seq);
    }).immediate();
    return beyond ? Promise.reject(new RangeError('cannot mark beyond the head as flushed')) : Promise.resolve();
  }

  /**
   * Delete whole segments at or below min(upTo, flushed). The floor is the
   * last deleted seq; ls_stamp_runs keeps every stamp, so a re-sent delta of a
   * trimmed range is still a duplicate (existing() answers FORGOTTEN).
   */
  trim(upTo: bigint): Promise<void> {
    this.db.transaction(() => {
      const flushed = this.metaValue('flushed');
      const to = upTo < flushed ? upTo : flushed;
      const segments = this.stmts.trimmable.all(to);
      const last = segments.at(-1);
      if (last === undefined) return;
      const floor = last[0] + last[1] - 1n;
      this.stmts.deleteSegmentsTo.run(floor);
      if (floor > this.floorSeq()) this.stmts.setMeta.run('floor', floor);
    }).immediate();
    return Promise.resolve();
  }

  floor(): Promise<bigint> {
    return Promise.resolve(this.floorSeq());
  }

  async close(): Promise<void> {
    const checkpointer = this.checkpointer;
    this.checkpointer = null;
    await checkpointer?.close();
    if (this.db.open) this.db.close();
  }
}

/** Create the layout, or bring an older file up to it. */
function openLayout(db: Database.Database): void {
  const readVersion = (): number => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > LAYOUT_VERSION) {
      throw new Error(`buffer file has layout ${version}; this LakeSync reads up to ${LAYOUT_VERSION}`);
    }
    return version;
  };
  if (readVersion() === LAYOUT_VERSION) return;
  db.transaction(() => {
    // Read again under the write lock: another connection (the server's lake
    // worker, `lakesync flush`) may have migrated the file while this one waited.
    const version = readVersion();
    if (version === LAYOUT_VERSION) return;
    const hasV1 = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ls_log'").get() !== undefined;
    if (version === 2) migrateFromV2(db, LAYOUT);
    else if (hasV1) migrateFromV1(db, LAYOUT);
    else db.exec(LAYOUT);
    db.pragma(`user_version = ${LAYOUT_VERSION}`);
  }).immediate();
}
