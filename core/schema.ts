import type { Delta } from './delta.ts';
import { LakeSyncError } from './errors.ts';
import { isJsonText, type ColumnValue } from './values.ts';

export type ColumnType = 'string' | 'integer' | 'number' | 'boolean' | 'json';

export interface ColumnSchema {
  readonly name: string;
  readonly type: ColumnType;
  /** Defaults to true: a sync engine sees partial rows, so NOT NULL is opt-in. */
  readonly nullable?: boolean;
}

export interface TableSchema {
  readonly name: string;
  readonly columns: readonly ColumnSchema[];
}

/**
 * The server's schema. `version` increases whenever a table or column is
 * added; columns are only ever added (never renamed, retyped or dropped), so
 * a delta written against an older version is still valid.
 */
export interface Schema {
  readonly version: number;
  readonly tables: readonly TableSchema[];
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/**
 * Lowercase (names compare case-insensitively). Besides `id`: names of
 * Object.prototype members (`toString`, `valueOf`, ...), since rows and
 * deltas keep columns in plain objects, where such a name reads the
 * inherited member as a column.
 */
const RESERVED = new Set(['id', 'prototype', ...Object.getOwnPropertyNames(Object.prototype)].map((n) => n.toLowerCase()));
const TYPES = new Set<ColumnType>(['string', 'integer', 'number', 'boolean', 'json']);
export const MAX_ROW_ID_LENGTH = 256;
export const MIN_INT64 = -(2n ** 63n);
export const MAX_INT64 = 2n ** 63n - 1n;

/**
 * A table or column name. Names starting with "_" are LakeSync's: the lake's
 * system columns (`_seq`, `_row_id`, ...), the object store roots beside the
 * tables (`_checkpoints`, `_fanout`) and the client's own SQLite tables.
 */
export function isIdentifier(name: string): boolean {
  // SQLite (the client's tables, the local server) compares names case-insensitively: "ID" is the id column.
  return IDENTIFIER.test(name) && !name.startsWith('_') && !RESERVED.has(name.toLowerCase());
}

/** A table name SQLite accepts: it reserves names starting with "sqlite_". */
function isTableName(name: string): boolean {
  return isIdentifier(name) && !name.toLowerCase().startsWith('sqlite_');
}

/** A schema checked once and indexed for fast validation. */
export class SchemaRegistry {
  readonly version: number;
  private readonly tables = new Map<string, Map<string, ColumnSchema>>();

  constructor(readonly schema: Schema) {
    this.version = schema.version;
    // Names that differ only in case are one name to SQLite: the client could not create both.
    const tableKeys = new Set<string>();
    for (const table of schema.tables) {
      if (!isTableName(table.name)) throw new Error(`invalid table name "${table.name}"`);
      if (tableKeys.has(table.name.toLowerCase())) throw new Error(`duplicate table "${table.name}"`);
      tableKeys.add(table.name.toLowerCase());
      const cols = new Map<string, ColumnSchema>();
      const colKeys = new Set<string>();
      for (const col of table.columns) {
        if (!isIdentifier(col.name)) throw new Error(`invalid column name "${table.name}.${col.name}"`);
        if (!TYPES.has(col.type)) throw new Error(`invalid type "${col.type}" for ${table.name}.${col.name}`);
        if (colKeys.has(col.name.toLowerCase())) throw new Error(`duplicate column "${table.name}.${col.name}"`);
        colKeys.add(col.name.toLowerCase());
        cols.set(col.name, col);
      }
      this.tables.set(table.name, cols);
    }
  }

  table(name: string): ReadonlyMap<string, ColumnSchema> | undefined {
    return this.tables.get(name);
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  /** Throws a LakeSyncError with a stable code when the delta does not fit the schema. */
  validate(d: Delta, index = -1): void {
    const cols = this.tables.get(d.table);
    if (cols === undefined) throw new LakeSyncError('UNKNOWN_TABLE', `unknown table "${d.table}"`, { deltaIndex: index });
    if (d.rowId.length === 0 || d.rowId.length > MAX_ROW_ID_LENGTH || !d.rowId.isWellFormed()) {
      throw new LakeSyncError('INVALID_VALUE', `row id must be 1..${MAX_ROW_ID_LENGTH} characters`, { deltaIndex: index });
    }
    let count = 0;
    for (const name in d.columns) {
      count++;
      const col = cols.get(name);
      if (col === undefined) {
        throw new LakeSyncError('UNKNOWN_COLUMN', `unknown column "${d.table}.${name}"`, { deltaIndex: index });
      }
      const problem = checkValue(col, d.columns[name] as ColumnValue);
      if (problem !== null) {
        throw new LakeSyncError('INVALID_VALUE', `${d.table}.${name}: ${problem}`, { deltaIndex: index });
      }
    }
    if (d.op === 'delete' && count > 0) {
      throw new LakeSyncError('INVALID_REQUEST', 'a delete carries no columns', { deltaIndex: index });
    }
    if (d.op === 'update' && count === 0) {
      throw new LakeSyncError('INVALID_REQUEST', 'an update sets at least one column', { deltaIndex: index });
    }
  }
}

function checkValue(col: ColumnSchema, v: ColumnValue): string | null {
  if (v === null) return col.nullable === false ? 'is not nullable' : null;
  switch (col.type) {
    case 'string':
      if (typeof v !== 'string') return `expected string, got ${describe(v)}`;
      // A lone surrogate has no UTF-8 form: it would hash like U+FFFD.
      return v.isWellFormed() ? null : 'string is not well-formed Unicode';
    case 'integer':
      if (typeof v !== 'bigint') return `expected integer, got ${describe(v)}`;
      return v < MIN_INT64 || v > MAX_INT64 ? 'integer out of int64 range' : null;
    case 'number':
      if (typeof v !== 'number') return `expected number, got ${describe(v)}`;
      return Number.isFinite(v) ? null : 'number must be finite';
    case 'boolean':
      return typeof v === 'boolean' ? null : `expected boolean, got ${describe(v)}`;
    case 'json':
      if (!isJsonText(v)) return `expected json, got ${describe(v)}`;
      try {
        JSON.parse(v.json);
        return null;
      } catch {
        return 'json text does not parse';
      }
  }
}

function describe(v: ColumnValue): string {
  if (v === null) return 'null';
  if (isJsonText(v)) return 'json';
  if (typeof v === 'bigint') return 'integer';
  return typeof v;
}
