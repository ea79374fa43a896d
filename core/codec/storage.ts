import type { Delta } from '../delta.ts';
import { OP_TAG, TAG_OP } from '../delta.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { nullRecord, type ColumnValue } from '../values.ts';
import { ByteReader, ByteWriter } from './bytes.ts';
import { readColumns, readValue, writeColumns, writeValue } from './values.ts';
import { ASCII_MAX, asciiString } from '../protocol/ascii.ts';

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
  writeRow(w, row);
  return w.take();
}

/**
 * encodeRow of many rows, as views into one buffer: a flush encodes a whole
 * chunk's states, and one ArrayBuffer per row was a large share of its
 * allocation and garbage-collection work.
 */
export function encodeRows(rows: readonly RowState[]): Uint8Array[] {
  const w = new ByteWriter(Math.max(256, rows.length * 96));
  const ends = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    writeRow(w, rows[i] as RowState);
    ends[i] = w.length;
  }
  const buf = w.take();
  const out = new Array<Uint8Array>(rows.length);
  for (let i = 0, start = 0; i < rows.length; i++) {
    const end = ends[i] as number;
    out[i] = buf.subarray(start, end);
    start = end;
  }
  return out;
}

function writeRow(w: ByteWriter, row: RowState): void {
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

// ---------------------------------------------------------------------------
// Server buffer encodings (version 2): what SqliteBuffer stores per log entry
// and per row. Compact (varint lengths; a row lists each distinct stamp once,
// so an inserted row carries one stamp, not one per column) and cheap to
// write: one reused buffer, and callers get a view of it, not a copy.
// Versions 1 above stay as they are: clients keep them in their databases.
// ---------------------------------------------------------------------------

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Writer of the version 2 encodings; `view()` is valid until the next `reset()` that reuses the space. */
export class Packer {
  private buf = new Uint8Array(1 << 16);
  private data = new DataView(this.buf.buffer);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    // Views already handed out keep the old buffer alive and unchanged.
    this.buf = next;
    this.data = new DataView(next.buffer);
  }

  patchU32(at: number, v: number): void {
    this.data.setUint32(at, v);
  }

  u32(v: number): void {
    this.ensure(4);
    this.data.setUint32(this.pos, v);
    this.pos += 4;
  }

  /** The bytes written since `start`, without copying. */
  view(start: number): Uint8Array {
    return this.buf.subarray(start, this.pos);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.ensure(5);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** A varint of up to 53 bits (`varint` takes 32). */
  varint53(v: number): void {
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  u64(v: bigint): void {
    this.ensure(8);
    this.data.setBigUint64(this.pos, v);
    this.pos += 8;
  }

  i64(v: bigint): void {
    this.ensure(8);
    this.data.setBigInt64(this.pos, v);
    this.pos += 8;
  }

  f64(v: number): void {
    this.ensure(8);
    this.data.setFloat64(this.pos, v);
    this.pos += 8;
  }

  str(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      // Usually ASCII: then the byte length is n and fits a one-byte varint.
      this.ensure(1 + n);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[start + i] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    const bytes = utf8.encode(s);
    this.varint(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  value(v: ColumnValue): void {
    if (v === null) this.byte(0);
    else if (typeof v === 'string') {
      this.byte(1);
      this.str(v);
    } else if (typeof v === 'bigint') {
      this.byte(2);
      this.i64(v);
    } else if (typeof v === 'number') {
      this.byte(3);
      this.f64(v);
    } else if (typeof v === 'boolean') this.byte(v ? 5 : 4);
    else {
      this.byte(6);
      this.str(v.json);
    }
  }

  columns(cols: Readonly<Record<string, ColumnValue>>): void {
    let n = 0;
    // Counting keys without allocating Object.keys().
    for (const _ in cols) n++;
    this.varint(n);
    for (const name in cols) {
      this.str(name);
      this.value(cols[name] as ColumnValue);
    }
  }
}

/** Reader of the version 2 encodings. */
export class Unpacker {
  private data: DataView | null = null;
  pos = 0;

  constructor(private readonly buf: Uint8Array) {}

  private view(): DataView {
    return (this.data ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError('read past end');
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
      if (shift > 28) throw new RangeError('bad varint');
    }
  }

  u32(): number {
    this.need(4);
    const v = this.view().getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view().getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  i64(): bigint {
    this.need(8);
    const v = this.view().getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.view().getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  str(): string {
    const n = this.varint();
    this.need(n);
    const buf = this.buf;
    const start = this.pos;
    this.pos += n;
    if (n === 0) return '';
    if (n <= ASCII_MAX) {
      // Short ASCII strings (ids, names): one fromCharCode call beats TextDecoder's call cost.
      for (let i = start; i < start + n; i++) if ((buf[i] as number) > 0x7f) return utf8Decoder.decode(buf.subarray(start, start + n));
      return asciiString(buf, start, n);
    }
    return utf8Decoder.decode(buf.subarray(start, start + n));
  }

  /** A string that repeats across entries (table, column and client names): interned. */
  name(): string {
    const n = this.varint();
    this.need(n);
    const s = intern(this.buf, this.pos, n);
    this.pos += n;
    return s;
  }

  value(): ColumnValue {
    const tag = this.byte();
    switch (tag) {
      case 0:
        return null;
      case 1:
        return this.str();
      case 2:
        return this.i64();
      case 3:
        return this.f64();
      case 4:
        return false;
      case 5:
        return true;
      case 6:
        return { json: this.str() };
      default:
        throw new RangeError(`unknown value tag ${tag}`);
    }
  }

  /** Plain objects: they allocate several times faster than null-prototype ones. */
  columns(): Record<string, ColumnValue> {
    const out: Record<string, ColumnValue> = {};
    const n = this.varint();
    for (let i = 0; i < n; i++) setColumn(out, this.name(), this.value());
    return out;
  }

  done(): boolean {
    return this.pos >= this.buf.length;
  }
}

/**
 * Schema-checked names are never "__proto__", but a buffer must return what
 * it was given: that one name is defined, not assigned (which would set the
 * prototype).
 */
function setColumn<T>(out: Record<string, T>, name: string, value: T): void {
  if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  else out[name] = value;
}

/**
 * A small direct-mapped cache of names by their bytes: the same few table,
 * column and client names repeat in every entry, so decoding them should not
 * allocate a new string each time.
 */
const INTERN_SLOTS = 1024;
const internBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(INTERN_SLOTS);
const internStrings: string[] = new Array<string>(INTERN_SLOTS);

function intern(buf: Uint8Array, start: number, n: number): string {
  if (n > 64) return utf8Decoder.decode(buf.subarray(start, start + n));
  let h = n;
  for (let i = start; i < start + n; i++) h = (Math.imul(h, 31) + (buf[i] as number)) | 0;
  const slot = h & (INTERN_SLOTS - 1);
  const known = internBytes[slot];
  if (known !== undefined && known.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (known[i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return internStrings[slot] as string;
  }
  const bytes = buf.slice(start, start + n);
  const s = utf8Decoder.decode(bytes);
  internBytes[slot] = bytes;
  internStrings[slot] = s;
  return s;
}

/** One log entry as stored: the delta and the rule snapshots taken when it was appended. */
export interface StoredEntry {
  readonly delta: Delta;
  readonly before: Readonly<Record<string, ColumnValue>> | null;
  readonly after: Readonly<Record<string, ColumnValue>> | null;
  readonly fresh: boolean;
}

/** A log entry as read back, with its seq. */
export interface UnpackedEntry extends StoredEntry {
  readonly seq: bigint;
}

const NO_SNAPSHOT = 0;
const EMPTY_SNAPSHOT = 1;
const SNAPSHOT = 2;

function snapshotKind(s: Readonly<Record<string, ColumnValue>> | null): number {
  if (s === null) return NO_SNAPSHOT;
  for (const _ in s) return SNAPSHOT;
  return EMPTY_SNAPSHOT;
}

/** Shared: snapshots are read-only, and an empty one is the common case (no rule reads the table). */
const NO_VALUES: Readonly<Record<string, ColumnValue>> = Object.freeze({});

function readSnapshot(r: Unpacker, kind: number): Readonly<Record<string, ColumnValue>> | null {
  if (kind === NO_SNAPSHOT) return null;
  if (kind === EMPTY_SNAPSHOT) return NO_VALUES;
  return r.columns();
}

const segmentClients: string[] = [];

/**
 * A log segment: the entries of one append, which have consecutive seqs.
 * 0x03, the distinct client ids (count, then each), the entry count, then
 * per entry: its byte length (u32, so a reader can skip it), client number,
 * hlc (u64), delta id, table, row id, a flags byte (op, fresh, snapshot
 * kinds), the columns, then the non-empty snapshots.
 */
export function packSegment(p: Packer, entries: readonly StoredEntry[]): void {
  segmentClients.length = 0;
  for (const e of entries) if (!segmentClients.includes(e.delta.clientId)) segmentClients.push(e.delta.clientId);
  p.byte(3);
  p.varint(segmentClients.length);
  for (const c of segmentClients) p.str(c);
  p.varint(entries.length);
  let last = 0;
  let lastClient = segmentClients[0];
  for (const e of entries) {
    const d = e.delta;
    const lengthAt = p.pos;
    p.u32(0);
    if (d.clientId !== lastClient) {
      lastClient = d.clientId;
      last = segmentClients.indexOf(d.clientId);
    }
    p.varint(last);
    p.u64(d.hlc);
    p.str(d.deltaId);
    p.str(d.table);
    p.str(d.rowId);
    const before = snapshotKind(e.before);
    const after = snapshotKind(e.after);
    p.byte((OP_TAG[d.op] as number) | (e.fresh ? 4 : 0) | (before << 3) | (after << 5));
    p.columns(d.columns);
    if (before === SNAPSHOT) p.columns(e.before as Readonly<Record<string, ColumnValue>>);
    if (after === SNAPSHOT) p.columns(e.after as Readonly<Record<string, ColumnValue>>);
    p.patchU32(lengthAt, p.pos - lengthAt - 4);
  }
  segmentClients.length = 0;
}

/** Reads a segment's entries in order; `skip` passes over entries without decoding them. */
export class SegmentReader {
  readonly count: number;
  /** Entries read or skipped so far. */
  index = 0;
  private readonly r: Unpacker;
  private readonly clients: string[];

  constructor(bytes: Uint8Array) {
    const r = (this.r = new Unpacker(bytes));
    if (r.byte() !== 3) throw new RangeError('unknown log segment encoding');
    const n = r.varint();
    this.clients = new Array<string>(n);
    for (let i = 0; i < n; i++) this.clients[i] = r.name();
    this.count = r.varint();
  }

  skip(n: number): void {
    for (let i = 0; i < n && this.index < this.count; i++, this.index++) {
      const length = this.r.u32();
      this.r.pos += length;
    }
  }

  next(seq: bigint): UnpackedEntry {
    const r = this.r;
    if (this.index >= this.count) throw new RangeError('read past the last entry');
    this.index++;
    r.u32();
    const clientId = this.clients[r.varint()];
    if (clientId === undefined) throw new RangeError('bad client number');
    const hlc = r.u64();
    const deltaId = r.str();
    const table = r.name();
    const rowId = r.str();
    const flags = r.byte();
    const op = TAG_OP[flags & 3];
    if (op === undefined) throw new RangeError('unknown op');
    const columns = r.columns();
    const before = readSnapshot(r, (flags >> 3) & 3);
    const after = readSnapshot(r, (flags >> 5) & 3);
    return { seq, delta: { deltaId, table, rowId, op, columns, hlc, clientId }, before, after, fresh: (flags & 4) !== 0 };
  }
}

/** The distinct stamps of the row being packed (reused: packRow allocates nothing of its own). */
const stamps: Stamp[] = [];
let stampCount = 0;

function stampIndex(s: Stamp | null): number {
  if (s === null) return 0;
  for (let i = 0; i < stampCount; i++) {
    const t = stamps[i] as Stamp;
    if (t === s || (t.hlc === s.hlc && t.clientId === s.clientId)) return i + 1;
  }
  stamps[stampCount++] = s;
  return stampCount;
}

/**
 * Row state, version 2: 0x02, the distinct stamps (count, then hlc and
 * client id each), inserted and deleted as stamp numbers (0 for none), then
 * the column count and each column's name, value and stamp number.
 */
export function packRow(p: Packer, row: RowState): void {
  stampCount = 0;
  const inserted = stampIndex(row.inserted);
  const deleted = stampIndex(row.deleted);
  let columnCount = 0;
  for (const name in row.columns) {
    stampIndex((row.columns[name] as ColumnState).stamp);
    columnCount++;
  }
  p.byte(2);
  p.varint(stampCount);
  for (let i = 0; i < stampCount; i++) {
    const s = stamps[i] as Stamp;
    p.u64(s.hlc);
    p.str(s.clientId);
  }
  p.varint(inserted);
  p.varint(deleted);
  p.varint(columnCount);
  for (const name in row.columns) {
    const col = row.columns[name] as ColumnState;
    p.str(name);
    p.value(col.value);
    p.varint(stampIndex(col.stamp));
  }
}

export function unpackRow(table: string, rowId: string, bytes: Uint8Array): RowState {
  const r = new Unpacker(bytes);
  if (r.byte() !== 2) throw new RangeError('unknown row encoding');
  const nStamps = r.varint();
  const stamps = new Array<Stamp | null>(nStamps + 1);
  stamps[0] = null;
  for (let i = 1; i <= nStamps; i++) {
    const hlc = r.u64();
    stamps[i] = { hlc, clientId: r.name() };
  }
  const stamp = (i: number): Stamp | null => {
    if (i > nStamps) throw new RangeError('bad stamp number');
    return stamps[i] as Stamp | null;
  };
  const inserted = stamp(r.varint());
  const deleted = stamp(r.varint());
  const columns: Record<string, ColumnState> = {};
  const n = r.varint();
  for (let i = 0; i < n; i++) {
    const name = r.name();
    const value = r.value();
    const s = stamp(r.varint());
    if (s === null) throw new RangeError('column without stamp');
    setColumn(columns, name, { value, stamp: s });
  }
  return { table, rowId, inserted, deleted, columns };
}
