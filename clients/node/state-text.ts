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
 * column. Column values live in the app columns; the text holds the stamps,
 * plus the values the app columns cannot hold exactly (columns this client's
 * schema does not know yet, values of an unexpected type). It is small
 * because it is written with every row: a 4-column row inserted by client
 * "bench" is `<hlc>i5:benchf;`, 21 characters; after an update of 2 of its
 * columns by the same client, `<hlc>u5:bench9;<hlc>i=6;`.
 *
 *   state  := group+                     one per stamp, greatest first
 *   group  := HLC FLAG CLIENT MASK ( '+' item+ )? ';'
 *   HLC    := 11 digits of base 64 in ASCII order ("-0-9A-Z_a-z"): text order is numeric order
 *   FLAG   := 'u' | 'i' | 'd' | 'b'      the stamp is also: nothing, inserted, deleted, both
 *   CLIENT := LEN ':' ID | '='           '=': the same client as the group before
 *   MASK   := lowercase hex, no trailing '0': bit j of digit k is the table's column 4k+j
 *             (columns numbered as they came to this database, see Layout), value in the app row
 *   item   := NAME '=' TAG LEN ':' PAYLOAD ','   names ascending
 *   TAG    := n | t | f | s | j | i | d  null, true, false, string, json, integer, double
 *
 * LEN counts UTF-16 code units. The encoding is canonical (one text per
 * state and column layout), and the first 11 characters are the greatest
 * HLC in the state: a delta with a greater HLC wins every register, which
 * lets `applyNewer` update the text without decoding it.
 */

export const HLC_WIDTH = 11;
const DIGITS = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const DIGIT_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) DIGIT_VALUE[DIGITS.charCodeAt(i)] = i;
const HEX = '0123456789abcdef';

/** Placeholder value of a column whose value is in the app row, not in the text. */
export const IN_APP_ROW: ColumnValue = Object.freeze({ json: '\u0000lakesync: value in app row' });

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

/**
 * How a table's columns are numbered in masks: in the order they came to
 * this database (the first schema's order, then columns as later schema
 * versions add them), never renumbered; with the schema's types.
 */
export interface Layout {
  readonly names: readonly string[];
  readonly index: ReadonlyMap<string, number>;
  readonly types: ReadonlyMap<string, ColumnType>;
}

export function makeLayout(names: readonly string[], types: ReadonlyMap<string, ColumnType>): Layout {
  return { names, index: new Map(names.map((n, i) => [n, i])), types };
}

/** The HLC as 11 fixed-width digits (see the grammar). */
export function hlcKey(h: Hlc): string {
  return digits(Number(h >> 24n), Number(h & 0xffffffn));
}

/** hlcKey of the HLC whose unsigned 32-bit halves are `hi` and `lo` (no bigint). */
export function hlcKeyOf(hi: number, lo: number): string {
  return digits(hi * 256 + (lo >>> 24), lo & 0xffffff);
}

/** The 11 digits of 40 high bits (7 digits) and 24 low bits (4 digits). */
function digits(hi: number, lo: number): string {
  const d = DIGITS;
  const l3 = lo & 63;
  const l2 = (lo >>= 6) & 63;
  const l1 = (lo >>= 6) & 63;
  const l0 = lo >> 6;
  const h6 = hi % 64;
  const h5 = (hi = Math.floor(hi / 64)) % 64;
  const h4 = (hi = Math.floor(hi / 64)) % 64;
  const h3 = (hi = Math.floor(hi / 64)) % 64;
  const h2 = (hi = Math.floor(hi / 64)) % 64;
  const h1 = (hi = Math.floor(hi / 64)) % 64;
  const h0 = Math.floor(hi / 64);
  return d[h0]! + d[h1]! + d[h2]! + d[h3]! + d[h4]! + d[h5]! + d[h6]! + d[l0]! + d[l1]! + d[l2]! + d[l3]!;
}

function readHlc(text: string, pos: number): Hlc {
  let hi = 0;
  for (let i = 0; i < 7; i++) hi = hi * 64 + digit(text, pos + i);
  let lo = 0;
  for (let i = 7; i < HLC_WIDTH; i++) lo = lo * 64 + digit(text, pos + i);
  return (BigInt(hi) << 24n) | BigInt(lo);
}

function digit(text: string, pos: number): number {
  const v = DIGIT_VALUE[text.charCodeAt(pos)] ?? -1;
  if (v < 0) corrupt();
  return v;
}

/** A client id as stored: SQLite text is UTF-8, where a lone surrogate would not survive. */
export function storedClient(clientId: string): string {
  return clientId.toWellFormed();
}

/** The CLIENT of a group (see the grammar), given the previous group's. */
export function clientPart(client: string, previous: string | null): string {
  return client === previous ? '=' : `${client.length}:${client}`;
}

/** Whether a value round-trips exactly through an app column of this type. */
export function fitsColumn(type: ColumnType, v: ColumnValue): boolean {
  if (v === null) return true;
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'bigint' && v >= MIN_INT64 && v <= MAX_INT64;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'json':
      return typeof v === 'object' && v !== IN_APP_ROW;
  }
}

/** The mask of these columns (all in the layout). */
export function columnMask(layout: Layout, names: Iterable<string>): string {
  const nibbles: number[] = [];
  for (const name of names) {
    const i = layout.index.get(name) as number;
    while (nibbles.length <= i >> 2) nibbles.push(0);
    nibbles[i >> 2]! |= 1 << (i & 3);
  }
  let out = '';
  for (const n of nibbles) out += HEX[n];
  return out;
}

interface Group {
  readonly stamp: Stamp;
  inserted: boolean;
  deleted: boolean;
  readonly inApp: string[];
  readonly inline: string[];
}

/** Canonical text of a row state (see the grammar above). */
export function encodeState(row: RowState, layout: Layout): string {
  const groups = new Map<string, Group>();
  const group = (s: Stamp): Group => {
    const key = `${s.hlc}:${s.clientId}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { stamp: s, inserted: false, deleted: false, inApp: [], inline: [] }));
    return g;
  };
  if (row.inserted !== null) group(row.inserted).inserted = true;
  if (row.deleted !== null) group(row.deleted).deleted = true;
  for (const name in row.columns) {
    const col = row.columns[name] as ColumnState;
    const type = layout.types.get(name);
    const inApp = col.value === IN_APP_ROW || (type !== undefined && layout.index.has(name) && fitsColumn(type, col.value));
    (inApp ? group(col.stamp).inApp : group(col.stamp).inline).push(name);
  }
  const sorted = [...groups.values()].sort((a, b) => compareStamps(b.stamp, a.stamp));
  let out = '';
  let previous: string | null = null;
  for (const g of sorted) {
    const flag = g.inserted ? (g.deleted ? 'b' : 'i') : g.deleted ? 'd' : 'u';
    const client = storedClient(g.stamp.clientId);
    out += hlcKey(g.stamp.hlc) + flag + clientPart(client, previous) + columnMask(layout, g.inApp);
    previous = client;
    if (g.inline.length > 0) {
      out += '+';
      for (const name of g.inline.sort()) out += `${name}=${inlineValue((row.columns[name] as ColumnState).value)},`;
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

/** The client id readClient read last. */
let lastClient = '';

/** Reads a CLIENT at `pos` (the previous group's is `previous`); sets lastClient, returns the index after it. */
function readClient(text: string, pos: number, previous: string | null): number {
  if (text[pos] === '=') {
    if (previous === null) corrupt();
    lastClient = previous;
    return pos + 1;
  }
  const len = readLen(text, pos);
  const start = lenEnd;
  if (start + len > text.length) corrupt();
  lastClient = text.slice(start, start + len);
  return start + len;
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

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** End of the mask that starts at `pos`. */
function maskEnd(text: string, pos: number): number {
  let p = pos;
  while (hexValue(text.charCodeAt(p)) >= 0) p++;
  return p;
}

/** Reads the items after a '+' at `pos` - 1; calls `item` with (name, value start, item end); returns the ';' index. */
function readItems(text: string, pos: number, item: (nameStart: number, nameEnd: number, tag: string, valueStart: number, valueEnd: number) => void): number {
  let p = pos;
  do {
    const start = p;
    while (text[p] !== '=') if (++p >= text.length) corrupt();
    const nameEnd = p;
    const tag = text[p + 1] as string;
    const len = readLen(text, p + 2);
    const vstart = lenEnd;
    p = vstart + len;
    if (text[p] !== ',') corrupt();
    item(start, nameEnd, tag, vstart, p);
    p++;
  } while (text[p] !== ';' && p < text.length);
  if (text[p] !== ';') corrupt();
  return p;
}

/**
 * The row state a text encodes. Columns whose value is in the app row get
 * IN_APP_ROW; AppTable.resolve replaces it when a value is needed.
 */
export function decodeState(table: string, rowId: string, text: string, layout: Layout): RowState {
  let inserted: Stamp | null = null;
  let deleted: Stamp | null = null;
  const columns = Object.create(null) as Record<string, ColumnState>;
  let pos = 0;
  let client: string | null = null;
  while (pos < text.length) {
    const hlc = readHlc(text, pos);
    const flag = text[pos + HLC_WIDTH];
    let p = readClient(text, pos + HLC_WIDTH + 1, client);
    client = lastClient;
    const stamp: Stamp = { hlc, clientId: client };
    if (flag === 'i' || flag === 'b') inserted = stamp;
    if (flag === 'd' || flag === 'b') deleted = stamp;
    else if (flag !== 'i' && flag !== 'u') corrupt();
    const end = maskEnd(text, p);
    for (let k = 0; p < end; k += 4, p++) {
      const nibble = hexValue(text.charCodeAt(p));
      for (let j = 0; j < 4; j++) {
        if ((nibble & (1 << j)) === 0) continue;
        const name = layout.names[k + j];
        if (name === undefined) corrupt();
        columns[name] = { value: IN_APP_ROW, stamp };
      }
    }
    if (text[p] === '+') {
      p = readItems(text, p + 1, (ns, ne, tag, vs, ve) => {
        columns[text.slice(ns, ne)] = { value: readInline(tag, text.slice(vs, ve)), stamp };
      });
    }
    if (text[p] !== ';') corrupt();
    pos = p + 1;
  }
  return { table, rowId, inserted, deleted, columns };
}

/**
 * The text after applying an insert or update whose stamp is greater than
 * every stamp in `text`: `group` (the new stamp and the mask of the delta's
 * columns, all values in the app row; `client` its stored client id) goes first, the delta's columns leave
 * the older groups (`mask` from their masks, `names` from their items), an
 * insert takes the inserted flag, and groups left with nothing are dropped.
 * Equal to encodeState(applyDelta(decodeState(text), d)).
 */
export function applyNewer(text: string, group: string, client: string, mask: string, names: readonly string[], insert: boolean): string {
  let out = group;
  let outClient = client; // client of the last group written
  let textClient: string | null = null; // client of the last group read
  let pos = 0;
  while (pos < text.length) {
    let flag = text[pos + HLC_WIDTH] as string;
    const headerEnd = readClient(text, pos + HLC_WIDTH + 1, textClient);
    textClient = lastClient;
    let p = maskEnd(text, headerEnd);
    const left = andNot(text, headerEnd, p, mask);
    let items = '';
    if (text[p] === '+') {
      let kept = p + 1;
      p = readItems(text, p + 1, (ns, ne, _tag, _vs, ve) => {
        if (!overwritten(text, ns, ne, names)) return;
        items += text.slice(kept, ns);
        kept = ve + 1;
      });
      items += text.slice(kept, p);
    }
    if (text[p] !== ';') corrupt();
    if (insert) flag = flag === 'i' ? 'u' : flag === 'b' ? 'd' : flag;
    if (left !== '' || items !== '' || flag !== 'u') {
      out += text.slice(pos, pos + HLC_WIDTH) + flag + clientPart(textClient, outClient) + left + (items === '' ? ';' : `+${items};`);
      outClient = textClient;
    }
    pos = p + 1;
  }
  return out;
}

/** text[start, end) (a mask) without the bits of `mask`, trailing zeros trimmed. */
function andNot(text: string, start: number, end: number, mask: string): string {
  let out = '';
  let zeros = '';
  for (let p = start, k = 0; p < end; p++, k++) {
    const v = hexValue(text.charCodeAt(p)) & ~(k < mask.length ? hexValue(mask.charCodeAt(k)) : 0);
    if (v === 0) zeros += '0';
    else {
      out += zeros + HEX[v];
      zeros = '';
    }
  }
  return out;
}

/** Whether a delta with HLC `key` is newer than every stamp of `text` (its first 11 characters). */
export function newerThanAll(key: string, text: string): boolean {
  for (let i = 0; i < HLC_WIDTH; i++) {
    const a = key.charCodeAt(i);
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
