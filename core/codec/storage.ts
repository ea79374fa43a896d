import type { Delta } from '../delta.ts';
import { OP_TAG, TAG_OP } from '../delta.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { nullRecord, type ColumnValue } from '../values.ts';
import { ByteReader, ByteWriter } from './bytes.ts';
import { readColumns, readValue, writeColumns, writeValue } from './values.ts';

/**
 * Compact binary encodings for what buffers store: deltas, row states and the
 * rule-column snapshots kept beside each log entry. Version byte first, so
 * the format can evolve without a migration of old entries.
 */
const writer = new ByteWriter(4096);

export function encodeDelta(d: Delta): Uint8Array {
  const w = writer;
  w.length = 0;
  w.byte(1);
  w.str(d.deltaId);
  w.str(d.table);
  w.str(d.rowId);
  w.byte(OP_TAG[d.op]);
  w.u64(d.hlc);
  w.str(d.clientId);
  writeColumns(w, d.columns);
  return w.take();
}

export function decodeDelta(bytes: Uint8Array): Delta {
  const r = new ByteReader(bytes);
  if (r.byte() !== 1) throw new RangeError('unknown delta encoding');
  const deltaId = r.str();
  const table = r.str();
  const rowId = r.str();
  const op = TAG_OP[r.byte()];
  if (op === undefined) throw new RangeError('unknown op');
  const hlc = r.u64();
  const clientId = r.str();
  const columns = readColumns(r);
  return { deltaId, table, rowId, op, hlc, clientId, columns };
}

function writeStamp(w: ByteWriter, s: Stamp | null): void {
  if (s === null) {
    w.byte(0);
    return;
  }
  w.byte(1);
  w.u64(s.hlc);
  w.str(s.clientId);
}

function readStamp(r: ByteReader): Stamp | null {
  if (r.byte() === 0) return null;
  const hlc = r.u64();
  return { hlc, clientId: r.str() };
}

export function encodeRow(row: RowState): Uint8Array {
  const w = writer;
  w.length = 0;
  w.byte(1);
  writeStamp(w, row.inserted);
  writeStamp(w, row.deleted);
  const names = Object.keys(row.columns);
  w.u32(names.length);
  for (const name of names) {
    const col = row.columns[name] as ColumnState;
    w.str(name);
    writeValue(w, col.value);
    writeStamp(w, col.stamp);
  }
  return w.take();
}

export function decodeRow(table: string, rowId: string, bytes: Uint8Array): RowState {
  const r = new ByteReader(bytes);
  if (r.byte() !== 1) throw new RangeError('unknown row encoding');
  const inserted = readStamp(r);
  const deleted = readStamp(r);
  const columns = nullRecord<ColumnState>();
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const name = r.str();
    const value = readValue(r);
    const stamp = readStamp(r) as Stamp;
    columns[name] = { value, stamp };
  }
  return { table, rowId, inserted, deleted, columns };
}

/** Rule-column values of a row, or null when the row was not live. */
export function encodeSnapshot(values: Readonly<Record<string, ColumnValue>> | null): Uint8Array | null {
  if (values === null) return null;
  const w = writer;
  w.length = 0;
  writeColumns(w, values);
  return w.take();
}

export function decodeSnapshot(bytes: Uint8Array | null): Record<string, ColumnValue> | null {
  if (bytes === null) return null;
  return readColumns(new ByteReader(bytes));
}
