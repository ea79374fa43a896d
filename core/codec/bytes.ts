/** Small, fast binary writer/reader used for content hashing and buffer storage. */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }

  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }

  u64(v: bigint): void {
    this.ensure(8);
    // setBigUint64 takes the value modulo 2^64 itself (no BigInt.asUintN: it allocates).
    this.view.setBigUint64(this.length, v);
    this.length += 8;
  }

  i64(v: bigint): void {
    this.ensure(8);
    this.view.setBigInt64(this.length, v);
    this.length += 8;
  }

  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.length, v);
    this.length += 8;
  }

  str(s: string): void {
    // Worst case 3 bytes per UTF-16 unit.
    const n = s.length;
    this.ensure(4 + n * 3);
    const start = this.length + 4;
    if (n < 64) {
      // Short strings: copy ASCII by hand (encodeInto's call cost dominates);
      // fall back on the first non-ASCII character.
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        this.buf[start + i] = c;
      }
      if (i === n) {
        this.view.setUint32(this.length, n);
        this.length = start + n;
        return;
      }
    }
    const { written } = encoder.encodeInto(s, this.buf.subarray(start));
    this.view.setUint32(this.length, written);
    this.length = start + written;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** A copy that does not alias the writer's buffer. */
  take(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class ByteReader {
  private readonly view: DataView;
  pos = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError('read past end');
    return this.buf[this.pos++] as number;
  }

  u32(): number {
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  i64(): bigint {
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  f64(): number {
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  str(): string {
    const n = this.u32();
    if (this.pos + n > this.buf.length) throw new RangeError('read past end');
    const s = decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  done(): boolean {
    return this.pos >= this.buf.length;
  }
}
