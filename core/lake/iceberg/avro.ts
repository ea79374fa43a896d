import avro from 'avsc';
import { LakeError } from '../errors.ts';

/**
 * Avro object container files (the format of Iceberg manifests and manifest
 * lists), on avsc for the record encoding. avsc's default long is a JS number
 * and refuses values above 2^53, so longs are bigints here: snapshot ids are
 * random 63-bit numbers.
 *
 * We write the "null" codec: manifests are small, and it needs no
 * compression library in any runtime. We read "null" and "deflate".
 */

const LongType = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(0),
  toBuffer: (n: bigint | number) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return b;
  },
  fromJSON: (v: unknown) => BigInt(v as number),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint' || (typeof n === 'number' && Number.isInteger(n)),
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

export type AvroSchema = Record<string, unknown>;

export function avroType(schema: AvroSchema): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { registry: { long: LongType } as unknown as Record<string, avro.Type> });
}

/**
 * Compiled types by schema text. avsc compiles a reader and writer per type,
 * which cost a flush more than encoding its manifests did; a table's
 * manifests all use a handful of schemas.
 */
const compiled = new Map<string, avro.Type>();
const MAX_COMPILED = 64;

function cachedType(text: string, schema: AvroSchema): avro.Type {
  let type = compiled.get(text);
  if (type === undefined) {
    type = avroType(schema);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(text, type);
  }
  return type;
}

const MAGIC = new Uint8Array([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

// ---------- writing ----------

class Out {
  private chunks: Uint8Array[] = [];
  size = 0;
  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }
  long(n: number): void {
    // zigzag varint; counts and sizes here are far below 2^31
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    const out: number[] = [];
    while (z >= 0x80) {
      out.push((z & 0x7f) | 0x80);
      z = Math.floor(z / 128);
    }
    out.push(z);
    this.push(Uint8Array.from(out));
  }
  bytes(b: Uint8Array): void {
    this.long(b.length);
    this.push(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/**
 * One container file: header (schema JSON exactly as given, so Iceberg's
 * field-id attributes survive, plus the extra metadata), one data block, sync.
 */
export function writeAvroFile(
  schema: AvroSchema,
  records: readonly unknown[],
  metadata: Readonly<Record<string, string>>,
  syncMarker: Uint8Array = crypto.getRandomValues(new Uint8Array(16)),
): Uint8Array {
  const schemaText = JSON.stringify(schema);
  const type = cachedType(schemaText, schema);
  const out = new Out();
  out.push(MAGIC);
  const meta: [string, string][] = [
    ['avro.schema', schemaText],
    ['avro.codec', 'null'],
    ...Object.entries(metadata),
  ];
  out.long(meta.length);
  for (const [k, v] of meta) {
    out.bytes(textEncoder.encode(k));
    out.bytes(textEncoder.encode(v));
  }
  out.long(0);
  out.push(syncMarker);
  if (records.length > 0) {
    const encoded = records.map((r) => type.toBuffer(r));
    out.long(records.length);
    out.long(encoded.reduce((n, b) => n + b.length, 0));
    for (const b of encoded) out.push(b);
    out.push(syncMarker);
  }
  return out.concat();
}

// ---------- reading ----------

class In {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  long(): number {
    let result = 0;
    let shift = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new LakeError('CORRUPT_METADATA', 'truncated avro file');
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) break;
      shift *= 128;
    }
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  }
  bytes(): Uint8Array {
    const n = this.long();
    if (n < 0 || this.pos + n > this.buf.length) throw new LakeError('CORRUPT_METADATA', 'truncated avro file');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  fixed(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new LakeError('CORRUPT_METADATA', 'truncated avro file');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

export interface AvroFile {
  readonly schema: AvroSchema;
  readonly metadata: Readonly<Record<string, string>>;
  readonly records: unknown[];
}

async function inflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Read a whole container file with its own (writer) schema. */
export async function readAvroFile(bytes: Uint8Array): Promise<AvroFile> {
  const r = new In(bytes);
  const magic = r.fixed(4);
  if (!magic.every((b, i) => b === MAGIC[i])) throw new LakeError('CORRUPT_METADATA', 'not an avro container file');
  const metadata: Record<string, string> = {};
  for (;;) {
    let n = r.long();
    if (n === 0) break;
    if (n < 0) {
      n = -n;
      r.long(); // block size in bytes
    }
    for (let i = 0; i < n; i++) {
      const k = textDecoder.decode(r.bytes());
      metadata[k] = textDecoder.decode(r.bytes());
    }
  }
  const sync = r.fixed(16);
  const schemaText = metadata['avro.schema'];
  if (schemaText === undefined) throw new LakeError('CORRUPT_METADATA', 'avro file without a schema');
  const schema = JSON.parse(schemaText) as AvroSchema;
  const codec = metadata['avro.codec'] ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') {
    throw new LakeError('CORRUPT_METADATA', `unsupported avro codec "${codec}"`);
  }
  const type = cachedType(schemaText, schema);
  const records: unknown[] = [];
  while (r.pos < bytes.length) {
    const count = r.long();
    const raw = r.bytes();
    const marker = r.fixed(16);
    if (!marker.every((b, i) => b === sync[i])) throw new LakeError('CORRUPT_METADATA', 'avro sync marker mismatch');
    const block = toBuffer(codec === 'deflate' ? await inflateRaw(raw) : raw);
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const res = type.decode(block, pos);
      if (res.offset < 0 || res.value === undefined) throw new LakeError('CORRUPT_METADATA', 'truncated avro block');
      records.push(res.value);
      pos = res.offset;
    }
  }
  return { schema, metadata, records };
}
