import { WireReader } from '../../core/protocol/wire-reader.ts';
import { clientPart, hlcKeyOf } from './state-text.ts';

/**
 * A reader of checkpoint chunks (protobuf PullResponse pages of `row`
 * changes) for LocalStore.applyCheckpointChunk: it walks the bytes row by
 * row into reused scratch arrays (column names, SQL-ready values, stamps as
 * 32-bit halves), so a million rows cost no RowState, Stamp or ColumnState
 * objects.
 *
 * It reads only what our server writes: each Change holds just a `row`, a
 * row's scalar fields come at most once, no unknown fields, every column has
 * a name, a value and a stamp. Anything else throws NOT_CANONICAL (as does
 * any wire error), and the caller falls back to decodePullResponse, which
 * handles every legal message and reports errors as the protocol says.
 */

export const NOT_CANONICAL = new Error('checkpoint chunk: not in the canonical layout');

/** Kinds of a column value (Value's oneof arms). */
export const V_NULL = 1;
export const V_STRING = 2;
export const V_INT = 3;
export const V_DOUBLE = 4;
export const V_BOOL = 5;
export const V_JSON = 6;

const TWO_32 = 4294967296;
/** Integers below 2^51 in magnitude bind as numbers (INTEGER affinity stores them exactly); larger ones as bigint. */
const SAFE_HI = 1 << 19;
const int64View = new DataView(new ArrayBuffer(8));

function bail(): never {
  throw NOT_CANONICAL;
}

export class ChunkReader {
  private readonly r: WireReader;
  /** Index of the current change in the page. */
  index = -1;
  table = '';
  rowId = '';
  /** Number of columns of the current row, and per column: name, kind, SQL value, stamp slot. */
  count = 0;
  readonly names: string[] = [];
  readonly kinds: number[] = [];
  readonly values: unknown[] = [];
  readonly stampOf: number[] = [];
  /** Distinct stamps of the current row: hlc halves (unsigned) and client id. */
  stamps = 0;
  readonly hi: number[] = [];
  readonly lo: number[] = [];
  readonly clients: string[] = [];
  inserted = -1;
  deleted = -1;
  /** The greatest hlc of any stamp read so far (halves, unsigned): the client's clock takes it in. */
  private maxHi = 0;
  private maxLo = 0;
  private lastTable = '';
  private lastClient = '';
  /** Varint halves of the last readVarint64. */
  private vlo = 0;
  private vhi = 0;

  constructor(bytes: Uint8Array) {
    this.r = new WireReader(bytes);
  }

  /** The greatest hlc among the stamps of the rows read so far. */
  maxHlc(): bigint {
    return (BigInt(this.maxHi) << 32n) | BigInt(this.maxLo);
  }

  /** Moves to the next row; false at the end of the page. */
  next(): boolean {
    const r = this.r;
    while (r.pos < r.len) {
      const t = r.tag();
      switch (t) {
        case 0x0a: {
          // Change: exactly one `row` field filling it.
          const end = r.end();
          if (r.tag() !== 0x12) bail();
          const rowEnd = r.end();
          if (rowEnd !== end || end > r.len) bail();
          this.index++;
          this.readRow(rowEnd);
          return true;
        }
        case 0x12:
          r.string(); // next_cursor
          break;
        case 0x18:
          r.bool(); // has_more
          break;
        case 0x20:
          this.readVarint64(); // server_hlc
          break;
        default:
          bail();
      }
    }
    return false;
  }

  private readRow(end: number): void {
    const r = this.r;
    let seen = 0;
    this.count = 0;
    this.stamps = 0;
    this.inserted = -1;
    this.deleted = -1;
    this.table = '';
    this.rowId = '';
    while (r.pos < end) {
      const t = r.tag();
      const field = t >>> 3;
      if (field !== 5) {
        if ((seen & (1 << field)) !== 0) bail();
        seen |= 1 << field;
      }
      switch (t) {
        case 0x0a:
          this.table = this.lastTable = r.name(this.lastTable);
          break;
        case 0x12:
          this.rowId = r.string();
          break;
        case 0x1a:
          this.inserted = this.readStamp();
          break;
        case 0x22:
          this.deleted = this.readStamp();
          break;
        case 0x2a:
          this.readColumn();
          break;
        default:
          bail();
      }
    }
    if (r.pos !== end) bail();
  }

  private readColumn(): void {
    const r = this.r;
    const end = r.end();
    const c = this.count;
    let name: string | undefined;
    let kind = 0;
    let stamp = -1;
    while (r.pos < end) {
      const t = r.tag();
      switch (t) {
        case 0x0a:
          if (name !== undefined) bail();
          name = r.name(this.names[c]);
          break;
        case 0x12:
          if (kind !== 0) bail();
          kind = this.readValue(c);
          break;
        case 0x1a:
          if (stamp !== -1) bail();
          stamp = this.readStamp();
          break;
        default:
          bail();
      }
    }
    if (r.pos !== end || name === undefined || kind === 0 || stamp === -1) bail();
    this.names[c] = name;
    this.kinds[c] = kind;
    this.stampOf[c] = stamp;
    this.count = c + 1;
  }

  /** A Value message into values[c]; returns its kind. */
  private readValue(c: number): number {
    const r = this.r;
    const end = r.end();
    const t = r.tag();
    let kind: number;
    switch (t) {
      case 0x08:
        r.uint32();
        this.values[c] = null;
        kind = V_NULL;
        break;
      case 0x12:
        this.values[c] = r.string();
        kind = V_STRING;
        break;
      case 0x18: {
        this.readVarint64();
        const hi = this.vhi | 0;
        if (hi >= -SAFE_HI && hi < SAFE_HI) this.values[c] = hi * TWO_32 + (this.vlo >>> 0);
        else {
          int64View.setInt32(0, this.vlo, true);
          int64View.setInt32(4, this.vhi, true);
          this.values[c] = int64View.getBigInt64(0, true);
        }
        kind = V_INT;
        break;
      }
      case 0x21:
        this.values[c] = r.double();
        kind = V_DOUBLE;
        break;
      case 0x28:
        this.values[c] = r.bool() ? 1 : 0;
        kind = V_BOOL;
        break;
      case 0x32:
        this.values[c] = r.string();
        kind = V_JSON;
        break;
      default:
        bail();
    }
    if (r.pos !== end) bail();
    return kind;
  }

  /** A Stamp message; returns its slot among the row's distinct stamps. */
  private readStamp(): number {
    const r = this.r;
    const end = r.end();
    let hi = 0;
    let lo = 0;
    let client = '';
    let seen = 0;
    while (r.pos < end) {
      const t = r.tag();
      if (t === 0x08 && (seen & 1) === 0) {
        this.readVarint64();
        hi = this.vhi >>> 0;
        lo = this.vlo >>> 0;
        seen |= 1;
      } else if (t === 0x12 && (seen & 2) === 0) {
        client = this.lastClient = r.name(this.lastClient);
        seen |= 2;
      } else bail();
    }
    if (r.pos !== end) bail();
    if (hi > this.maxHi || (hi === this.maxHi && lo > this.maxLo)) {
      this.maxHi = hi;
      this.maxLo = lo;
    }
    for (let s = 0; s < this.stamps; s++) {
      if (this.lo[s] === lo && this.hi[s] === hi && this.clients[s] === client) return s;
    }
    const s = this.stamps++;
    this.hi[s] = hi;
    this.lo[s] = lo;
    this.clients[s] = client;
    return s;
  }

  /** A varint of up to 10 bytes into vlo/vhi (low 64 bits, as protobuf reads it). */
  private readVarint64(): void {
    const r = this.r;
    const buf = r.buf;
    let pos = r.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= r.len) bail();
      const b = buf[pos++] as number;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x70) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if ((b & 0x80) === 0) {
        r.pos = pos;
        this.vlo = lo;
        this.vhi = hi;
        return;
      }
    }
    bail();
  }

  /** Compare stamps a and b of the current row as compareStamps does. */
  compare(a: number, b: number): number {
    const ha = this.hi[a] as number;
    const hb = this.hi[b] as number;
    if (ha !== hb) return ha < hb ? -1 : 1;
    const la = this.lo[a] as number;
    const lb = this.lo[b] as number;
    if (la !== lb) return la < lb ? -1 : 1;
    const ca = this.clients[a] as string;
    const cb = this.clients[b] as string;
    if (ca === cb) return 0;
    return ca < cb ? -1 : 1;
  }
}

const HEX = '0123456789abcdef';
const order: number[] = [];
const nibbles: number[] = [];

/**
 * The state text (state-text.ts) of the reader's current row, all of whose
 * values go to app columns: `bit[k]` is column k's number in the table's
 * layout. Equal to encodeState of the decoded row.
 */
export function chunkStateText(c: ChunkReader, bit: ArrayLike<number>): string {
  const n = c.stamps;
  order.length = 0;
  for (let s = 0; s < n; s++) {
    // Insertion sort, greatest first: rows have one or a few stamps.
    let i = order.length;
    while (i > 0 && c.compare(order[i - 1] as number, s) < 0) i--;
    order.splice(i, 0, s);
  }
  let out = '';
  let previous: string | null = null;
  for (const s of order) {
    const flag = c.inserted === s ? (c.deleted === s ? 'b' : 'i') : c.deleted === s ? 'd' : 'u';
    nibbles.length = 0;
    for (let k = 0; k < c.count; k++) {
      if (c.stampOf[k] !== s) continue;
      const i = bit[k] as number;
      while (nibbles.length <= i >> 2) nibbles.push(0);
      nibbles[i >> 2]! |= 1 << (i & 3);
    }
    let mask = '';
    for (const v of nibbles) mask += HEX[v];
    const client = c.clients[s] as string;
    out += hlcKeyOf(c.hi[s] as number, c.lo[s] as number) + flag + clientPart(client, previous) + mask + ';';
    previous = client;
  }
  return out;
}
