import {
  compareStamps,
  type ColumnState,
  type ColumnType,
  type ColumnValue,
  type Hlc,
  type RowState,
  type Stamp,
} from '../../core/index.ts';

/**
 * The merge state of a live row, kept as text in the row's `_ls_state`
 * column. Column values live in the app columns; the text holds the stamps
 * and only the values the app columns cannot hold exactly (columns this
 * client's schema does not know yet, values of an unexpected type).
 *
 *   state := group+                       groups by stamp, greatest first
 *   group := HLC FLAG LEN ':' CLIENT item* ';'
 *   HLC   := 16 lowercase hex digits      fixed width: text order is numeric order
 *   FLAG  := 'u' | 'i' | 'd' | 'b'        the stamp is also: nothing, inserted, deleted, both
 *   item  := NAME ( '=' TAG LEN ':' PAYLOAD )? ','    names ascending
 *   TAG   := n | t | f | s | j | i | d    null, true, false, string, json, integer, double
 *
 * LEN counts UTF-16 code units. The encoding is canonical (one text per
 * state), so equal states read back as equal strings, and the first 16
 * characters are the greatest HLC in the state: a delta with a greater HLC
 * wins every register, which lets `applyNewer` update the text without
 * decoding it.
 */

/** Placeholder value of a column whose value is in the app row, not in the text. */
export const IN_APP_ROW: ColumnValue = Object.freeze({ json: '\u0000lakesync: value in app row' });

export function hlcHex(h: Hlc): string {
  return h.toString(16).padStart(16, '0');
}

/** A group's header after the HLC and flag: the client id, length-prefixed. */
export function clientPart(clientId: string): string {
  const id = clientId.toWellFormed(); // SQLite text is UTF-8: a lone surrogate would not survive
  return `${id.length}:${id}`;
}

/** Whether a value round-trips exactly through an app column of this type. */
export function fitsColumn(type: ColumnType, v: ColumnValue): boolean {
  if (v === null) return true;
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'bigint' && v >= -(2n ** 63n) && v <= 2n ** 63n - 1n;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'json':
      return typeof v === 'object' && v !== IN_APP_ROW;
  }
}

/** Column types of the table, to decide which values stay in the text. */
export type ColumnTypes = ReadonlyMap<string, ColumnType>;

interface Group {
  readonly stamp: Stamp;
  readonly hex: string;
  inserted: boolean;
  deleted: boolean;
  readonly names: string[];
}

/** Canonical text of a row state (see the grammar above). */
export function encodeState(row: RowState, types: ColumnTypes): string {
  const groups = new Map<string, Group>();
  const group = (s: Stamp): Group => {
    const hex = hlcHex(s.hlc);
    const key = `${hex}:${s.clientId}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { stamp: s, hex, inserted: false, deleted: false, names: [] }));
    return g;
  };
  if (row.inserted !== null) group(row.inserted).inserted = true;
  if (row.deleted !== null) group(row.deleted).deleted = true;
  for (const name in row.columns) group((row.columns[name] as ColumnState).stamp).names.push(name);
  const sorted = [...groups.values()].sort((a, b) => compareStamps(b.stamp, a.stamp));
  let out = '';
  for (const g of sorted) {
    out += g.hex + (g.inserted ? (g.deleted ? 'b' : 'i') : g.deleted ? 'd' : 'u') + clientPart(g.stamp.clientId);
    for (const name of g.names.sort()) {
      const value = (row.columns[name] as ColumnState).value;
      const type = types.get(name);
      out += value === IN_APP_ROW || (type !== undefined && fitsColumn(type, value)) ? `${name},` : `${name}=${inlineValue(value)},`;
    }
    out += ';';
  }
  return out;
}

function inlineValue(v: ColumnValue): string {
  if (v === null) return 'n0:';
  switch (typeof v) {
    case 'boolean':
      return v ? 't0:' : 'f0:';
    case 'string': {
      const s = v.toWellFormed();
      return `s${s.length}:${s}`;
    }
    case 'bigint': {
      const s = v.toString();
      return `i${s.length}:${s}`;
    }
    case 'number': {
      const s = String(v);
      return `d${s.length}:${s}`;
    }
    default: {
      const s = v.json.toWellFormed();
      return `j${s.length}:${s}`;
    }
  }
}

function corrupt(): never {
  throw new RangeError('corrupt row state text');
}

/** Index after the ':' that ends the last length readLen read (saves a tuple per call). */
let lenEnd = 0;

/** Reads a decimal length ending at ':' from `pos`; sets lenEnd. */
function readLen(text: string, pos: number): number {
  let n = 0;
  let p = pos;
  for (;;) {
    const c = text.charCodeAt(p++);
    if (c === 58) break; // ':'
    if (c < 48 || c > 57) corrupt(); // also NaN past the end
    n = n * 10 + (c - 48);
  }
  if (p === pos + 1) corrupt();
  lenEnd = p;
  return n;
}

function readInline(tag: string, payload: string): ColumnValue {
  switch (tag) {
    case 'n':
      return null;
    case 't':
      return true;
    case 'f':
      return false;
    case 's':
      return payload;
    case 'j':
      return { json: payload };
    case 'i':
      return BigInt(payload);
    case 'd':
      return Number(payload);
    default:
      return corrupt();
  }
}

/**
 * The row state a text encodes. Columns whose value is in the app row get
 * IN_APP_ROW; `resolve` in local-store.ts replaces it when a value is needed.
 */
export function decodeState(table: string, rowId: string, text: string): RowState {
  let inserted: Stamp | null = null;
  let deleted: Stamp | null = null;
  const columns = Object.create(null) as Record<string, ColumnState>;
  let pos = 0;
  while (pos < text.length) {
    const hex = text.slice(pos, pos + 16);
    const flag = text[pos + 16];
    const clen = readLen(text, pos + 17);
    const cstart = lenEnd;
    if (hex.length !== 16 || cstart + clen > text.length) corrupt();
    const stamp: Stamp = { hlc: BigInt(`0x${hex}`), clientId: text.slice(cstart, cstart + clen) };
    if (flag === 'i' || flag === 'b') inserted = stamp;
    if (flag === 'd' || flag === 'b') deleted = stamp;
    else if (flag !== 'i' && flag !== 'u') corrupt();
    let p = cstart + clen;
    while (text[p] !== ';') {
      if (p >= text.length) corrupt();
      const start = p;
      while (text[p] !== ',' && text[p] !== '=') if (++p >= text.length) corrupt();
      const name = text.slice(start, p);
      let value = IN_APP_ROW;
      if (text[p] === '=') {
        const tag = text[p + 1] as string;
        const len = readLen(text, p + 2);
        const vstart = lenEnd;
        value = readInline(tag, text.slice(vstart, vstart + len));
        p = vstart + len;
        if (text[p] !== ',') corrupt();
      }
      columns[name] = { value, stamp };
      p++;
    }
    pos = p + 1;
  }
  return { table, rowId, inserted, deleted, columns };
}

/**
 * The text after applying an insert or update whose stamp is greater than
 * every stamp in `text`: `group` (the new stamp with the delta's sorted
 * column names, all values in the app row) goes first, the delta's columns
 * leave the older groups, an insert takes the inserted flag, and groups left
 * with nothing are dropped. Equal to encodeState(applyDelta(decodeState(text), d)).
 */
export function applyNewer(text: string, group: string, names: readonly string[], insert: boolean): string {
  let out = group;
  let pos = 0;
  while (pos < text.length) {
    let flag = text[pos + 16] as string;
    const headerEnd = readLen(text, pos + 17) + lenEnd;
    let items = '';
    let kept = headerEnd; // start of the run of items kept so far
    let p = headerEnd;
    while (text[p] !== ';') {
      if (p >= text.length) corrupt();
      const start = p;
      while (text[p] !== ',' && text[p] !== '=') if (++p >= text.length) corrupt();
      const nameEnd = p;
      if (text[p] === '=') p = readLen(text, p + 2) + lenEnd;
      p++; // past ','
      if (overwritten(text, start, nameEnd, names)) {
        items += text.slice(kept, start);
        kept = p;
      }
    }
    items += text.slice(kept, p);
    if (insert) flag = flag === 'i' ? 'u' : flag === 'b' ? 'd' : flag;
    if (items !== '' || flag !== 'u') out += text.slice(pos, pos + 16) + flag + text.slice(pos + 17, headerEnd) + items + ';';
    pos = p + 1;
  }
  return out;
}

/** Whether a delta with HLC `hex` is newer than every stamp of `text` (its first 16 characters). */
export function newerThanAll(hex: string, text: string): boolean {
  for (let i = 0; i < 16; i++) {
    const a = hex.charCodeAt(i);
    const b = text.charCodeAt(i);
    if (a !== b) return a > b;
  }
  return false;
}

function overwritten(text: string, start: number, end: number, names: readonly string[]): boolean {
  const len = end - start;
  for (const n of names) if (n.length === len && text.startsWith(n, start)) return true;
  return false;
}
