import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm';
import { compareUtf8, serializeSingleValue, truncateLower, truncateUpper, type LakeValue } from './iceberg/values.ts';
import type { PrimitiveType } from './iceberg/types.ts';
import { parquetEncodePool } from './parquet-encode-pool.ts';
import { joinParquetPieces } from './parquet-encode-merge.ts';
import { propertiesFromSpec } from './parquet-properties.mjs';

/**
 * Parquet through parquet-wasm (Rust's parquet crate) and apache-arrow.
 * Columns are built straight into Arrow buffers (no per-value builders), each
 * field carries its Iceberg field id, pages are ZSTD-compressed with
 * statistics, and row groups are cut by bytes. The Iceberg metrics a manifest
 * needs (counts, bounds) are computed here while the columns are built.
 * Large files are encoded in pieces on several threads at once
 * (parquet-encode-pool.ts) and joined into one file (parquet-encode-merge.ts).
 */

export type ParquetColumnType = PrimitiveType | 'list<string>';

export interface ParquetColumn {
  readonly id: number;
  readonly name: string;
  readonly type: ParquetColumnType;
  readonly required: boolean;
  /** Dictionary-encode this column (worth it for few distinct values; costly for ids). */
  readonly dictionary?: boolean;
  /** Field id of the list element (list columns only). */
  readonly elementId?: number;
}

export interface ColumnMetrics {
  readonly valueCounts: Map<number, bigint>;
  readonly nullValueCounts: Map<number, bigint>;
  readonly nanValueCounts: Map<number, bigint>;
  readonly lowerBounds: Map<number, Uint8Array>;
  readonly upperBounds: Map<number, Uint8Array>;
}

export interface ParquetWriteOptions {
  /** Target bytes per row group (uncompressed, as parquet-rs counts them). */
  readonly rowGroupBytes?: number;
  readonly keyValueMetadata?: ReadonlyMap<string, string>;
  /**
   * Parquet format 2 data pages with delta encodings: in our measurements
   * 20-45% faster to write and up to 4x smaller on ids and sequences. Off by
   * default: some older readers only handle version 1 data pages.
   */
  readonly dataPageV2?: boolean;
  /**
   * Files of at least twice this many rows are cut into pieces that worker
   * threads encode at once (writeParquetFileParallel); tests lower it.
   */
  readonly minPieceRows?: number;
}

export interface ParquetFileOut {
  readonly bytes: Uint8Array;
  readonly recordCount: number;
  readonly metrics: ColumnMetrics;
}

const DEFAULT_ROW_GROUP_BYTES = 64 * 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const encoder = new TextEncoder();

function fieldMeta(id: number): Map<string, string> {
  return new Map([['PARQUET:field_id', String(id)]]);
}

function arrowType(c: ParquetColumn): arrow.DataType {
  switch (c.type) {
    case 'boolean':
      return new arrow.Bool();
    case 'int':
      return new arrow.Int32();
    case 'long':
      return new arrow.Int64();
    case 'float':
      return new arrow.Float32();
    case 'double':
      return new arrow.Float64();
    case 'date':
      return new arrow.DateDay();
    case 'timestamptz':
      return new arrow.TimestampMicrosecond('UTC');
    case 'timestamp':
      return new arrow.TimestampMicrosecond();
    case 'string':
      return new arrow.Utf8();
    case 'binary':
      return new arrow.Binary();
    case 'list<string>':
      return new arrow.List(new arrow.Field('element', new arrow.Utf8(), false, fieldMeta(c.elementId ?? 0)));
    default:
      throw new TypeError(`unsupported parquet column type ${c.type}`);
  }
}

export function arrowSchema(columns: readonly ParquetColumn[]): arrow.Schema {
  return new arrow.Schema(columns.map((c) => new arrow.Field(c.name, arrowType(c), !c.required, fieldMeta(c.id))));
}

// ---------- column builders (values -> arrow Data + metrics) ----------

interface Built {
  readonly data: arrow.Data;
  nulls: number;
  nans: number;
  min: LakeValue;
  max: LakeValue;
}

function validity(values: readonly unknown[]): { bitmap: Uint8Array | undefined; nulls: number } {
  let nulls = 0;
  for (const v of values) if (v === null || v === undefined) nulls++;
  if (nulls === 0) return { bitmap: undefined, nulls };
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) {
    if (values[i] !== null && values[i] !== undefined) bitmap[i >> 3] = (bitmap[i >> 3] as number) | (1 << (i & 7));
  }
  return { bitmap, nulls };
}

function buildUtf8(type: arrow.Utf8, values: readonly (string | null)[]): Built {
  const { bitmap, nulls } = validity(values);
  const offsets = new Int32Array(values.length + 1);
  // Encode into one growing buffer; ASCII strings need exactly their length.
  let buf = new Uint8Array(Math.max(64, values.length * 16));
  let pos = 0;
  let min: string | null = null;
  let max: string | null = null;
  for (let i = 0; i < values.length; i++) {
    const s = values[i];
    if (s !== null && s !== undefined) {
      const len = s.length;
      if (buf.length - pos < len * 3) {
        const next = new Uint8Array(Math.max(buf.length * 2, pos + len * 3));
        next.set(buf.subarray(0, pos));
        buf = next;
      }
      // ASCII fast path: most ids and many values are; anything else goes through the encoder.
      let k = 0;
      for (; k < len; k++) {
        const c = s.charCodeAt(k);
        if (c >= 0x80) break;
        buf[pos + k] = c;
      }
      pos += k === len ? len : encoder.encodeInto(s, buf.subarray(pos)).written;
      // For ASCII strings JS order is byte order; compareUtf8 handles the rest.
      if (min === null || (k === len ? s < min && compareUtf8(s, min) < 0 : compareUtf8(s, min) < 0)) min = s;
      if (max === null || (k === len ? s > max && compareUtf8(s, max) > 0 : compareUtf8(s, max) > 0)) max = s;
    }
    offsets[i + 1] = pos;
  }
  const data = arrow.makeData({ type, length: values.length, nullCount: nulls, nullBitmap: bitmap, valueOffsets: offsets, data: buf.subarray(0, pos) });
  return { data, nulls, nans: 0, min, max };
}

function buildList(type: arrow.List<arrow.Utf8>, values: readonly (readonly string[] | null)[]): Built {
  const { bitmap, nulls } = validity(values);
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) total += values[i]?.length ?? 0;
  // The element strings, encoded straight into one buffer; a row holding the
  // same array as the row before (flush shares them) copies its bytes.
  const childOffsets = new Int32Array(total + 1);
  let buf: Uint8Array<ArrayBuffer> = new Uint8Array(Math.max(64, total * 8));
  let pos = 0;
  let count = 0;
  let prev: readonly string[] | null = null;
  let prevCount = 0;
  let prevBytes = 0;
  for (let i = 0; i < n; i++) {
    const l = values[i];
    if (l !== null && l !== undefined) {
      if (l === prev && l.length > 0) {
        const from = count - prevCount;
        const fromByte = childOffsets[from] as number;
        if (buf.length - pos < prevBytes) buf = grow(buf, pos, prevBytes);
        buf.copyWithin(pos, fromByte, fromByte + prevBytes);
        for (let k = 0; k < prevCount; k++) childOffsets[count + k + 1] = (childOffsets[from + k + 1] as number) + pos - fromByte;
        pos += prevBytes;
        count += prevCount;
      } else {
        const start = pos;
        for (const s of l) {
          if (buf.length - pos < s.length * 3) buf = grow(buf, pos, s.length * 3);
          let k = 0;
          for (; k < s.length; k++) {
            const c = s.charCodeAt(k);
            if (c >= 0x80) break;
            buf[pos + k] = c;
          }
          pos += k === s.length ? k : encoder.encodeInto(s, buf.subarray(pos)).written;
          childOffsets[++count] = pos;
        }
        prev = l;
        prevCount = l.length;
        prevBytes = pos - start;
      }
    }
    offsets[i + 1] = count;
  }
  const childType = type.children[0]?.type as arrow.Utf8;
  const child = arrow.makeData({ type: childType, length: total, nullCount: 0, valueOffsets: childOffsets, data: buf.subarray(0, pos) });
  const data = arrow.makeData<arrow.List<arrow.Utf8>>({
    type,
    length: n,
    nullCount: nulls,
    nullBitmap: bitmap,
    valueOffsets: offsets,
    child,
  } as never);
  return { data, nulls, nans: 0, min: null, max: null };
}

/** `buf` with room for `need` more bytes after `pos`. */
function grow(buf: Uint8Array<ArrayBuffer>, pos: number, need: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(Math.max(buf.length * 2, pos + need));
  next.set(buf.subarray(0, pos));
  return next;
}

function buildFixed(c: ParquetColumn, type: arrow.DataType, values: readonly LakeValue[]): Built {
  const { bitmap, nulls } = validity(values);
  const n = values.length;
  let min: LakeValue = null;
  let max: LakeValue = null;
  let nans = 0;
  let data: arrow.Data;
  switch (c.type) {
    case 'long':
    case 'timestamptz':
    case 'timestamp': {
      const out = new BigInt64Array(n);
      // Numbers (timestamps in microseconds, mostly) go in as two 32-bit halves: a BigInt per
      // value was a large share of a flush's garbage. Their bounds are kept apart as numbers.
      const halves = LITTLE_ENDIAN ? new Int32Array(out.buffer) : null;
      let nmin = Infinity;
      let nmax = -Infinity;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        if (typeof v === 'number' && halves !== null && Number.isSafeInteger(v)) {
          const hi = Math.floor(v / 4294967296);
          halves[2 * i] = v - hi * 4294967296; // wraps to the low word's bits
          halves[2 * i + 1] = hi;
          if (v < nmin) nmin = v;
          if (v > nmax) nmax = v;
          continue;
        }
        const b = typeof v === 'bigint' ? v : BigInt(v as number);
        out[i] = b;
        if (min === null || b < (min as bigint)) min = b;
        if (max === null || b > (max as bigint)) max = b;
      }
      if (nmin !== Infinity && (min === null || BigInt(nmin) < (min as bigint))) min = BigInt(nmin);
      if (nmax !== -Infinity && (max === null || BigInt(nmax) > (max as bigint))) max = BigInt(nmax);
      data = arrow.makeData({ type: type as arrow.Int64, length: n, nullCount: nulls, nullBitmap: bitmap, data: out as unknown as Int32Array });
      break;
    }
    case 'int':
    case 'date': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        const x = Number(v);
        out[i] = x;
        if (min === null || x < (min as number)) min = x;
        if (max === null || x > (max as number)) max = x;
      }
      data = arrow.makeData({ type: type as arrow.Int32, length: n, nullCount: nulls, nullBitmap: bitmap, data: out });
      break;
    }
    case 'double':
    case 'float': {
      const out = c.type === 'double' ? new Float64Array(n) : new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        const x = v as number;
        out[i] = x;
        if (Number.isNaN(x)) {
          nans++;
          continue;
        }
        if (min === null || doubleLess(x, min as number)) min = x;
        if (max === null || doubleLess(max as number, x)) max = x;
      }
      data = arrow.makeData({ type: type as arrow.Float64, length: n, nullCount: nulls, nullBitmap: bitmap, data: out as Float64Array });
      break;
    }
    case 'boolean': {
      const out = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        if (v === true) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
        if (min === null || (min === true && v === false)) min = v;
        if (max === null || (max === false && v === true)) max = v;
      }
      data = arrow.makeData({ type: type as arrow.Bool, length: n, nullCount: nulls, nullBitmap: bitmap, data: out });
      break;
    }
    case 'binary': {
      const offsets = new Int32Array(n + 1);
      let total = 0;
      for (const v of values) if (v instanceof Uint8Array) total += v.length;
      const buf = new Uint8Array(total);
      let pos = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v instanceof Uint8Array) {
          buf.set(v, pos);
          pos += v.length;
        }
        offsets[i + 1] = pos;
      }
      data = arrow.makeData({ type: type as arrow.Binary, length: n, nullCount: nulls, nullBitmap: bitmap, valueOffsets: offsets, data: buf });
      break;
    }
    default:
      throw new TypeError(`unsupported column type ${c.type}`);
  }
  return { data, nulls, nans, min, max };
}

function buildColumn(c: ParquetColumn, type: arrow.DataType, values: readonly unknown[]): Built {
  if (c.type === 'string') return buildUtf8(type as arrow.Utf8, values as (string | null)[]);
  if (c.type === 'list<string>') return buildList(type as arrow.List<arrow.Utf8>, values as (string[] | null)[]);
  return buildFixed(c, type, values as LakeValue[]);
}

/** An Arrow record batch of the columns (values in column order) plus per-column metrics. */
export function buildRecordBatch(
  columns: readonly ParquetColumn[],
  values: readonly (readonly unknown[])[],
): { batch: arrow.RecordBatch; built: Built[] } {
  const schema = arrowSchema(columns);
  const length = values[0]?.length ?? 0;
  const built = columns.map((c, i) => {
    const col = values[i] ?? [];
    if (col.length !== length) throw new RangeError(`column ${c.name} has ${col.length} values, expected ${length}`);
    return buildColumn(c, (schema.fields[i] as arrow.Field).type as arrow.DataType, col);
  });
  const struct = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length,
    nullCount: 0,
    children: built.map((b) => b.data),
  });
  return { batch: new arrow.RecordBatch(schema, struct), built };
}

function metricsOf(columns: readonly ParquetColumn[], builtByBatch: readonly Built[][], rows: number): ColumnMetrics {
  const m: ColumnMetrics = {
    valueCounts: new Map(),
    nullValueCounts: new Map(),
    nanValueCounts: new Map(),
    lowerBounds: new Map(),
    upperBounds: new Map(),
  };
  columns.forEach((c, i) => {
    if (c.type === 'list<string>') return; // metrics are kept for top-level primitives only
    let nulls = 0;
    let nans = 0;
    let min: LakeValue = null;
    let max: LakeValue = null;
    for (const built of builtByBatch) {
      const b = built[i] as Built;
      nulls += b.nulls;
      nans += b.nans;
      if (b.min !== null && (min === null || lessThan(c.type as PrimitiveType, b.min, min))) min = b.min;
      if (b.max !== null && (max === null || lessThan(c.type as PrimitiveType, max, b.max))) max = b.max;
    }
    m.valueCounts.set(c.id, BigInt(rows));
    m.nullValueCounts.set(c.id, BigInt(nulls));
    if (c.type === 'double' || c.type === 'float') m.nanValueCounts.set(c.id, BigInt(nans));
    if (c.type === 'binary') return;
    if (min !== null) {
      const lower = c.type === 'string' ? truncateLower(min as string) : min;
      m.lowerBounds.set(c.id, serializeSingleValue(c.type as PrimitiveType, lower));
    }
    if (max !== null) {
      const upper = c.type === 'string' ? truncateUpper(max as string) : max;
      if (upper !== undefined) m.upperBounds.set(c.id, serializeSingleValue(c.type as PrimitiveType, upper));
    }
  });
  return m;
}

function lessThan(type: PrimitiveType, a: LakeValue, b: LakeValue): boolean {
  if (type === 'string') return compareUtf8(a as string, b as string) < 0;
  if (type === 'boolean') return a === false && b === true;
  if (type === 'double' || type === 'float') return doubleLess(a as number, b as number);
  return (a as number | bigint) < (b as number | bigint);
}

/**
 * Iceberg orders -0.0 before 0.0 (Java's Double.compare): a file holding both
 * has the lower bound -0.0, else Java skips it when looking for -0.0.
 */
function doubleLess(a: number, b: number): boolean {
  return a < b || (a === 0 && b === 0 && 1 / a < 1 / b);
}

/** Arrow record batches (and their metrics) for column-major value batches; empty ones left out. */
function buildBatches(
  columns: readonly ParquetColumn[],
  batches: readonly (readonly (readonly unknown[])[])[],
): { table: arrow.Table; built: Built[][]; rows: number } {
  const built: Built[][] = [];
  const recordBatches: arrow.RecordBatch[] = [];
  let rows = 0;
  for (const values of batches) {
    const { batch, built: b } = buildRecordBatch(columns, values);
    if (batch.numRows === 0) continue;
    recordBatches.push(batch);
    built.push(b);
    rows += batch.numRows;
  }
  return { table: new arrow.Table(arrowSchema(columns), recordBatches), built, rows };
}

/**
 * Write one Parquet file from column-major values (`values[i]` belongs to
 * `columns[i]`), split into batches of at most `batchRows` so callers can hand
 * over large files without one giant Arrow batch. On the calling thread.
 */
export function writeParquetFile(
  columns: readonly ParquetColumn[],
  batches: readonly (readonly (readonly unknown[])[])[],
  options: ParquetWriteOptions = {},
): ParquetFileOut {
  const { table, built, rows } = buildBatches(columns, batches);
  const bytes = encodeArrowTable(table, writerSpec(columns, options));
  return { bytes, recordCount: rows, metrics: metricsOf(columns, built, rows) };
}

/** Arrow table -> Parquet bytes on this thread. */
export function encodeArrowTable(table: arrow.Table, spec: WriterSpec): Uint8Array {
  return pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), propertiesFromSpec(spec));
}

/**
 * Rows below which a piece is not worth a thread of its own. A flush chunk
 * (50,000 deltas by default) stays on one thread: split in two it was no
 * faster in the 1M-delta benchmark, and the worker added 20-40 MB to the
 * flush's peak RSS (bounded at 512 MB). Compaction's large files and big
 * one-off writes are where the threads pay.
 */
const MIN_PIECE_ROWS = 65_536;

/** Arrow record batches for a file, cut into pieces that threads can encode at once. */
export interface ArrowPieces {
  readonly schema: arrow.Schema;
  /** Consecutive row ranges of the file; each batch owns its buffers (nothing shared, no slices). */
  readonly pieces: readonly arrow.RecordBatch[];
  readonly rows: number;
  readonly metrics: ColumnMetrics;
}

/** How many pieces a file of this many rows is cut into: one per encoder thread (workers and this one), none below `minPieceRows`. */
function pieceCount(rows: number, minPieceRows: number): number {
  const pool = parquetEncodePool();
  return pool === null ? 1 : Math.max(1, Math.min(pool.size + 1, Math.floor(rows / Math.max(1, minPieceRows))));
}

/**
 * Column-major values -> Arrow pieces (and the file's metrics). Each piece
 * is built from its own slice of the values, so its buffers can be handed
 * to a worker thread without copying.
 */
export function buildArrowPieces(
  columns: readonly ParquetColumn[],
  values: readonly (readonly unknown[])[],
  minPieceRows = MIN_PIECE_ROWS,
): ArrowPieces {
  const rows = values[0]?.length ?? 0;
  // Checked here too: slicing would otherwise hide a column of the wrong length.
  values.forEach((col, i) => {
    if (col.length !== rows) throw new RangeError(`column ${columns[i]?.name ?? i} has ${col.length} values, expected ${rows}`);
  });
  const count = pieceCount(rows, minPieceRows);
  const per = Math.ceil(rows / count);
  const pieces: arrow.RecordBatch[] = [];
  const built: Built[][] = [];
  for (let from = 0; from < rows || pieces.length === 0; from += per) {
    const slice = count === 1 ? values : values.map((col) => col.slice(from, from + per));
    const { batch, built: b } = buildRecordBatch(columns, slice);
    pieces.push(batch);
    built.push(b);
    if (rows === 0) break;
  }
  return { schema: arrowSchema(columns), pieces, rows, metrics: metricsOf(columns, built, rows) };
}

/**
 * Arrow pieces -> one Parquet file. With several pieces, worker threads and
 * this thread encode them at once (parquet-wasm is single-threaded; each
 * thread has its own instance) and their row groups are joined into one file. The pieces'
 * buffers are transferred to the threads: the pieces are unusable afterwards.
 * Without usable worker threads everything is encoded on this thread.
 */
export async function encodeArrowPieces(p: ArrowPieces, spec: WriterSpec): Promise<Uint8Array> {
  const pool = p.pieces.length > 1 ? parquetEncodePool() : null;
  if (pool === null || !(await pool.ready())) return encodeArrowTable(new arrow.Table(p.schema, [...p.pieces]), spec);
  const schemaIpc = arrow.tableToIPC(new arrow.Table(p.schema), 'stream');
  // The workers take all pieces but the last, which this thread encodes meanwhile.
  const jobs = p.pieces.slice(0, -1).map((batch) => pool.encodeBatch(schemaIpc, batch, spec));
  let own: Uint8Array;
  try {
    own = encodeArrowTable(new arrow.Table(p.schema, [p.pieces.at(-1) as arrow.RecordBatch]), spec);
  } finally {
    await Promise.allSettled(jobs);
  }
  return joinParquetPieces([...(await Promise.all(jobs)), own]);
}

/** writeParquetFile, with large files encoded in pieces on worker threads where there are some. */
export async function writeParquetFileParallel(
  columns: readonly ParquetColumn[],
  values: readonly (readonly unknown[])[],
  options: ParquetWriteOptions = {},
): Promise<ParquetFileOut> {
  const pieces = buildArrowPieces(columns, values, options.minPieceRows);
  const spec = writerSpec(columns, options);
  let bytes: Uint8Array;
  try {
    bytes = await encodeArrowPieces(pieces, spec);
  } catch (e) {
    // A worker died with our pieces (their buffers went with it): encode again on this thread.
    if (pieces.pieces.length < 2) throw e;
    return writeParquetFile(columns, [values], options);
  }
  return { bytes, recordCount: pieces.rows, metrics: pieces.metrics };
}

/** Integer column types: DELTA_BINARY_PACKED suits them (all Parquet readers we target decode it). */
const INTEGER_TYPES: ReadonlySet<ParquetColumnType> = new Set(['int', 'long', 'date', 'timestamp', 'timestamptz']);

/**
 * parquet-wasm writer settings as plain data, so a worker thread can apply
 * them too (both apply it with propertiesFromSpec, core/lake/parquet-properties.mjs).
 */
export interface WriterSpec {
  readonly compression: pw.Compression;
  readonly statistics: pw.EnabledStatistics;
  readonly dictionary: boolean;
  readonly rowGroupBytes: number;
  readonly rowGroupRows: number;
  readonly createdBy: string;
  readonly columns: readonly { readonly name: string; readonly dictionary?: boolean; readonly encoding?: pw.Encoding }[];
  readonly writerVersion?: pw.WriterVersion;
  readonly keyValueMetadata?: readonly [string, string][];
}

/**
 * The writer settings for these columns. Dictionary encoding only where
 * asked: on unique ids it doubles the write time and grows the file.
 * Integers are DELTA_BINARY_PACKED, also in version 1 data pages: on
 * sequences, clocks and timestamps it is a third faster to write than PLAIN
 * + ZSTD and the columns shrink to almost nothing. Statistics per column
 * chunk (row group).
 */
export function writerSpec(columns: readonly ParquetColumn[], options: ParquetWriteOptions = {}): WriterSpec {
  const cols: { name: string; dictionary?: boolean; encoding?: pw.Encoding }[] = [];
  for (const c of columns) {
    if (c.dictionary === true) cols.push({ name: c.name, dictionary: true });
    else if (INTEGER_TYPES.has(c.type)) cols.push({ name: c.name, encoding: pw.Encoding.DELTA_BINARY_PACKED });
  }
  return {
    compression: pw.Compression.ZSTD,
    statistics: pw.EnabledStatistics.Chunk,
    dictionary: false,
    rowGroupBytes: options.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES,
    rowGroupRows: 1 << 30,
    createdBy: 'lakesync',
    columns: cols,
    ...(options.dataPageV2 === true ? { writerVersion: pw.WriterVersion.V2 } : {}),
    ...(options.keyValueMetadata !== undefined ? { keyValueMetadata: [...options.keyValueMetadata] } : {}),
  };
}

export { propertiesFromSpec };

/** The parquet-wasm writer properties for these columns (writerSpec, applied). */
export function writerProperties(columns: readonly ParquetColumn[], options: ParquetWriteOptions = {}): pw.WriterProperties {
  return propertiesFromSpec(writerSpec(columns, options));
}

/** Read some columns of a Parquet file as an Arrow table. */
export function readParquetTable(bytes: Uint8Array, columns?: readonly string[]): arrow.Table {
  const opts: pw.ReaderOptions = {};
  if (columns !== undefined) opts.columns = [...columns];
  const wasmTable = pw.readParquet(bytes, opts);
  return arrow.tableFromIPC(wasmTable.intoIPCStream());
}

/**
 * A table column's vector, found by its Iceberg field id (a column renamed by
 * another engine keeps its id, not its name); by name only in files that
 * carry no field ids at all.
 */
function columnVector(table: arrow.Table, column: ParquetColumn): arrow.Vector | null {
  const fields = table.schema.fields;
  let anyIds = false;
  for (let i = 0; i < fields.length; i++) {
    const id = (fields[i] as arrow.Field).metadata.get('PARQUET:field_id');
    if (id === undefined) continue;
    anyIds = true;
    if (id === String(column.id)) return table.getChildAt(i);
  }
  return anyIds ? null : table.getChild(column.name);
}

/**
 * The values of one column of a read table, in the representation the
 * writer takes (longs and timestamps as bigint microseconds, binary as
 * copies), or nulls when the file predates the column.
 */
export function columnValues(table: arrow.Table, column: ParquetColumn): LakeValue[] | (string[] | null)[] {
  const vector = columnVector(table, column);
  const n = table.numRows;
  if (vector === null) return new Array<null>(n).fill(null);
  const out: unknown[] = new Array(n);
  let i = 0;
  for (const data of vector.data) {
    const values = data.values as unknown;
    for (let k = 0; k < data.length; k++, i++) {
      if (!data.getValid(k)) {
        out[i] = null;
        continue;
      }
      switch (column.type) {
        case 'long':
        case 'timestamp':
        case 'timestamptz':
          out[i] = (values as BigInt64Array)[data.offset + k];
          break;
        case 'binary':
          out[i] = new Uint8Array(vector.get(i) as Uint8Array);
          break;
        case 'list<string>':
          out[i] = Array.from(vector.get(i) as Iterable<string>);
          break;
        default:
          out[i] = vector.get(i);
      }
    }
  }
  return out as LakeValue[];
}
