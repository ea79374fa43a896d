import type Database from 'better-sqlite3';
import {
  LakeSyncError,
  SchemaRegistry,
  applyDelta,
  decodePullResponse,
  emptyRow,
  isLive,
  mergeRows,
  type Change,
  type CheckpointInfo,
  type ColumnType,
  type Delta,
  type RowState,
  type Schema,
  type WireFormat,
} from '../../core/index.ts';
import { decodeDelta, decodeRow, encodeDelta, encodeRow } from '../../core/codec/storage.ts';
import { ChunkReader } from './checkpoint-chunk.ts';
import { AppTable, SQL_TYPES, STATE_COLUMN, quote, toSql } from './app-table.ts';
import { applyNewer, clientPart, decodeState, encodeState, fitsColumn, hlcKey, newerThanAll, storedClient } from './state-text.ts';

/**
 * Layout of the local database. 1: every row's merge state as a blob in
 * _lakesync_rows. 2: a live row's state is text in its app row (_ls_state);
 * _lakesync_rows keeps only rows the app tables do not show (deleted rows,
 * tables this client's schema does not have yet).
 */
const STORE_FORMAT = 2;

/** Meta key: '1' while a refused write's effect is still merged locally (see reject). */
const RESET_PENDING = 'reset_pending';
/** `<checkpoint id>:<next chunk index>` while a checkpoint is being loaded (see LakeSyncClient.loadCheckpoint). */
const CHECKPOINT_PROGRESS = 'checkpoint_progress';
/** The checkpoint a load under way follows (JSON of its CheckpointInfo): resumed even once a newer one is out. */
const CHECKPOINT_LOADING = 'checkpoint_loading';

/** A chunk's place in its checkpoint, recorded with it. */
export interface ChunkProgress {
  readonly checkpointId: string;
  /** The index of the chunk to load after this one. */
  readonly next: number;
}

const SYSTEM_TABLES = `
CREATE TABLE IF NOT EXISTS _lakesync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _lakesync_rows (
  tbl TEXT NOT NULL, row_id TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tbl, row_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _lakesync_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, delta BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS _lakesync_rejected (
  seq INTEGER PRIMARY KEY, delta BLOB NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL
);
`;

/**
 * The rows of one table that a page touches, numbered by first appearance,
 * and where each one's state is: in its app row (`rowid`, with its state
 * text, null if the app row has none) and/or in _lakesync_rows (`dead`).
 * `rowid` is undefined while not looked up: rows whose first change is an
 * insert are not preloaded, the insert tries its luck (INSERT ... DO NOTHING)
 * and looks the row up only if it is there already. Kept up to date as the
 * page is applied.
 */
interface TablePage {
  readonly table: string;
  readonly app: AppTable | undefined;
  readonly ids: string[];
  readonly index: Map<string, number>;
  readonly rowid: (number | bigint | null | undefined)[];
  readonly text: (string | null)[];
  readonly dead: (RowState | null)[];
}

/** Per change: its table's page and its row's number in it. */
interface Page {
  readonly tables: TablePage[];
  readonly slot: Int32Array;
}

export interface OutboxItem {
  readonly seq: number;
  readonly delta: Delta;
}

function changeTable(c: Change): string {
  return c.kind === 'delta' ? c.delta.table : c.kind === 'row' ? c.row.table : c.table;
}

function changeRowId(c: Change): string {
  return c.kind === 'delta' ? c.delta.rowId : c.kind === 'row' ? c.row.rowId : c.rowId;
}

/**
 * The client's local database: the app's tables (plain SQL for reads), the
 * merge state of every row, the outbox and sync metadata. Every method that
 * writes runs in one SQLite transaction.
 */
export class LocalStore {
  registry: SchemaRegistry;
  private tables = new Map<string, AppTable>();
  private readonly stmts;
  /** The client id of the last delta applied fast, as stored and as a group's CLIENT. */
  private lastClient = '';
  private lastStored = '';
  private lastClientPart = clientPart('', null);

  constructor(
    readonly db: Database.Database,
    schema: Schema,
  ) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(SYSTEM_TABLES);
    this.stmts = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM _lakesync_meta WHERE key = ?'),
      setMeta: db.prepare<[string, string]>(
        'INSERT INTO _lakesync_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      getRow: db.prepare<[string, string], { state: Buffer }>('SELECT state FROM _lakesync_rows WHERE tbl = ? AND row_id = ?'),
      getRows: db.prepare<[string, string], { row_id: string; state: Buffer }>(
        'SELECT row_id, state FROM _lakesync_rows WHERE tbl = ? AND row_id IN (SELECT value FROM json_each(?))',
      ),
      anyRows: db.prepare<[string], number>('SELECT EXISTS (SELECT 1 FROM _lakesync_rows WHERE tbl = ?)').pluck(),
      tableRows: db.prepare<[string], { row_id: string; state: Buffer }>('SELECT row_id, state FROM _lakesync_rows WHERE tbl = ?'),
      putRow: db.prepare<[string, string, Uint8Array]>(
        'INSERT INTO _lakesync_rows (tbl, row_id, state) VALUES (?, ?, ?) ON CONFLICT (tbl, row_id) DO UPDATE SET state = excluded.state',
      ),
      dropRow: db.prepare<[string, string]>('DELETE FROM _lakesync_rows WHERE tbl = ? AND row_id = ?'),
      enqueue: db.prepare<[Uint8Array]>('INSERT INTO _lakesync_outbox (delta) VALUES (?)'),
      peek: db.prepare<[number], { seq: number; delta: Buffer }>('SELECT seq, delta FROM _lakesync_outbox ORDER BY seq LIMIT ?'),
      peekFrom: db.prepare<[number], { seq: number; delta: Buffer }>('SELECT seq, delta FROM _lakesync_outbox WHERE seq >= ? ORDER BY seq'),
      dequeue: db.prepare<[number]>('DELETE FROM _lakesync_outbox WHERE seq <= ?'),
      pending: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM _lakesync_outbox'),
      reject: db.prepare<[string, string, string, number]>(
        'INSERT INTO _lakesync_rejected (seq, delta, code, message, at) SELECT seq, delta, ?, ?, ? FROM _lakesync_outbox WHERE seq = ?',
      ),
      dequeueOne: db.prepare<[number]>('DELETE FROM _lakesync_outbox WHERE seq = ?'),
      restamp: db.prepare<[Uint8Array, number]>('UPDATE _lakesync_outbox SET delta = ? WHERE seq = ?'),
    };
    this.registry = new SchemaRegistry(schema);
    this.migrate(schema);
  }

  /**
   * Create the app's tables, add columns a newer schema version brought
   * (client ALTER TABLE), and upgrade a format-1 database. Rows pulled
   * before a table or column existed locally are backfilled from their
   * merge state. One transaction: a crash leaves the old layout intact.
   */
  migrate(schema: Schema): void {
    const registry = new SchemaRegistry(schema);
    const format = Number(this.getMeta('store_format') ?? '1');
    if (format > STORE_FORMAT) {
      throw new LakeSyncError('INTERNAL', `local database format ${format} is newer than this SDK (${STORE_FORMAT})`);
    }
    const tables = new Map<string, AppTable>();
    this.db.transaction(() => {
      const changed: AppTable[] = [];
      for (const table of schema.tables) {
        const q = quote(table.name);
        let isNew = false;
        if (this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table.name) === undefined) {
          this.db.exec(`CREATE TABLE ${q} (id TEXT PRIMARY KEY NOT NULL, ${quote(STATE_COLUMN)} TEXT)`);
          isNew = true;
        }
        const existing = new Set((this.db.prepare(`PRAGMA table_info(${q})`).all() as { name: string }[]).map((c) => c.name));
        // A format-1 table: its rows' states are still in _lakesync_rows.
        let moved = isNew || !existing.has(STATE_COLUMN);
        if (!existing.has(STATE_COLUMN)) this.db.exec(`ALTER TABLE ${q} ADD COLUMN ${quote(STATE_COLUMN)} TEXT`);
        for (const col of table.columns) {
          if (existing.has(col.name)) continue;
          moved = true;
          this.db.exec(`ALTER TABLE ${q} ADD COLUMN ${quote(col.name)} ${SQL_TYPES[col.type]}`);
        }
        // Mask bit numbers: stable for the life of the database, whatever order a schema lists columns in.
        const layoutKey = `layout:${table.name}`;
        const layout = JSON.parse(this.getMeta(layoutKey) ?? '[]') as string[];
        const known = new Set(layout);
        for (const col of table.columns) if (!known.has(col.name)) layout.push(col.name);
        if (layout.length > known.size) this.setMeta(layoutKey, JSON.stringify(layout));
        const t = new AppTable(this.db, table, layout);
        tables.set(table.name, t);
        if (moved) changed.push(t);
      }
      for (const t of changed) this.backfill(t);
      this.setMeta('schema', JSON.stringify(schema));
      this.setMeta('store_format', String(STORE_FORMAT));
    })();
    this.registry = registry;
    this.tables = tables;
  }

  /**
   * After a table or columns appeared (or the upgrade from format 1): move
   * live rows from _lakesync_rows into the app table, and write the values
   * of new columns that the state text held inline.
   */
  private backfill(t: AppTable): void {
    for (const r of this.stmts.tableRows.all(t.name)) {
      const row = decodeRow(t.name, r.row_id, r.state);
      if (!isLive(row)) continue;
      const found = t.find(r.row_id);
      const state = encodeState(row, t.layout);
      if (found === undefined) t.insert(row, state);
      else t.update(found.rowid, undefined, row, state);
      this.stmts.dropRow.run(t.name, r.row_id);
    }
    for (const r of t.rowsWithInlineValues()) {
      const row = t.resolve(r.rowid, decodeState(t.name, r.id, r.state, t.layout));
      t.update(r.rowid, undefined, row, encodeState(row, t.layout));
    }
  }

  getMeta(key: string): string | undefined {
    return this.stmts.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  /** A local write: merge into the row, update the app table and enqueue the delta, atomically. */
  writeLocal(delta: Delta, hlcToPersist: bigint): void {
    this.db.transaction(() => {
      this.apply([{ kind: 'delta', delta }]);
      this.stmts.enqueue.run(encodeDelta(delta));
      this.setMeta('hlc', hlcToPersist.toString());
    })();
  }

  /**
   * Replace outbox deltas by the same writes under new stamps (the server
   * refused a stamp as reused): the rows take the new stamps, atomically.
   */
  restamp(items: readonly OutboxItem[], hlcToPersist: bigint): void {
    this.db.transaction(() => {
      for (const { seq, delta } of items) {
        this.apply([{ kind: 'delta', delta }]);
        this.stmts.restamp.run(encodeDelta(delta), seq);
      }
      this.setMeta('hlc', hlcToPersist.toString());
    })();
  }

  /** The outbox from `seq` on, in order. */
  outboxFrom(seq: number): OutboxItem[] {
    return this.stmts.peekFrom.all(seq).map((r) => ({ seq: r.seq, delta: decodeDelta(r.delta) }));
  }

  /** Apply one pulled page and advance the cursor (and persist the clock), atomically. */
  applyRemote(changes: readonly Change[], cursor: string, hlcToPersist?: bigint): void {
    this.db.transaction(() => {
      this.apply(changes);
      this.setMeta('cursor', cursor);
      if (hlcToPersist !== undefined) this.setMeta('hlc', hlcToPersist.toString());
    })();
  }

  private apply(changes: readonly Change[]): void {
    const page = this.preload(changes);
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i] as Change;
      const tp = page.tables[i] as TablePage;
      const k = page.slot[i] as number;
      if (c.kind === 'delta' && this.applyFast(c.delta, tp, k)) continue;
      if (c.kind === 'row' && this.applyNewRow(c.row, tp, k)) continue;
      this.applyMerge(c, tp, k);
    }
  }

  /** Find where the rows the page touches are stored: up to three queries per table. */
  private preload(changes: readonly Change[]): Page {
    const byName = new Map<string, TablePage>();
    const tables = new Array<TablePage>(changes.length);
    const slot = new Int32Array(changes.length);
    let tp: TablePage | undefined;
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i] as Change;
      const table = changeTable(c);
      if (tp?.table !== table) {
        tp = byName.get(table);
        if (tp === undefined) {
          const app = this.tables.get(table);
          byName.set(table, (tp = { table, app, ids: [], index: new Map(), rowid: [], text: [], dead: [] }));
        }
      }
      const rowId = changeRowId(c);
      let k = tp.index.get(rowId);
      if (k === undefined) {
        tp.index.set(rowId, (k = tp.ids.length));
        tp.ids.push(rowId);
        // Known absent until the app table says otherwise, except where an insert will find out.
        tp.rowid.push(c.kind === 'delta' && c.delta.op === 'insert' && tp.app !== undefined ? undefined : null);
        tp.text.push(null);
        tp.dead.push(null);
      }
      tables[i] = tp;
      slot[i] = k;
    }
    for (const p of byName.values()) {
      if (p.app !== undefined) {
        const look = p.ids.filter((_, k) => p.rowid[k] === null);
        if (look.length > 0) {
          for (const [j, rowid, text] of p.app.preload(JSON.stringify(look))) {
            const k = p.index.get(look[j] as string) as number;
            p.rowid[k] = rowid;
            p.text[k] = text;
          }
        }
      }
      if (this.stmts.anyRows.get(p.table) === 0) continue;
      for (const r of this.stmts.getRows.all(p.table, JSON.stringify(p.ids))) {
        p.dead[p.index.get(r.row_id) as number] = decodeRow(p.table, r.row_id, r.state);
      }
    }
    return { tables, slot };
  }

  /** Look up a row the preload left out. */
  private locate(tp: TablePage, k: number): void {
    if (tp.rowid[k] !== undefined) return;
    const found = tp.app?.find(tp.ids[k] as string);
    tp.rowid[k] = found?.rowid ?? null;
    tp.text[k] = found?.state ?? null;
  }

  /**
   * The common cases without decoding any state: an insert of a row this
   * client has never seen, and an insert or update of a live row newer than
   * everything in it (it wins every register, see state-text applyNewer).
   * Returns false to leave the delta to applyMerge.
   */
  private applyFast(d: Delta, tp: TablePage, k: number): boolean {
    const t = tp.app;
    if (t === undefined || d.op === 'delete') return false;
    const set = t.columnSet(d.columns);
    if (set === null) return false;
    const n = set.names.length;
    if (n === 0 && d.op === 'update') return false;
    const params = set.params;
    for (let i = 0; i < n; i++) {
      const v = d.columns[set.names[i] as string] ?? null;
      if (!fitsColumn(set.types[i] as ColumnType, v)) return false;
      params[i] = toSql(v);
    }
    if (d.clientId !== this.lastClient) {
      this.lastClient = d.clientId;
      this.lastStored = storedClient(d.clientId);
      this.lastClientPart = clientPart(this.lastStored, null);
    }
    const key = hlcKey(d.hlc);
    const group = `${key}${d.op === 'insert' ? 'i' : 'u'}${this.lastClientPart}${set.mask};`;
    let rowid = tp.rowid[k];
    if ((rowid === null || rowid === undefined) && d.op === 'insert' && tp.dead[k] === null) {
      // A row never seen, unless the app table has it: then the insert does nothing.
      params[n] = group;
      params[n + 1] = d.rowId;
      const info = set.insert().run(params);
      if (info.changes === 1) {
        tp.rowid[k] = info.lastInsertRowid;
        tp.text[k] = group;
        return true;
      }
    }
    if (rowid === undefined) {
      this.locate(tp, k);
      rowid = tp.rowid[k];
    }
    if (rowid === null || rowid === undefined) return false; // an update alone makes no live row
    const text = tp.text[k] as string | null;
    if (text === null || tp.dead[k] !== null || !newerThanAll(key, text)) return false;
    const next = applyNewer(text, group, this.lastStored, set.mask, set.names, d.op === 'insert');
    params[n] = next;
    params[n + 1] = rowid;
    set.update.run(params);
    tp.text[k] = next;
    return true;
  }

  /**
   * A full row state for a row this client does not hold (checkpoint chunks,
   * rows entering the client's rules): merging it into nothing gives the
   * row itself, so it is inserted as it comes.
   */
  private applyNewRow(row: RowState, tp: TablePage, k: number): boolean {
    const t = tp.app;
    if (t === undefined || tp.rowid[k] !== null || tp.dead[k] !== null || !isLive(row)) return false;
    const state = encodeState(row, t.layout);
    tp.rowid[k] = t.insert(row, state);
    tp.text[k] = state;
    return true;
  }

  /** Any change, through core's merge (applyDelta, mergeRows) on the decoded state. */
  private applyMerge(c: Change, tp: TablePage, k: number): void {
    this.locate(tp, k);
    const { table, app: t } = tp;
    const rowId = tp.ids[k] as string;
    const rowid = tp.rowid[k] as number | bigint | null;
    const text = tp.text[k] as string | null;
    const dead = tp.dead[k] as RowState | null;
    // The state as the app row holds it (values stay IN_APP_ROW), if that is where it is.
    const inApp = t !== undefined && text !== null && dead === null ? decodeState(table, rowId, text, t.layout) : undefined;
    const current = dead ?? inApp;
    if (c.kind === 'evict') {
      if (rowid !== null) t?.remove(rowid);
      if (dead !== null) this.stmts.dropRow.run(table, rowId);
      tp.rowid[k] = tp.text[k] = tp.dead[k] = null;
      return;
    }
    const next = c.kind === 'delta' ? applyDelta(current, c.delta) : mergeRows(current ?? emptyRow(table, rowId), c.row);
    if (next === current) return;
    if (t !== undefined && isLive(next)) {
      const state = encodeState(next, t.layout);
      if (rowid === null) tp.rowid[k] = t.insert(next, state);
      else t.update(rowid, inApp, next, state);
      if (dead !== null) this.stmts.dropRow.run(table, rowId);
      tp.text[k] = state;
      tp.dead[k] = null;
      return;
    }
    // Not shown by an app table: the full state, values included, goes to _lakesync_rows.
    const full = t === undefined ? next : t.resolve(rowid, next);
    this.stmts.putRow.run(table, rowId, encodeRow(full));
    if (rowid !== null) t?.remove(rowid);
    tp.rowid[k] = tp.text[k] = null;
    tp.dead[k] = full;
  }

  /** The merge state of a row, with every value, or undefined if this client holds none. */
  loadRow(table: string, rowId: string): RowState | undefined {
    const t = this.tables.get(table);
    const found = t?.find(rowId);
    if (t !== undefined && found !== undefined && found.state !== null) {
      return t.resolve(found.rowid, decodeState(table, rowId, found.state, t.layout));
    }
    const r = this.stmts.getRow.get(table, rowId);
    return r === undefined ? undefined : decodeRow(table, rowId, r.state);
  }

  /**
   * Forget everything pulled (the cursor expired, a checkpoint will replace
   * it) but keep the writes not yet pushed: app rows and merge states are
   * cleared, then the outbox is applied again on the empty tables. One
   * transaction, so a crash leaves the old data. Returns the app tables
   * that had rows (the app is told they changed).
   */
  resetSynced(): string[] {
    const cleared: string[] = [];
    this.db.transaction(() => {
      for (const t of this.tables.values()) {
        if (this.db.prepare(`DELETE FROM "${t.name.replaceAll('"', '""')}"`).run().changes > 0) cleared.push(t.name);
      }
      this.db.prepare('DELETE FROM _lakesync_rows').run();
      const pending = this.stmts.peek.all(Number.MAX_SAFE_INTEGER).map((r) => decodeDelta(r.delta));
      for (const delta of pending) this.apply([{ kind: 'delta', delta }]);
      this.setMeta('cursor', '');
      this.setMeta(RESET_PENDING, '0');
      this.setMeta(CHECKPOINT_PROGRESS, '');
      this.setMeta(CHECKPOINT_LOADING, '');
    })();
    return cleared;
  }

  /** Remember the checkpoint a load starts on (before its first chunk). */
  setLoadingCheckpoint(info: CheckpointInfo): void {
    this.setMeta(CHECKPOINT_LOADING, JSON.stringify({ ...info, chunks: info.chunks.map((c) => ({ table: c.table, index: c.index, rows: c.rows })) }));
  }

  /** The checkpoint the load under way follows, if it got as far as a chunk (checkpointProgress). */
  loadingCheckpoint(): CheckpointInfo | null {
    const progress = this.checkpointProgress();
    const text = this.getMeta(CHECKPOINT_LOADING) ?? '';
    if (progress === null || text === '') return null;
    const info = JSON.parse(text) as CheckpointInfo;
    return info.checkpointId === progress.checkpointId ? info : null;
  }

  /** How far a checkpoint load got: its id and the next chunk index to load; null when none is under way. */
  checkpointProgress(): { readonly checkpointId: string; readonly next: number } | null {
    const text = this.getMeta(CHECKPOINT_PROGRESS) ?? '';
    const at = text.lastIndexOf(':');
    if (at <= 0 || this.getMeta('cursor')) return null;
    const next = Number(text.slice(at + 1));
    return Number.isSafeInteger(next) && next > 0 ? { checkpointId: text.slice(0, at), next } : null;
  }

  /** Apply a page of a checkpoint without moving the cursor (it moves once the whole checkpoint is in). */
  applyCheckpointPage(changes: readonly Change[], progress?: ChunkProgress): void {
    this.db.transaction(() => {
      this.apply(changes);
      this.raiseHlc(newestHlcOf(changes));
      this.recordProgress(progress);
    })();
  }

  private recordProgress(progress: ChunkProgress | undefined): void {
    if (progress !== undefined) this.setMeta(CHECKPOINT_PROGRESS, `${progress.checkpointId}:${progress.next}`);
  }

  /**
   * Raise the persisted clock to the newest stamp of a checkpoint chunk, in
   * the chunk's transaction: a client killed before the checkpoint is whole
   * restarts with a clock past every value it shows, so its next edit wins
   * over them (the cursor, and with it the clock, is stored only at the end).
   */
  private raiseHlc(hlc: bigint): void {
    const stored = this.getMeta('hlc');
    if (hlc > 0n && (stored === undefined || BigInt(stored) < hlc)) this.setMeta('hlc', hlc.toString());
  }

  /**
   * Apply a checkpoint chunk as the server sent it (a PullResponse of `row`
   * changes in `format`), like applyCheckpointPage; returns its number of
   * changes. Protobuf chunks take a fast path: rows new to the client go
   * straight from the bytes into the app table (ChunkReader, insertChunkRow)
   * and only the others are decoded and merged. Merging rows is
   * order-independent, so those can come after. If the bytes are not laid
   * out as our server writes them (or anything fails), the transaction rolls
   * back and the whole chunk goes the exact, slower way.
   */
  applyCheckpointChunk(format: WireFormat, body: Uint8Array, progress?: ChunkProgress): number {
    if (format === 'proto') {
      try {
        return this.db.transaction(() => {
          const n = this.applyChunkFast(body);
          this.recordProgress(progress);
          return n;
        })();
      } catch {
        // Redone below, where a real error surfaces as the protocol defines it.
      }
    }
    const changes = decodePullResponse(format, body).changes;
    this.applyCheckpointPage(changes, progress);
    this.lastChunkHlc = newestHlcOf(changes);
    return changes.length;
  }

  /** The greatest hlc in the last checkpoint chunk applied (the client's clock takes it in). */
  lastChunkHlc = 0n;

  private applyChunkFast(body: Uint8Array): number {
    const c = new ChunkReader(body);
    const later: number[] = [];
    const fast = new Map<string, AppTable | null>();
    let name: string | null = null;
    let t: AppTable | null = null;
    while (c.next()) {
      if (c.table !== name) {
        name = c.table;
        let got = fast.get(name);
        if (got === undefined) {
          // Rows in _lakesync_rows would need a lookup per row: that table goes the merge path.
          got = this.tables.get(name) ?? null;
          if (got !== null && this.stmts.anyRows.get(name) !== 0) got = null;
          fast.set(name, got);
        }
        t = got;
      }
      if (t === null || !t.insertChunkRow(c)) later.push(c.index);
    }
    if (later.length > 0) {
      const changes = decodePullResponse('proto', body).changes;
      this.apply(later.map((i) => changes[i] as Change));
    }
    this.lastChunkHlc = c.maxHlc();
    this.raiseHlc(this.lastChunkHlc);
    return c.index + 1;
  }

  outbox(limit: number): OutboxItem[] {
    return this.stmts.peek.all(limit).map((r) => ({ seq: r.seq, delta: decodeDelta(r.delta) }));
  }

  acknowledge(uptoSeq: number): void {
    this.stmts.dequeue.run(uptoSeq);
  }

  /**
   * Move a delta the server refused out of the outbox, keeping it for
   * inspection. Its effect stays merged into its row (last-writer-wins cannot
   * take it back out), so the synced state must be started over
   * (resetSynced): recorded in the same transaction, so a failure or crash
   * before the reset does not leave the refused write shown for good.
   */
  reject(seq: number, code: string, message: string): void {
    this.db.transaction(() => {
      this.stmts.reject.run(code, message, new Date().toISOString(), seq);
      this.stmts.dequeueOne.run(seq);
      this.setMeta(RESET_PENDING, '1');
    })();
  }

  /** Ask for resetSynced at the start of the next sync round (persisted: a restart still does it). */
  requestReset(): void {
    this.setMeta(RESET_PENDING, '1');
  }

  /** Whether a refused write (or a requested resync) still awaits resetSynced. */
  resetPending(): boolean {
    return this.getMeta(RESET_PENDING) === '1';
  }

  pendingCount(): number {
    return this.stmts.pending.get()?.n ?? 0;
  }
}

/**
 * The greatest hlc a page of changes carries: each delta's, and every stamp
 * of each row state. A client takes it into its clock (docs/protocol.md, HLC),
 * so what it writes next orders after everything it has seen, whatever clock
 * the gateway instance that served the page had.
 */
export function newestHlcOf(changes: readonly Change[]): bigint {
  let max = 0n;
  for (const c of changes) {
    if (c.kind === 'delta') {
      if (c.delta.hlc > max) max = c.delta.hlc;
    } else if (c.kind === 'row') {
      const r = c.row;
      if (r.inserted !== null && r.inserted.hlc > max) max = r.inserted.hlc;
      if (r.deleted !== null && r.deleted.hlc > max) max = r.deleted.hlc;
      for (const name in r.columns) {
        const h = (r.columns[name] as { stamp: { hlc: bigint } }).stamp.hlc;
        if (h > max) max = h;
      }
    }
  }
  return max;
}
