import type Database from 'better-sqlite3';
import {
  SchemaRegistry,
  applyDelta,
  emptyRow,
  mergeRows,
  rowKey,
  visibleValues,
  type Change,
  type ColumnSchema,
  type ColumnValue,
  type Delta,
  type RowState,
  type Schema,
} from '../../core/index.ts';
import { decodeDelta, decodeRow, encodeDelta, encodeRow } from '../../core/codec/storage.ts';

const SQL_TYPES: Readonly<Record<ColumnSchema['type'], string>> = {
  string: 'TEXT',
  integer: 'INTEGER',
  number: 'REAL',
  boolean: 'INTEGER',
  json: 'TEXT',
};

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

function quote(identifier: string): string {
  return `"${identifier}"`;
}

/** SQLite storage for column values: booleans as 0/1, JSON as text. */
function toSql(v: ColumnValue | undefined): string | number | bigint | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'object') return v.json;
  return v;
}

interface TableStatements {
  readonly upsert: Database.Statement<unknown[]>;
  readonly remove: Database.Statement<[string]>;
  readonly columns: readonly string[];
}

export interface OutboxItem {
  readonly seq: number;
  readonly delta: Delta;
}

/**
 * The client's local database: the app's tables (plain SQL for reads), the
 * merge state of every row, the outbox and sync metadata. Every method that
 * writes runs in one SQLite transaction.
 */
export class LocalStore {
  registry: SchemaRegistry;
  private tables = new Map<string, TableStatements>();
  private readonly stmts;

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
      putRow: db.prepare<[string, string, Uint8Array]>(
        'INSERT INTO _lakesync_rows (tbl, row_id, state) VALUES (?, ?, ?) ON CONFLICT (tbl, row_id) DO UPDATE SET state = excluded.state',
      ),
      dropRow: db.prepare<[string, string]>('DELETE FROM _lakesync_rows WHERE tbl = ? AND row_id = ?'),
      enqueue: db.prepare<[Uint8Array]>('INSERT INTO _lakesync_outbox (delta) VALUES (?)'),
      peek: db.prepare<[number], { seq: number; delta: Buffer }>('SELECT seq, delta FROM _lakesync_outbox ORDER BY seq LIMIT ?'),
      dequeue: db.prepare<[number]>('DELETE FROM _lakesync_outbox WHERE seq <= ?'),
      pending: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM _lakesync_outbox'),
      reject: db.prepare<[string, string, string, number]>(
        'INSERT INTO _lakesync_rejected (seq, delta, code, message, at) SELECT seq, delta, ?, ?, ? FROM _lakesync_outbox WHERE seq = ?',
      ),
      dequeueOne: db.prepare<[number]>('DELETE FROM _lakesync_outbox WHERE seq = ?'),
    };
    this.registry = new SchemaRegistry(schema);
    this.migrate(schema);
  }

  /** Create the app's tables, and add columns a newer schema version brought (client ALTER TABLE). */
  migrate(schema: Schema): void {
    const registry = new SchemaRegistry(schema);
    const changed = new Set<string>();
    this.db.transaction(() => {
      for (const table of schema.tables) {
        this.db.exec(`CREATE TABLE IF NOT EXISTS ${quote(table.name)} (id TEXT PRIMARY KEY NOT NULL)`);
        const existing = new Set(
          (this.db.prepare(`PRAGMA table_info(${quote(table.name)})`).all() as { name: string }[]).map((c) => c.name),
        );
        for (const col of table.columns) {
          if (!existing.has(col.name)) {
            changed.add(table.name);
            this.db.exec(`ALTER TABLE ${quote(table.name)} ADD COLUMN ${quote(col.name)} ${SQL_TYPES[col.type]}`);
          }
        }
      }
      this.setMeta('schema', JSON.stringify(schema));
    })();
    this.registry = registry;
    this.tables = new Map();
    for (const table of schema.tables) {
      const columns = table.columns.map((c) => c.name);
      const cols = ['id', ...columns].map(quote).join(', ');
      const params = ['?', ...columns.map(() => '?')].join(', ');
      const updates = columns.map((c) => `${quote(c)} = excluded.${quote(c)}`).join(', ');
      this.tables.set(table.name, {
        upsert: this.db.prepare(
          `INSERT INTO ${quote(table.name)} (${cols}) VALUES (${params}) ON CONFLICT (id) DO ${
            updates === '' ? 'NOTHING' : `UPDATE SET ${updates}`
          }`,
        ),
        remove: this.db.prepare(`DELETE FROM ${quote(table.name)} WHERE id = ?`),
        columns,
      });
    }
    // Backfill new tables/columns from merge state pulled before the migration.
    this.db.transaction(() => {
      const all = this.db.prepare<[string], { row_id: string; state: Buffer }>('SELECT row_id, state FROM _lakesync_rows WHERE tbl = ?');
      for (const table of changed) {
        for (const r of all.all(table)) this.writeAppRow(decodeRow(table, r.row_id, r.state));
      }
    })();
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
      const current = this.loadRow(delta.table, delta.rowId);
      const next = applyDelta(current, delta);
      this.store(next, current);
      this.stmts.enqueue.run(encodeDelta(delta));
      this.setMeta('hlc', hlcToPersist.toString());
    })();
  }

  /** Apply one pulled page and advance the cursor, atomically. */
  applyRemote(changes: readonly Change[], cursor: string): void {
    this.db.transaction(() => {
      const states = this.preload(changes);
      const before = new Map(states);
      const evicted = new Set<string>();
      for (const c of changes) {
        if (c.kind === 'evict') {
          const key = rowKey(c.table, c.rowId);
          states.set(key, undefined);
          evicted.add(key);
          continue;
        }
        // A table or column this client's schema does not know yet still gets
        // its merge state stored; migrate() backfills the app table from it.
        const table = c.kind === 'delta' ? c.delta.table : c.row.table;
        const key = c.kind === 'delta' ? rowKey(table, c.delta.rowId) : rowKey(table, c.row.rowId);
        const current = states.get(key);
        const next =
          c.kind === 'delta' ? applyDelta(current, c.delta) : mergeRows(current ?? emptyRow(table, c.row.rowId), c.row);
        states.set(key, next);
        evicted.delete(key);
      }
      for (const [key, state] of states) {
        const previous = before.get(key);
        if (state === previous && !evicted.has(key)) continue;
        if (state === undefined) {
          const [table, rowId] = key.split('\u0000') as [string, string];
          this.tables.get(table)?.remove.run(rowId);
          this.stmts.dropRow.run(table, rowId);
        } else {
          this.store(state, previous);
        }
      }
      this.setMeta('cursor', cursor);
    })();
  }

  /** Load the merge state of every row a page touches, one query per table. */
  private preload(changes: readonly Change[]): Map<string, RowState | undefined> {
    const byTable = new Map<string, Set<string>>();
    for (const c of changes) {
      const table = c.kind === 'delta' ? c.delta.table : c.kind === 'row' ? c.row.table : c.table;
      const rowId = c.kind === 'delta' ? c.delta.rowId : c.kind === 'row' ? c.row.rowId : c.rowId;
      let ids = byTable.get(table);
      if (ids === undefined) byTable.set(table, (ids = new Set()));
      ids.add(rowId);
    }
    const states = new Map<string, RowState | undefined>();
    for (const [table, ids] of byTable) {
      for (const id of ids) states.set(rowKey(table, id), undefined);
      for (const r of this.stmts.getRows.all(table, JSON.stringify([...ids]))) {
        states.set(rowKey(table, r.row_id), decodeRow(table, r.row_id, r.state));
      }
    }
    return states;
  }

  loadRow(table: string, rowId: string): RowState | undefined {
    const r = this.stmts.getRow.get(table, rowId);
    return r === undefined ? undefined : decodeRow(table, rowId, r.state);
  }

  private store(state: RowState, previous: RowState | undefined): void {
    if (state === previous) return;
    this.stmts.putRow.run(state.table, state.rowId, encodeRow(state));
    this.writeAppRow(state);
  }

  /** Mirror a row's visible values into the app's table. */
  private writeAppRow(state: RowState): void {
    const t = this.tables.get(state.table);
    if (t === undefined) return;
    const values = visibleValues(state);
    if (values === null) {
      t.remove.run(state.rowId);
      return;
    }
    const params: unknown[] = [state.rowId];
    for (const c of t.columns) params.push(toSql(values[c]));
    t.upsert.run(...params);
  }

  outbox(limit: number): OutboxItem[] {
    return this.stmts.peek.all(limit).map((r) => ({ seq: r.seq, delta: decodeDelta(r.delta) }));
  }

  acknowledge(uptoSeq: number): void {
    this.stmts.dequeue.run(uptoSeq);
  }

  /** Move a delta the server refused out of the outbox, keeping it for inspection. */
  reject(seq: number, code: string, message: string): void {
    this.db.transaction(() => {
      this.stmts.reject.run(code, message, new Date().toISOString(), seq);
      this.stmts.dequeueOne.run(seq);
    })();
  }

  pendingCount(): number {
    return this.stmts.pending.get()?.n ?? 0;
  }
}
