import type { IcebergType, PartitionValue, PrimitiveType } from './types.ts';

/**
 * Iceberg's value rules that writers must get exactly right, because readers
 * prune files with them: single-value binary serialization (spec appendix D,
 * used for bounds), byte-wise UTF-8 string order, partition transforms and
 * the murmur3 bucket hash (appendix B).
 */

/** A value held for an Iceberg primitive: long/timestamp as bigint (timestamps in microseconds). */
export type LakeValue = string | number | bigint | boolean | Uint8Array | null;

const encoder = new TextEncoder();

export function primitive(t: IcebergType): PrimitiveType {
  if (typeof t !== 'string') throw new TypeError('not a primitive type');
  return t;
}

/** Appendix D: single-value serialization. */
export function serializeSingleValue(type: PrimitiveType, v: Exclude<LakeValue, null>): Uint8Array {
  switch (type) {
    case 'boolean':
      return Uint8Array.of(v ? 1 : 0);
    case 'int':
    case 'date': {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, Number(v), true);
      return b;
    }
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, BigInt(v as bigint | number), true);
      return b;
    }
    case 'float': {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, v as number, true);
      return b;
    }
    case 'double': {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v as number, true);
      return b;
    }
    case 'string':
      return encoder.encode(v as string);
    case 'binary':
    case 'uuid':
      return v as Uint8Array;
  }
}

/** Compare strings the way Iceberg does: by their UTF-8 bytes, i.e. by code point. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, which sort after every BMP character.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Longest string bound kept in manifests; longer lower bounds are truncated, longer upper bounds dropped. */
export const MAX_STRING_BOUND = 16;

/** A valid lower bound for strings: a code-point prefix. */
export function truncateLower(s: string): string {
  const cps = Array.from(s);
  return cps.length <= MAX_STRING_BOUND ? s : cps.slice(0, MAX_STRING_BOUND).join('');
}

/** A valid upper bound: the string itself when short enough, else none. */
export function truncateUpper(s: string): string | undefined {
  return Array.from(s).length <= MAX_STRING_BOUND ? s : undefined;
}

// ---------- partition transforms ----------

const MICROS_PER_HOUR = 3_600_000_000n;
const MICROS_PER_DAY = 86_400_000_000n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return (a % b !== 0n && a < 0n !== b < 0n) ? q - 1n : q;
}

function civil(days: number): { y: number; m: number } {
  const d = new Date(days * 86_400_000);
  return { y: d.getUTCFullYear(), m: d.getUTCMonth() };
}

export function transformResultType(transform: string, source: PrimitiveType): PrimitiveType {
  if (transform === 'identity' || transform.startsWith('truncate[')) return source;
  if (transform === 'day') return 'date';
  if (['year', 'month', 'hour'].includes(transform) || transform.startsWith('bucket[')) return 'int';
  if (transform === 'void') return source;
  throw new TypeError(`unsupported transform ${transform}`);
}

/**
 * A partition tuple as one map key: null and the string "null" (or a
 * string holding the separator) must not land in the same partition, or a
 * file's partition value misstates a row and filters skip it.
 */
export function partitionKey(values: readonly PartitionValue[]): string {
  return JSON.stringify(values.map((v) => (v === null ? null : typeof v === 'string' ? `s${v}` : typeof v === 'boolean' ? `b${v}` : `n${v}`)));
}

/** Apply a partition transform to a source value (timestamps in microseconds, dates in days). */
export function applyTransform(transform: string, source: PrimitiveType, v: LakeValue): PartitionValue {
  if (v === null || transform === 'void') return null;
  if (transform === 'identity') return v as PartitionValue;
  const bucket = /^bucket\[(\d+)\]$/.exec(transform);
  if (bucket !== null) {
    const n = Number(bucket[1]);
    return (murmur3Hash(source, v) & 0x7fffffff) % n;
  }
  const trunc = /^truncate\[(\d+)\]$/.exec(transform);
  if (trunc !== null) {
    const w = Number(trunc[1]);
    if (source === 'string') return Array.from(v as string).slice(0, w).join('');
    if (source === 'int') return (v as number) - ((((v as number) % w) + w) % w);
    if (source === 'long') return (v as bigint) - ((((v as bigint) % BigInt(w)) + BigInt(w)) % BigInt(w));
    throw new TypeError(`truncate of ${source}`);
  }
  const days =
    source === 'date' ? (v as number) : Number(floorDiv(BigInt(v as bigint | number), MICROS_PER_DAY));
  switch (transform) {
    case 'day':
      return days;
    case 'hour':
      return Number(floorDiv(BigInt(v as bigint | number), MICROS_PER_HOUR));
    case 'month': {
      const { y, m } = civil(days);
      return (y - 1970) * 12 + m;
    }
    case 'year':
      return civil(days).y - 1970;
  }
  throw new TypeError(`unsupported transform ${transform}`);
}

/** Appendix B: 32-bit murmur3 (x86 variant, seed 0) of the value's hash bytes. */
export function murmur3Hash(type: PrimitiveType, v: Exclude<LakeValue, null>): number {
  let bytes: Uint8Array;
  switch (type) {
    case 'int':
    case 'long':
    case 'date':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      bytes = serializeSingleValue('long', BigInt(v as number | bigint));
      break;
    case 'string':
      bytes = encoder.encode(v as string);
      break;
    case 'binary':
    case 'uuid':
      bytes = v as Uint8Array;
      break;
    default:
      throw new TypeError(`bucket of ${type}`);
  }
  return murmur3(bytes);
}

export function murmur3(data: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = data.length >> 2;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < blocks; i++) {
    let k = view.getUint32(i * 4, true);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = data.length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= (data[tail + 2] as number) << 16;
    if (rest >= 2) k ^= (data[tail + 1] as number) << 8;
    k ^= data[tail] as number;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
