import { computeDeltaId, OP_TAG, type Delta } from '../delta.ts';
import { isJsonText, type ColumnValue } from '../values.ts';

/**
 * The gateway's check that a delta's id is the hash of its content. Same
 * bytes as computeDeltaId (docs/protocol.md#delta-id; delta-id.test.ts holds
 * the two together), written for the push hot path: one reused input buffer
 * and the native SHA-256 with a hex digest. A hex string is several times
 * cheaper to get from node:crypto than a Buffer, and compares with the id
 * without converting it.
 */
type HexDigest = (input: Uint8Array) => string;

function nativeHexDigest(): HexDigest | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const nodeCrypto = proc?.getBuiltinModule?.('node:crypto') as
    | { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex') => string }
    | undefined;
  const native = nodeCrypto?.hash;
  return typeof native === 'function' ? (input) => native('sha256', input, 'hex') : null;
}

const hexDigest = nativeHexDigest();
const encoder = new TextEncoder();
let buf = new Uint8Array(4096);
let view = new DataView(buf.buffer);
let pos = 0;
/** Views of buf by length, so hashing allocates no view per delta (cleared when buf grows). */
let views: Uint8Array[] = [];

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  view = new DataView(next.buffer);
  views = [];
}

function str(s: string): void {
  const n = s.length;
  ensure(4 + n * 3); // worst case 3 UTF-8 bytes per UTF-16 unit
  const start = pos + 4;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    buf[start + i] = c;
  }
  let written = n;
  if (i < n) written = i + encoder.encodeInto(s.slice(i), buf.subarray(start + i)).written;
  view.setUint32(pos, written);
  pos = start + written;
}

function value(v: ColumnValue): void {
  ensure(9);
  if (v === null) buf[pos++] = 0;
  else if (typeof v === 'string') {
    buf[pos++] = 1;
    str(v);
  } else if (typeof v === 'bigint') {
    buf[pos++] = 2;
    view.setBigInt64(pos, v);
    pos += 8;
  } else if (typeof v === 'number') {
    buf[pos++] = 3;
    view.setFloat64(pos, v === 0 ? 0 : v);
    pos += 8;
  } else if (typeof v === 'boolean') buf[pos++] = v ? 5 : 4;
  else if (isJsonText(v)) {
    buf[pos++] = 6;
    str(v.json);
  }
}

const names: string[] = [];

/** The hash input of computeDeltaId, in the shared buffer; returns its length. */
function encode(d: Delta): number {
  pos = 0;
  ensure(1);
  buf[pos++] = 1; // encoding version
  str(d.clientId);
  ensure(8);
  view.setBigUint64(pos, d.hlc); // takes the value modulo 2^64, as BigInt.asUintN would
  pos += 8;
  str(d.table);
  str(d.rowId);
  ensure(5);
  buf[pos++] = OP_TAG[d.op];
  // Column names in sorted order, as computeDeltaId sorts them: an insertion
  // sort in a reused array (Array#sort allocates more than the rest of this).
  let n = 0;
  for (const name in d.columns) {
    let i = n++;
    while (i > 0 && (names[i - 1] as string) > name) {
      names[i] = names[i - 1] as string;
      i--;
    }
    names[i] = name;
  }
  view.setUint32(pos, n);
  pos += 4;
  for (let i = 0; i < n; i++) {
    const name = names[i] as string;
    str(name);
    value(d.columns[name] as ColumnValue);
  }
  return pos;
}

/** True when `d.deltaId` is the delta id of d's content. */
export function deltaIdMatches(d: Delta): boolean {
  if (hexDigest === null) return computeDeltaId(d) === d.deltaId;
  const id = d.deltaId;
  if (id.length !== 32) return false;
  const length = encode(d); // first: encoding may replace `buf`
  const input = length < 1024 ? (views[length] ??= buf.subarray(0, length)) : buf.subarray(0, length);
  const hex = hexDigest(input);
  return hex.startsWith(id);
}
