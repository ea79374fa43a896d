import { ASCII_MAX, asciiString } from './ascii.ts';

/**
 * Protobuf wire reader for the hand-written decoders in proto-decode.ts.
 *
 * It accepts and refuses exactly the bytes that @bufbuild/protobuf's
 * BinaryReader does when fromBinary() drives it (the generated code was the
 * decoder before, and clients of either must agree): varints of up to 10
 * bytes keep their low 32 or 64 bits, tags must fit 5 bytes with a field
 * number > 0 and a wire type <= 5, any read past the end throws, strings are
 * strict UTF-8 (proto3 verifies them), a leading U+FEFF is kept. Only the
 * error messages may differ; callers turn every throw into MALFORMED_BODY.
 *
 * It is faster mainly because tags are plain numbers (no [fieldNo, wireType]
 * array per field) and short ASCII strings skip TextDecoder.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Scratch for turning two 32-bit halves into a bigint. */
const int64View = new DataView(new ArrayBuffer(8));

/** Recent short ASCII names, by hash: repeated table/column/client names decode to one string. */
const NAME_SLOTS = 512;
const names: string[] = new Array<string>(NAME_SLOTS).fill('');

function eof(): RangeError {
  return new RangeError('premature EOF');
}

export class WireReader {
  readonly buf: Uint8Array;
  readonly len: number;
  pos = 0;
  /** Halves of the last 64-bit varint. */
  private lo = 0;
  private hi = 0;
  private view: DataView | undefined;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.len = buf.length;
  }

  /** A field tag, fieldNo << 3 | wireType, as an unsigned number. */
  tag(): number {
    const pos = this.pos;
    if (pos < this.len) {
      const b = this.buf[pos] as number;
      // One byte: field numbers 1-15, the common case.
      if (b < 0x80 && b >= 8 && (b & 7) <= 5) {
        this.pos = pos + 1;
        return b;
      }
    }
    const t = this.uint32();
    const read = this.pos - pos;
    if (read > 5 || (read === 5 && (this.buf[this.pos - 1] as number) > 0x0f)) throw new Error('illegal tag: varint overflows uint32');
    if (t >>> 3 === 0 || (t & 7) > 5) throw new Error(`illegal tag: field no ${t >>> 3} wire type ${t & 7}`);
    return t;
  }

  /** uint32: the low 32 bits of a varint of at most 10 bytes. */
  uint32(): number {
    const pos = this.pos;
    if (pos < this.len) {
      const b = this.buf[pos] as number;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return this.uint32Slow();
  }

  private uint32Slow(): number {
    const buf = this.buf;
    const len = this.len;
    let pos = this.pos;
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= len) throw eof();
      const b = buf[pos++] as number;
      if (i < 4) result |= (b & 0x7f) << (7 * i);
      else if (i === 4) result |= (b & 0x0f) << 28;
      if ((b & 0x80) === 0) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    throw new Error('invalid varint');
  }

  int32(): number {
    return this.uint32() | 0;
  }

  /** End offset of a length-delimited field whose length comes next (not checked, like BinaryReader). */
  end(): number {
    const n = this.uint32();
    return this.pos + n;
  }

  /** A 64-bit varint into lo/hi (same algorithm as BinaryReader's varint64read). */
  private varint64(): void {
    const buf = this.buf;
    const len = this.len;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= len) throw eof();
      const b = buf[pos++] as number;
      lo |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        this.pos = pos;
        this.lo = lo;
        this.hi = hi;
        return;
      }
    }
    if (pos >= len) throw eof();
    const middle = buf[pos++] as number;
    lo |= (middle & 0x0f) << 28;
    hi = (middle & 0x70) >> 4;
    if ((middle & 0x80) === 0) {
      this.pos = pos;
      this.lo = lo;
      this.hi = hi;
      return;
    }
    for (let shift = 3; shift <= 31; shift += 7) {
      if (pos >= len) throw eof();
      const b = buf[pos++] as number;
      hi |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        this.pos = pos;
        this.lo = lo;
        this.hi = hi;
        return;
      }
    }
    throw new Error('invalid varint');
  }

  int64(): bigint {
    this.varint64();
    int64View.setInt32(0, this.lo, true);
    int64View.setInt32(4, this.hi, true);
    return int64View.getBigInt64(0, true);
  }

  uint64(): bigint {
    this.varint64();
    int64View.setInt32(0, this.lo, true);
    int64View.setInt32(4, this.hi, true);
    return int64View.getBigUint64(0, true);
  }

  bool(): boolean {
    const pos = this.pos;
    if (pos < this.len) {
      const b = this.buf[pos] as number;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b !== 0;
      }
    }
    this.varint64();
    return this.lo !== 0 || this.hi !== 0;
  }

  double(): number {
    const pos = this.pos;
    if (pos + 8 > this.len) throw eof();
    this.pos = pos + 8;
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.view.getFloat64(pos, true);
  }

  /** A string field (length and strict UTF-8 bytes). */
  string(): string {
    const n = this.uint32();
    const start = this.pos;
    const end = start + n;
    if (end > this.len) throw eof();
    this.pos = end;
    if (n <= ASCII_MAX) {
      if (n === 0) return '';
      const buf = this.buf;
      let bits = 0;
      let i = start;
      if (n >= 8) {
        // Four bytes at a time (unaligned DataView reads are fine).
        const view = (this.view ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
        let wide = 0;
        for (; i + 4 <= end; i += 4) wide |= view.getUint32(i);
        bits = (wide | (wide >>> 8) | (wide >>> 16) | (wide >>> 24)) & 0xff;
      }
      for (; i < end; i++) bits |= buf[i] as number;
      if (bits < 0x80) return asciiString(buf, start, n);
    }
    return utf8.decode(this.buf.subarray(start, end));
  }

  /**
   * Like string(), for values that repeat from message to message (table,
   * column and client names): a hit in the name cache returns the same
   * string, which saves the allocation and, for column names, V8's
   * re-hashing when the string becomes an object key. `expect` is checked
   * first. Only ASCII of up to ASCII_MAX bytes is cached.
   */
  name(expect = ''): string {
    const n = expect.length;
    const start = this.pos + 1;
    // Fast path: a one-byte length equal to the guess's, then the same bytes.
    if (n !== 0 && n < 0x80 && this.buf[this.pos] === n && start + n <= this.len) {
      const buf = this.buf;
      let i = 0;
      for (; i < n; i++) {
        const c = expect.charCodeAt(i);
        // The guess may hold non-ASCII, which must not match raw bytes.
        if (c !== buf[start + i] || c > 0x7f) break;
      }
      if (i === n) {
        this.pos = start + n;
        return expect;
      }
    }
    return this.nameSlow();
  }

  private nameSlow(): string {
    const n = this.uint32();
    const start = this.pos;
    const end = start + n;
    if (end > this.len) throw eof();
    this.pos = end;
    if (n === 0) return '';
    const buf = this.buf;
    if (n > ASCII_MAX) return utf8.decode(buf.subarray(start, end));
    let h = n;
    let bits = 0;
    for (let i = start; i < end; i++) {
      const b = buf[i] as number;
      bits |= b;
      h = (Math.imul(h, 31) + b) | 0;
    }
    if (bits >= 0x80) return utf8.decode(buf.subarray(start, end));
    const slot = (h ^ (h >>> 9)) & (NAME_SLOTS - 1);
    const hit = names[slot] as string;
    if (hit.length === n) {
      let i = 0;
      while (i < n && hit.charCodeAt(i) === buf[start + i]) i++;
      if (i === n) return hit;
    }
    const s = asciiString(buf, start, n);
    names[slot] = s;
    return s;
  }

  /**
   * Skip a field we do not know. `limit` is BinaryReader's remaining group
   * nesting budget (100 minus the depth of the message being read).
   */
  skip(wireType: number, fieldNo: number, limit: number): void {
    switch (wireType) {
      case 0: {
        // Any length, unlike a varint that is read.
        const buf = this.buf;
        let pos = this.pos;
        for (;;) {
          if (pos >= this.len) throw eof();
          if (((buf[pos++] as number) & 0x80) === 0) break;
        }
        this.pos = pos;
        return;
      }
      case 1:
        this.advance(8);
        return;
      case 2:
        this.advance(this.uint32());
        return;
      case 3:
        if (limit <= 0) throw new Error('maximum recursion depth reached');
        for (;;) {
          const t = this.tag();
          if ((t & 7) === 4) {
            if (t >>> 3 !== fieldNo) throw new Error('invalid end group tag');
            return;
          }
          this.skip(t & 7, t >>> 3, limit - 1);
        }
      case 5:
        this.advance(4);
        return;
      default:
        throw new Error(`cant skip wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    const pos = this.pos + n;
    if (pos > this.len) throw eof();
    this.pos = pos;
  }
}
