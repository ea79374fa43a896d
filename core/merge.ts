import type { Delta } from './delta.ts';
import type { Hlc } from './hlc.ts';
import type { ColumnValue } from './values.ts';

/** Who wrote something and when: compared by HLC, then by client id. */
export interface Stamp {
  readonly hlc: Hlc;
  readonly clientId: string;
}

export interface ColumnState {
  readonly value: ColumnValue;
  readonly stamp: Stamp;
}

// Records here are plain objects: every key reaching the merge is a column
// name the schema validated (never "__proto__", "toString" or another
// Object.prototype member, see schema.ts) or one read back from our own
// storage, and plain objects allocate several times faster.

/**
 * The merge state of one row. It is a join-semilattice: `inserted` and
 * `deleted` are max-registers, every column is its own last-writer-wins
 * register. See MERGE.md for the rules and why they converge.
 */
export interface RowState {
  readonly table: string;
  readonly rowId: string;
  readonly inserted: Stamp | null;
  readonly deleted: Stamp | null;
  readonly columns: Readonly<Record<string, ColumnState>>;
}

export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.clientId === b.clientId) return 0;
  return a.clientId < b.clientId ? -1 : 1;
}

function maxStamp(a: Stamp | null, b: Stamp | null): Stamp | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareStamps(a, b) >= 0 ? a : b;
}

/** A column survives only if it was written after the latest delete. */
function survives(col: ColumnState, deleted: Stamp | null): boolean {
  return deleted === null || compareStamps(col.stamp, deleted) > 0;
}

export function emptyRow(table: string, rowId: string): RowState {
  return { table, rowId, inserted: null, deleted: null, columns: ({} as Record<string, ColumnState>) };
}

/** A row is live when its newest insert is newer than its newest delete. */
export function isLive(row: RowState): boolean {
  return row.inserted !== null && (row.deleted === null || compareStamps(row.inserted, row.deleted) > 0);
}

/** Apply one delta. Pure: returns a new state, or the same object when nothing changed. */
export function applyDelta(row: RowState | undefined, d: Delta): RowState {
  const base = row ?? emptyRow(d.table, d.rowId);
  const stamp: Stamp = { hlc: d.hlc, clientId: d.clientId };
  if (d.op === 'delete') {
    const deleted = maxStamp(base.deleted, stamp);
    if (deleted === base.deleted) return base;
    const columns = ({} as Record<string, ColumnState>);
    for (const name in base.columns) {
      const col = base.columns[name] as ColumnState;
      if (survives(col, deleted)) columns[name] = col;
    }
    return { table: base.table, rowId: base.rowId, inserted: base.inserted, deleted, columns };
  }
  const inserted = d.op === 'insert' ? maxStamp(base.inserted, stamp) : base.inserted;
  let columns: Record<string, ColumnState> | null = null;
  if (base.deleted === null || compareStamps(stamp, base.deleted) > 0) {
    for (const name in d.columns) {
      const current = base.columns[name];
      if (current !== undefined && compareStamps(current.stamp, stamp) >= 0) continue;
      columns ??= copyColumns(base.columns);
      columns[name] = { value: d.columns[name] as ColumnValue, stamp };
    }
  }
  if (columns === null && inserted === base.inserted) return base;
  return { table: base.table, rowId: base.rowId, inserted, deleted: base.deleted, columns: columns ?? base.columns };
}

function copyColumns(src: Readonly<Record<string, ColumnState>>): Record<string, ColumnState> {
  const out = ({} as Record<string, ColumnState>);
  for (const name in src) out[name] = src[name] as ColumnState;
  return out;
}

/** Join two states of the same row (state-based merge, used for row snapshots). */
export function mergeRows(a: RowState, b: RowState): RowState {
  const deleted = maxStamp(a.deleted, b.deleted);
  const inserted = maxStamp(a.inserted, b.inserted);
  const columns = ({} as Record<string, ColumnState>);
  for (const src of [a.columns, b.columns]) {
    for (const name in src) {
      const col = src[name] as ColumnState;
      if (!survives(col, deleted)) continue;
      const current = columns[name];
      if (current === undefined || compareStamps(col.stamp, current.stamp) > 0) columns[name] = col;
    }
  }
  return { table: a.table, rowId: a.rowId, inserted, deleted, columns };
}

/** What a reader sees: the column values of a live row, or null for no row. */
export function visibleValues(row: RowState): Record<string, ColumnValue> | null {
  if (!isLive(row)) return null;
  const out: Record<string, ColumnValue> = {};
  for (const name in row.columns) out[name] = (row.columns[name] as ColumnState).value;
  return out;
}

/** Every value the state holds, visible or not (columns written after the last delete). */
export function allValues(row: RowState): Record<string, ColumnValue> {
  const out: Record<string, ColumnValue> = {};
  for (const name in row.columns) out[name] = (row.columns[name] as ColumnState).value;
  return out;
}
