import { LakeError } from './errors.ts';

/**
 * Joining Parquet files written from consecutive slices of the same rows
 * (same schema, same writer settings) into one file whose row groups are the
 * pieces' row groups in order. Lets the pieces be encoded on several threads
 * and still land as one data file.
 *
 * The footer (Thrift compact protocol) is decoded generically, so fields we
 * do not know survive untouched; only the absolute file offsets are shifted.
 * Page indexes (offset and column index) are dropped: they are optional, and
 * their page offsets would need rewriting too.
 */

// ---------- Thrift compact protocol, generic ----------

const T_STOP = 0;
const T_TRUE = 1;
const T_FALSE = 2;
const T_BYTE = 3;
const T_I16 = 4;
const T_I32 = 5;
const T_I64 = 6;
const T_DOUBLE = 7;
const T_BINARY = 8;
const T_LIST = 9;
const T_SET = 10;
const T_MAP = 11;
const T_STRUCT = 12;

interface TList {
  elemType: number;
  items: TValue[];
}
interface TMap {
  keyType: number;
  valueType: number;
  entries: [TValue, TValue][];
}
type TValue = number | bigint | boolean | Uint8Array | TList | TMap | TStruct;
/** Fields in wire order; bool fields keep their value in `value`. */
type TStruct = { id: number; type: number; value: TValue }[];

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new LakeError('CORRUPT_METADATA', 'parquet footer ends early');
    return this.buf[this.pos++] as number;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }

  /** Small varints (lengths, sizes, i16/i32) without bigint. */
  uvarint32(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
  }

  zigzag32(): number {
    const n = this.uvarint32();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  zigzag64(): bigint {
    const n = this.varint();
    return (n >> 1n) ^ -(n & 1n);
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new LakeError('CORRUPT_METADATA', 'parquet footer ends early');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  value(type: number): TValue {
    switch (type) {
      case T_TRUE:
        return true;
      case T_FALSE:
        return false;
      case T_BYTE:
        return this.byte();
      case T_I16:
      case T_I32:
        return this.zigzag32();
      case T_I64:
        return this.zigzag64();
      case T_DOUBLE:
        return this.bytes(8);
      case T_BINARY:
        return this.bytes(this.uvarint32());
      case T_LIST:
      case T_SET: {
        const head = this.byte();
        const size = head >> 4 === 15 ? this.uvarint32() : head >> 4;
        const elemType = head & 0x0f;
        const items: TValue[] = [];
        // Booleans inside collections are one byte each (1 true, 2 false... or 0): keep it.
        for (let i = 0; i < size; i++) items.push(elemType === T_TRUE || elemType === T_FALSE ? this.byte() : this.value(elemType));
        return { elemType, items };
      }
      case T_MAP: {
        const size = this.uvarint32();
        if (size === 0) return { keyType: 0, valueType: 0, entries: [] };
        const kv = this.byte();
        const keyType = kv >> 4;
        const valueType = kv & 0x0f;
        const entries: [TValue, TValue][] = [];
        for (let i = 0; i < size; i++) entries.push([this.value(keyType), this.value(valueType)]);
        return { keyType, valueType, entries };
      }
      case T_STRUCT:
        return this.struct();
      default:
        throw new LakeError('CORRUPT_METADATA', `unknown thrift type ${type} in parquet footer`);
    }
  }

  struct(): TStruct {
    const fields: TStruct = [];
    let last = 0;
    for (;;) {
      const head = this.byte();
      const type = head & 0x0f;
      if (type === T_STOP) return fields;
      const delta = head >> 4;
      const id = delta === 0 ? this.zigzag32() : last + delta;
      last = id;
      fields.push({ id, type, value: this.value(type) });
    }
  }
}

class Writer {
  private buf = new Uint8Array(4096);
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  varint(n: bigint): void {
    while (n >= 0x80n) {
      this.byte(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.byte(Number(n));
  }

  uvarint32(n: number): void {
    while (n >= 0x80) {
      this.byte((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    this.byte(n);
  }

  zigzag32(n: number): void {
    this.uvarint32(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  zigzag64(n: bigint): void {
    this.varint(n >= 0n ? n << 1n : (-n << 1n) - 1n);
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  value(type: number, v: TValue): void {
    switch (type) {
      case T_TRUE:
      case T_FALSE:
        return; // carried in the field header
      case T_BYTE:
        return this.byte(v as number);
      case T_I16:
      case T_I32:
        return this.zigzag32(v as number);
      case T_I64:
        return this.zigzag64(v as bigint);
      case T_DOUBLE:
        return this.bytes(v as Uint8Array);
      case T_BINARY: {
        const b = v as Uint8Array;
        this.uvarint32(b.length);
        return this.bytes(b);
      }
      case T_LIST:
      case T_SET: {
        const l = v as TList;
        if (l.items.length < 15) this.byte((l.items.length << 4) | l.elemType);
        else {
          this.byte(0xf0 | l.elemType);
          this.uvarint32(l.items.length);
        }
        for (const item of l.items) {
          if (l.elemType === T_TRUE || l.elemType === T_FALSE) this.byte(item as number);
          else this.value(l.elemType, item);
        }
        return;
      }
      case T_MAP: {
        const m = v as TMap;
        this.uvarint32(m.entries.length);
        if (m.entries.length === 0) return;
        this.byte((m.keyType << 4) | m.valueType);
        for (const [k, val] of m.entries) {
          this.value(m.keyType, k);
          this.value(m.valueType, val);
        }
        return;
      }
      case T_STRUCT:
        return this.struct(v as TStruct);
      default:
        throw new LakeError('CORRUPT_METADATA', `unknown thrift type ${type}`);
    }
  }

  struct(fields: TStruct): void {
    let last = 0;
    for (const f of fields) {
      const type = f.type === T_TRUE || f.type === T_FALSE ? (f.value === true ? T_TRUE : T_FALSE) : f.type;
      const delta = f.id - last;
      if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
      else {
        this.byte(type);
        this.zigzag32(f.id);
      }
      last = f.id;
      this.value(type, f.value);
    }
    this.byte(T_STOP);
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

// ---------- Parquet footer ----------

const MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1"

function hasMagic(b: Uint8Array, at: number): boolean {
  return MAGIC.every((m, i) => b[at + i] === m);
}

function field(s: TStruct, id: number): { id: number; type: number; value: TValue } | undefined {
  return s.find((f) => f.id === id);
}

function footerOf(file: Uint8Array): { meta: TStruct; start: number } {
  const n = file.length;
  if (n < 12 || !hasMagic(file, 0) || !hasMagic(file, n - 4)) throw new LakeError('CORRUPT_METADATA', 'not a parquet file');
  const len = new DataView(file.buffer, file.byteOffset, n).getUint32(n - 8, true);
  const start = n - 8 - len;
  if (start < 4) throw new LakeError('CORRUPT_METADATA', 'parquet footer length out of range');
  return { meta: new Reader(file.subarray(start, n - 8)).struct(), start };
}

// FileMetaData, RowGroup, ColumnChunk and ColumnMetaData field ids (parquet.thrift).
const FMD_NUM_ROWS = 3;
const FMD_ROW_GROUPS = 4;
const RG_COLUMNS = 1;
const RG_FILE_OFFSET = 5;
const RG_ORDINAL = 7;
const CC_FILE_OFFSET = 2;
const CC_META = 3;
/** offset_index_offset/length, column_index_offset/length. */
const CC_PAGE_INDEX = new Set([4, 5, 6, 7]);
const CMD_OFFSETS = new Set([9, 10, 11]); // data, index, dictionary page offsets
const CMD_BLOOM_OFFSET = 14;

/** Shift the offsets among `ids`; 0 is "unset" (parquet-wasm writes ColumnChunk.file_offset as 0) and stays 0. */
function shiftI64(s: TStruct, ids: ReadonlySet<number>, by: bigint): void {
  for (const f of s) if (ids.has(f.id) && f.type === T_I64 && f.value !== 0n) f.value = (f.value as bigint) + by;
}

/** The end of a piece's column chunk data: everything after it (page indexes) is left out. */
function dataEnd(rowGroups: TStruct[], footerStart: number): number {
  let end = 4;
  for (const rg of rowGroups) {
    for (const cc of (field(rg, RG_COLUMNS)?.value as TList).items as TStruct[]) {
      const md = field(cc, CC_META)?.value as TStruct | undefined;
      if (md === undefined) throw new LakeError('CORRUPT_METADATA', 'parquet column chunk without metadata');
      if (field(md, CMD_BLOOM_OFFSET) !== undefined) throw new LakeError('CORRUPT_METADATA', 'bloom filters are not supported when joining parquet pieces');
      let first = Infinity;
      for (const id of CMD_OFFSETS) {
        const f = field(md, id);
        if (f !== undefined) first = Math.min(first, Number(f.value as bigint));
      }
      const size = Number(field(md, 7)?.value as bigint); // total_compressed_size
      end = Math.max(end, first + size);
    }
  }
  if (end > footerStart) throw new LakeError('CORRUPT_METADATA', 'parquet column chunks overlap the footer');
  return end;
}

/**
 * One Parquet file from pieces written with the same schema and settings:
 * their row groups in order, statistics as written, no page indexes. The
 * key-value metadata (Arrow schema) and created-by come from the first piece.
 */
export function joinParquetPieces(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  let base: TStruct | undefined;
  const rowGroups: TStruct[] = [];
  const regions: Uint8Array[] = [];
  let rows = 0n;
  let pos = 4; // after the leading magic
  for (const piece of pieces) {
    const { meta, start } = footerOf(piece);
    base ??= meta;
    const groups = ((field(meta, FMD_ROW_GROUPS)?.value as TList | undefined)?.items ?? []) as TStruct[];
    const end = dataEnd(groups, start);
    const shift = BigInt(pos - 4);
    for (const rg of groups) {
      const columns = (field(rg, RG_COLUMNS)?.value as TList).items as TStruct[];
      for (let i = 0; i < columns.length; i++) {
        const cc = (columns[i] as TStruct).filter((f) => !CC_PAGE_INDEX.has(f.id));
        shiftI64(cc, new Set([CC_FILE_OFFSET]), shift);
        shiftI64(field(cc, CC_META)?.value as TStruct, CMD_OFFSETS, shift);
        columns[i] = cc;
      }
      shiftI64(rg, new Set([RG_FILE_OFFSET]), shift);
      const ordinal = field(rg, RG_ORDINAL);
      if (ordinal !== undefined) ordinal.value = rowGroups.length;
      rowGroups.push(rg);
    }
    rows += field(meta, FMD_NUM_ROWS)?.value as bigint;
    regions.push(piece.subarray(4, end));
    pos += end - 4;
  }
  const meta = (base as TStruct).map((f) => {
    if (f.id === FMD_NUM_ROWS) return { ...f, value: rows };
    if (f.id === FMD_ROW_GROUPS) return { ...f, value: { elemType: T_STRUCT, items: rowGroups } };
    return f;
  });
  const w = new Writer();
  w.struct(meta);
  const footer = w.result();
  const out = new Uint8Array(pos + footer.length + 8);
  out.set(MAGIC, 0);
  let at = 4;
  for (const r of regions) {
    out.set(r, at);
    at += r.length;
  }
  out.set(footer, at);
  at += footer.length;
  new DataView(out.buffer).setUint32(at, footer.length, true);
  out.set(MAGIC, at + 4);
  return out;
}

/** Exposed for tests: decode and re-encode a footer (must be byte-identical). */
export function roundTripFooter(file: Uint8Array): { original: Uint8Array; encoded: Uint8Array } {
  const { meta, start } = footerOf(file);
  const w = new Writer();
  w.struct(meta);
  return { original: file.subarray(start, file.length - 8), encoded: w.result() };
}
