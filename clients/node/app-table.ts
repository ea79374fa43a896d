import type Database from 'better-sqlite3';
import type { ColumnSchema, ColumnType, ColumnValue, RowState, TableSchema } from '../../core/index.ts';
import { V_BOOL, V_DOUBLE, V_INT, V_JSON, V_NULL, V_STRING, chunkStateText, type ChunkReader } from './checkpoint-chunk.ts';
import { IN_APP_ROW, columnMask, makeLayout, type Layout } from './state-text.ts';

/** The hidden column of every app table that holds the row's merge state (see state-text.ts). */
export const STATE_COLUMN = '_ls_state';

export const SQL_TYPES: Readonly<Record<ColumnType, string>> = {
  string: 'TEXT',
  integer: 'INTEGER',
  number: 'REAL',
  boolean: 'INTEGER',
  json: 'TEXT',
};

/**
 * The rowid as SQL: `rowid` and `oid` name a schema's column of that name if
 * it has one (both are valid column names), `_rowid_` cannot be one (names
 * starting with "_" are LakeSync's).
 */
const ROWID = '_rowid_';

export function quote(identifier: string): string {
  return `"${identifier}"`;
}

type SqlValue = string | number | bigint | null;

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

/** SQLite storage for column values: booleans as 0/1, JSON as text. */
export function toSql(v: ColumnValue): SqlValue {
  if (v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'object') {
    if (v === IN_APP_ROW) throw new Error('internal: unresolved column value');
    return v.json;
  }
  if (typeof v === 'bigint' && (v < MIN_INT64 || v > MAX_INT64)) return null; // SQLite cannot hold it; the state text keeps it
  return v;
}

/** A value read back from an app column (read with safeIntegers). */
function fromSql(type: ColumnType, v: unknown): ColumnValue {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'integer':
      return typeof v === 'bigint' ? v : BigInt(v as number);
    case 'number':
      return Number(v);
    case 'boolean':
      return v !== 0n && v !== 0;
    case 'json':
      return { json: String(v) };
    case 'string':
      return String(v);
  }
}

/** The value kind (checkpoint-chunk.ts) an app column of each type holds exactly, besides null. */
const KIND_OF: Readonly<Record<ColumnType, number>> = { string: V_STRING, integer: V_INT, number: V_DOUBLE, boolean: V_BOOL, json: V_JSON };

/** Where a column goes: its position in the schema (and insert parameters), its layout number, its value kind. */
interface ColumnSlot {
  readonly pos: number;
  readonly bit: number;
  readonly kind: number;
}

function sameNames(columns: Readonly<Record<string, unknown>>, names: readonly string[]): boolean {
  let i = 0;
  for (const name in columns) if (name !== names[i++]) return false;
  return i === names.length;
}

/** Statements for one set of columns, in the order a delta lists them. */
export interface ColumnSet {
  readonly names: readonly string[];
  readonly types: readonly ColumnType[];
  /** Their mask in a state-text group. */
  readonly mask: string;
  /** UPDATE ... SET names, state WHERE rowid: params (...values, state, rowid). */
  readonly update: Database.Statement<unknown[]>;
  /** INSERT of a new row with only these columns, doing nothing if the id exists: params (...values, state, id). */
  insert(): Database.Statement<unknown[]>;
  /** A parameter array for `update` and `insert`, reused: statements bind it synchronously. */
  readonly params: unknown[];
}

export interface AppRowRef {
  readonly rowid: number | bigint;
  readonly state: string | null;
}

/**
 * One app table: the app's columns plus the hidden state column, with
 * prepared statements cached per column set. Rows are addressed by rowid
 * inside a transaction (found by the page's preload), which saves the
 * primary-key index lookup on every write.
 */
export class AppTable {
  readonly name: string;
  readonly columns: readonly ColumnSchema[];
  readonly types: ReadonlyMap<string, ColumnType>;
  /** Column numbering of the state text's masks. */
  readonly layout: Layout;
  private readonly sets = new Map<string, ColumnSet | null>();
  private lastSet: ColumnSet | null = null;
  private readonly q: string;
  private readonly stmts;
  private readonly slots: ReadonlyMap<string, ColumnSlot>;
  /** Scratch of insertChunkRow: parameters, layout numbers of the row's columns, columns seen (by row generation). */
  private readonly chunkParams: unknown[];
  private readonly chunkBits: number[] = [];
  private readonly chunkSeen: Int32Array;
  private chunkGen = 0;

  /** `layout`: every column this table ever had, in the order they came (kept in _lakesync_meta). */
  constructor(
    private readonly db: Database.Database,
    schema: TableSchema,
    layout: readonly string[],
  ) {
    this.name = schema.name;
    this.columns = schema.columns;
    this.types = new Map(schema.columns.map((c) => [c.name, c.type]));
    const q = (this.q = quote(schema.name));
    this.layout = makeLayout(layout, this.types);
    const names = schema.columns.map((c) => quote(c.name));
    const all = [...names, quote(STATE_COLUMN)];
    this.slots = new Map(schema.columns.map((c, pos) => [c.name, { pos, bit: this.layout.index.get(c.name) as number, kind: KIND_OF[c.type] }]));
    this.chunkParams = new Array<unknown>(schema.columns.length + 2);
    this.chunkSeen = new Int32Array(schema.columns.length);
    this.stmts = {
      // One row per requested id that has an app row: [index in the JSON array, rowid, state].
      preload: db
        .prepare<[string], [number, number | bigint, string | null]>(
          `SELECT j.key, t.${ROWID}, t.${quote(STATE_COLUMN)} FROM json_each(?) AS j JOIN ${q} AS t ON t.id = j.value`,
        )
        .raw(),
      find: db.prepare<[string], { rowid: number | bigint; state: string | null }>(
        `SELECT ${ROWID} AS rowid, ${quote(STATE_COLUMN)} AS state FROM ${q} WHERE id = ?`,
      ),
      values: db.prepare<[number | bigint], Record<string, unknown>>(`SELECT ${['id', ...names].join(', ')} FROM ${q} WHERE ${ROWID} = ?`).safeIntegers(),
      insertAll: db.prepare<unknown[]>(`INSERT INTO ${q} (${[...all, 'id'].join(', ')}) VALUES (${[...all, 'id'].map(() => '?').join(', ')})`),
      insertNew: db.prepare<unknown[]>(
        `INSERT INTO ${q} (${[...all, 'id'].join(', ')}) VALUES (${[...all, 'id'].map(() => '?').join(', ')}) ON CONFLICT (id) DO NOTHING`,
      ),
      updateAll: db.prepare<unknown[]>(`UPDATE ${q} SET ${all.map((c) => `${c} = ?`).join(', ')} WHERE ${ROWID} = ?`),
      remove: db.prepare<[number | bigint]>(`DELETE FROM ${q} WHERE ${ROWID} = ?`),
      withInline: db.prepare<[], { rowid: number | bigint; id: string; state: string }>(
        `SELECT ${ROWID} AS rowid, id, ${quote(STATE_COLUMN)} AS state FROM ${q} WHERE ${quote(STATE_COLUMN)} LIKE '%=%'`,
      ),
    };
  }

  /** App rows of these ids (a JSON array of strings), as (index, rowid, state). */
  preload(idsJson: string): [number, number | bigint, string | null][] {
    return this.stmts.preload.all(idsJson);
  }

  find(id: string): AppRowRef | undefined {
    return this.stmts.find.get(id);
  }

  /** Rows whose state text may hold inline values (a superset: '=' may also be in a client id). */
  rowsWithInlineValues(): { rowid: number | bigint; id: string; state: string }[] {
    return this.stmts.withInline.all();
  }

  /**
   * Statements for a delta's columns, or null when one of them is not in
   * this table's schema. Cached by the names in the delta's order.
   */
  columnSet(columns: Readonly<Record<string, unknown>>): ColumnSet | null {
    // Deltas of a page mostly share their columns: check the last set without building a key.
    const last = this.lastSet;
    if (last !== null && sameNames(columns, last.names)) return last;
    let key = '';
    for (const name in columns) key += `${name},`;
    const cached = this.sets.get(key);
    if (cached !== undefined) return cached;
    const names = Object.keys(columns);
    const set = names.every((n) => this.types.has(n)) ? this.makeSet(names) : null;
    this.sets.set(key, set);
    if (set !== null) this.lastSet = set;
    return set;
  }

  private makeSet(names: readonly string[]): ColumnSet {
    const cols = names.map(quote);
    const state = quote(STATE_COLUMN);
    const update = this.db.prepare<unknown[]>(`UPDATE ${this.q} SET ${[...cols, state].map((c) => `${c} = ?`).join(', ')} WHERE ${ROWID} = ?`);
    let insert: Database.Statement<unknown[]> | undefined;
    const insertSql = `INSERT INTO ${this.q} (${[...cols, state, 'id'].join(', ')}) VALUES (${[...cols, state, 'id'].map(() => '?').join(', ')}) ON CONFLICT (id) DO NOTHING`;
    return {
      names,
      types: names.map((n) => this.types.get(n) as ColumnType),
      mask: columnMask(this.layout, names),
      update,
      insert: () => (insert ??= this.db.prepare(insertSql)),
      params: new Array<unknown>(names.length + 2),
    };
  }

  /** Insert a live row with every column; returns its rowid. */
  insert(row: RowState, state: string): number | bigint {
    const params: unknown[] = this.columns.map((c) => toSql(row.columns[c.name]?.value ?? null));
    params.push(state, row.rowId);
    return this.stmts.insertAll.run(params).lastInsertRowid;
  }

  /**
   * Insert the row a checkpoint chunk reader is on, if it is live, new to
   * this table and every value fits its app column (so the state text holds
   * stamps only). Returns false, having written nothing, to leave the row to
   * the merge path. The caller knows _lakesync_rows holds no row of this table.
   */
  insertChunkRow(c: ChunkReader): boolean {
    if (c.inserted < 0 || (c.deleted >= 0 && c.compare(c.inserted, c.deleted) <= 0)) return false;
    const params = this.chunkParams;
    params.fill(null);
    const gen = ++this.chunkGen;
    const seen = this.chunkSeen;
    const bits = this.chunkBits;
    for (let k = 0; k < c.count; k++) {
      const slot = this.slots.get(c.names[k] as string);
      if (slot === undefined || seen[slot.pos] === gen) return false;
      seen[slot.pos] = gen;
      const kind = c.kinds[k] as number;
      const v = c.values[k];
      if (kind !== V_NULL && (kind !== slot.kind || (kind === V_DOUBLE && !Number.isFinite(v)))) return false;
      params[slot.pos] = v;
      bits[k] = slot.bit;
    }
    const n = this.columns.length;
    params[n] = chunkStateText(c, bits);
    params[n + 1] = c.rowId;
    return this.stmts.insertNew.run(params).changes === 1;
  }

  /**
   * Rewrite a row's state and the columns that changed from `before` (the
   * state the row's text held), or every column when there is no `before`.
   */
  update(rowid: number | bigint, before: RowState | undefined, after: RowState, state: string): void {
    if (before === undefined) {
      const params: unknown[] = this.columns.map((c) => toSql(after.columns[c.name]?.value ?? null));
      params.push(state, rowid);
      this.stmts.updateAll.run(params);
      return;
    }
    const changed: Record<string, null> = {};
    const params: unknown[] = [];
    for (const c of this.columns) {
      const col = after.columns[c.name];
      if (col === before.columns[c.name]) continue;
      changed[c.name] = null;
      params.push(toSql(col?.value ?? null));
    }
    params.push(state, rowid);
    (this.columnSet(changed) as ColumnSet).update.run(params);
  }

  remove(rowid: number | bigint): void {
    this.stmts.remove.run(rowid);
  }

  /** `row` with every IN_APP_ROW value replaced by the app row's value. */
  resolve(rowid: number | bigint | null, row: RowState): RowState {
    let values: Record<string, unknown> | undefined;
    let columns: RowState['columns'] | undefined;
    for (const name in row.columns) {
      const col = row.columns[name] as RowState['columns'][string];
      if (col.value !== IN_APP_ROW) continue;
      const type = this.types.get(name);
      if (rowid === null || type === undefined) throw new RangeError(`no app value for ${this.name}.${name}`);
      values ??= this.stmts.values.get(rowid);
      if (values === undefined) throw new RangeError(`app row of ${this.name}/${row.rowId} vanished`);
      columns ??= { ...row.columns };
      (columns as Record<string, RowState['columns'][string]>)[name] = { value: fromSql(type, values[name]), stamp: col.stamp };
    }
    return columns === undefined ? row : { ...row, columns };
  }
}
