/**
 * Protobuf wire writer for the hand-written encoders in proto-encode.ts.
 * Writes the same bytes as @bufbuild/protobuf's BinaryWriter: minimal
 * varints, little-endian doubles, UTF-8 strings with lone surrogates
 * replaced by U+FFFD (TextEncoder), negative int32 as 10 bytes.
 *
 * One writer is reused across messages, so encoding allocates only the
 * final copy. Length prefixes are reserved with a guessed size and the
 * payload is moved in the rare case the guess was wrong.
 */

const utf8 = new TextEncoder();
/** Scratch for splitting a bigint into two 32-bit halves. */
const int64View = new DataView(new ArrayBuffer(8));

/** Bytes backed by a plain ArrayBuffer, so they can be a fetch body. */
export type WireBytes = Uint8Array<ArrayBuffer>;

/** Up to this length a loop beats TextEncoder.encodeInto's fixed cost for ASCII (< 0x80, so a one-byte prefix). */
const ASCII_LOOP_MAX = 40;
/** A pull page of 5,000 deltas is under 1 MiB; a buffer grown past this is dropped after use. */
const MAX_KEPT = 4 * 1024 * 1024;

export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

export class WireWriter {
  private readonly initial: number;
  private buf: WireBytes;
  private view: DataView;
  pos = 0;

  constructor(initial = 64 * 1024) {
    this.initial = initial;
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** An unsigned 32-bit varint (tags too). The caller has range-checked it. */
  uint32(v: number): void {
    this.ensure(5);
    const buf = this.buf;
    let pos = this.pos;
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  /** A signed 32-bit varint: negative values are sign-extended to 10 bytes. */
  int32(v: number): void {
    if (v >= 0) {
      this.uint32(v);
      return;
    }
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < 9; i++) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>= 7;
    }
    buf[pos++] = 1;
    this.pos = pos;
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  /** Up to three raw bytes (tags, short lengths, small values). */
  bytes3(a: number, b: number, c: number, n: 1 | 2 | 3): void {
    this.ensure(3);
    const buf = this.buf;
    const pos = this.pos;
    buf[pos] = a;
    buf[pos + 1] = b;
    buf[pos + 2] = c;
    this.pos = pos + n;
  }

  double(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** A uint64 varint; the caller has checked 0 <= v < 2^64. */
  uint64(v: bigint): void {
    int64View.setBigUint64(0, v, true);
    this.varint64(int64View.getUint32(0, true), int64View.getUint32(4, true));
  }

  /** An int64 varint (two's complement, 10 bytes when negative); the caller has checked the range. */
  int64(v: bigint): void {
    int64View.setBigInt64(0, v, true);
    this.varint64(int64View.getUint32(0, true), int64View.getUint32(4, true));
  }

  private varint64(lo: number, hi: number): void {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    if (hi === 0) {
      while (lo > 0x7f) {
        buf[pos++] = (lo & 0x7f) | 0x80;
        lo >>>= 7;
      }
      buf[pos++] = lo;
      this.pos = pos;
      return;
    }
    // Low 28 bits, then 4 low + 3 high bits, then the rest of the high word.
    for (let i = 0; i < 4; i++) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    let v = (lo & 0x0f) | ((hi & 0x07) << 4);
    hi >>>= 3;
    while (hi !== 0) {
      buf[pos++] = v | 0x80;
      v = hi & 0x7f;
      hi >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  /** A string field: one-byte tag, length, UTF-8. */
  tagString(tag: number, s: string): void {
    this.ensure(1);
    this.buf[this.pos++] = tag;
    this.string(s);
  }

  string(s: string): void {
    if (typeof s !== 'string') s = String(s); // like BinaryWriter, for values typed loosely at run time
    const n = s.length;
    this.ensure(n * 3 + 5);
    const buf = this.buf;
    const start = this.pos;
    if (n <= ASCII_LOOP_MAX) {
      // ASCII fast path: the length prefix is one byte.
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[start + 1 + i] = c;
      }
      if (i === n) {
        buf[start] = n;
        this.pos = start + 1 + n;
        return;
      }
    }
    // UTF-8 is at least as long as the UTF-16 length, so guess that prefix size.
    const guess = varintSize(n);
    const { written } = utf8.encodeInto(s, buf.subarray(start + guess));
    const size = varintSize(written);
    if (size !== guess) buf.copyWithin(start + size, start + guess, start + guess + written);
    this.pos = start;
    this.uint32(written);
    this.pos += written;
  }

  /** Reserve `guess` bytes for a length prefix; returns where it starts. */
  fork(guess: number): number {
    this.ensure(guess);
    const start = this.pos;
    this.pos += guess;
    return start;
  }

  /** Write the length of everything since fork() into its prefix. */
  join(start: number, guess: number): void {
    const len = this.pos - start - guess;
    const size = varintSize(len);
    if (size !== guess) {
      if (size > guess) this.ensure(size - guess);
      this.buf.copyWithin(start + size, start + guess, this.pos);
      this.pos += size - guess;
    }
    const end = this.pos;
    this.pos = start;
    this.uint32(len);
    this.pos = end;
  }

  /** A copy of what was written; the writer starts over. */
  finish(): WireBytes {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    // Do not hold on to the buffer of one exceptionally large message.
    if (this.buf.length > MAX_KEPT) {
      this.buf = new Uint8Array(this.initial);
      this.view = new DataView(this.buf.buffer);
    }
    return out;
  }

  /** Forget a half-written message (after a throw). */
  reset(): void {
    this.pos = 0;
  }
}
