import type { Hlc } from '../hlc.ts';

/**
 * Small binary encodings of the DynamoDB buffer's index items (see
 * dynamodb-buffer.ts): a group of stamps and the row writes of one append.
 * Unsigned LEB128 varints over bigints, so hlc and seq gaps of any size fit.
 */
class Bytes {
  private buf = new Uint8Array(256);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  uv(v: bigint | number): void {
    let x = BigInt(v);
    if (x < 0n) throw new RangeError('negative varint');
    this.ensure(10);
    while (x > 0x7fn) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }

  str(s: string): void {
    const b = encoder.encode(s);
    this.uv(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  uv(): bigint {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new RangeError('read past end');
      const b = this.buf[this.pos++] as number;
      x |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return x;
      shift += 7n;
    }
  }

  n(): number {
    return Number(this.uv());
  }

  str(): string {
    const len = this.n();
    if (this.pos + len > this.buf.length) throw new RangeError('read past end');
    const s = decoder.decode(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface StampSeq {
  readonly hlc: Hlc;
  readonly seq: bigint;
}

/**
 * Stamps of one client, sorted by hlc: the count, the first hlc and seq,
 * then per stamp the hlc gap and the seq as a zigzag gap (seqs of a
 * client's later hlcs are usually, not always, later). About 3 bytes a
 * stamp for a client writing in order.
 */
export function encodeStamps(stamps: readonly StampSeq[]): Uint8Array {
  const w = new Bytes();
  w.uv(stamps.length);
  let hlc = 0n;
  let seq = 0n;
  for (const s of stamps) {
    if (s.hlc < hlc) throw new RangeError('stamps must be sorted by hlc');
    w.uv(s.hlc - hlc);
    const d = s.seq - seq;
    w.uv(d >= 0n ? d * 2n : -d * 2n - 1n);
    hlc = s.hlc;
    seq = s.seq;
  }
  return w.done();
}

export function decodeStamps(bytes: Uint8Array): StampSeq[] {
  const r = new Reader(bytes);
  const n = r.n();
  const out: StampSeq[] = [];
  let hlc = 0n;
  let seq = 0n;
  for (let i = 0; i < n; i++) {
    hlc += r.uv();
    const z = r.uv();
    seq += z % 2n === 0n ? z / 2n : -(z + 1n) / 2n;
    out.push({ hlc, seq });
  }
  return out;
}

/**
 * One row write of an append, as stored in its log item: the row is named
 * by the index of its first entry in the append (or by table and row id
 * when no entry touches it), and its new state is either the fold of the
 * append's entries of that row over the previous state (`explicit` false:
 * nothing more is stored) or explicit (the state is stored beside).
 */
export interface RowWriteRef {
  /** Index of the row's first entry in the append; -1 when no entry touches it. */
  readonly entry: number;
  readonly table?: string;
  readonly rowId?: string;
  readonly explicit: boolean;
}

export function encodeRowWrites(writes: readonly RowWriteRef[]): Uint8Array {
  const w = new Bytes();
  w.uv(writes.length);
  for (const x of writes) {
    // entry + 1, doubled, low bit = explicit: 0 names the row by table and id.
    w.uv((x.entry + 1) * 2 + (x.explicit ? 1 : 0));
    if (x.entry < 0) {
      w.str(x.table as string);
      w.str(x.rowId as string);
    }
  }
  return w.done();
}

export function decodeRowWrites(bytes: Uint8Array): RowWriteRef[] {
  const r = new Reader(bytes);
  const n = r.n();
  const out: RowWriteRef[] = [];
  for (let i = 0; i < n; i++) {
    const v = r.n();
    const entry = Math.floor(v / 2) - 1;
    const explicit = v % 2 === 1;
    if (entry < 0) out.push({ entry, table: r.str(), rowId: r.str(), explicit });
    else out.push({ entry, explicit });
  }
  return out;
}
