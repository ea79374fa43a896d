import type { Delta } from '../delta.ts';
import type { RowState, Stamp } from '../merge.ts';
import type { ColumnValue } from '../values.ts';

/**
 * An upper bound of the bytes a row adds to a PullResponse in JSON, the
 * larger of the two wire formats (protobuf takes less for every field).
 * Checkpoint chunks are cut by it as well as by rows: a chunk is served as
 * one response, and AWS Lambda returns at most 6 MB (protobuf goes out in
 * base64, a third larger; JSON as a string in Lambda's own JSON, which
 * escapes it once more), so 10,000 rows of a few hundred bytes each would
 * make a chunk no client could ever fetch there. Characters JSON escapes are
 * counted escaped twice, so a value made of quotes cannot double the size;
 * the fixed parts grow by at most a fifth in Lambda's JSON.
 */
export function jsonSizeBound(row: RowState): number {
  // {"row":{"table":"","rowId":"","inserted":,"deleted":,"columns":[]}},
  let n = 80 + stringBound(row.table) + stringBound(row.rowId) + stampBound(row.inserted) + stampBound(row.deleted);
  for (const name in row.columns) {
    const col = row.columns[name] as { value: ColumnValue; stamp: Stamp };
    // {"name":"","value":{"stringValue":},"stamp":},
    n += 48 + stringBound(name) + valueBound(col.value) + stampBound(col.stamp);
  }
  return n;
}

/** {"hlc":"<up to 20 digits>","clientId":""} */
function stampBound(s: Stamp | null): number {
  return s === null ? 0 : 48 + stringBound(s.clientId);
}

function valueBound(v: ColumnValue): number {
  if (typeof v === 'string') return stringBound(v);
  if (v === null || typeof v === 'boolean') return 6;
  if (typeof v === 'number' || typeof v === 'bigint') return 28;
  return stringBound(v.json);
}

/** Plain ASCII that JSON does not escape: one byte per character. */
const PLAIN = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string's bytes, quotes included, escapes counted as escaped again (\u0001 as \\u0001); UTF-8 up to 3 per UTF-16 unit. */
function stringBound(s: string): number {
  if (PLAIN.test(s)) return s.length + 2;
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x20 ? 7 : c === 0x22 || c === 0x5c ? 4 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return n;
}

/** The same bound for a delta in a PullResponse: {"delta":{"deltaId":…,"op":"OP_UPDATE","columns":[…],"hlc":"…","clientId":…}}. */
export function deltaJsonSizeBound(d: Delta): number {
  let n = 140 + stringBound(d.deltaId) + stringBound(d.table) + stringBound(d.rowId) + stringBound(d.clientId);
  for (const name in d.columns) n += 48 + stringBound(name) + valueBound(d.columns[name] as ColumnValue);
  return n;
}

/** And for an eviction: {"evict":{"table":…,"rowId":…}}. */
export function evictJsonSizeBound(table: string, rowId: string): number {
  return 40 + stringBound(table) + stringBound(rowId);
}
