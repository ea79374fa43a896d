import { LakeError } from '../errors.ts';
import { stringifyJson } from '../json.ts';
import { readAvroFile, writeAvroFile, type AvroSchema } from './avro.ts';
import { primitive, transformResultType } from './values.ts';
import {
  FileContent,
  type DataFile,
  type EntryStatus,
  type FieldSummary,
  type IcebergSchema,
  type ManifestEntry,
  type ManifestFile,
  type PartitionSpec,
  type PartitionValue,
  type PrimitiveType,
} from './types.ts';

/**
 * Iceberg v2 manifests and manifest lists as Avro container files, with the
 * field ids the spec assigns ("Manifests" and "Manifest Lists").
 */

const AVRO_PRIMITIVE: Record<PrimitiveType, unknown> = {
  boolean: 'boolean',
  int: 'int',
  long: 'long',
  float: 'float',
  double: 'double',
  date: { type: 'int', logicalType: 'date' },
  time: { type: 'long', logicalType: 'time-micros' },
  timestamp: { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false },
  timestamptz: { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true },
  string: 'string',
  uuid: { type: 'fixed', name: 'uuid_fixed', size: 16, logicalType: 'uuid' },
  binary: 'bytes',
};

const opt = (type: unknown): unknown => ['null', type];

function kvArray(name: string, keyId: number, valueId: number, value: unknown): unknown {
  return {
    type: 'array',
    logicalType: 'map',
    items: {
      type: 'record',
      name,
      fields: [
        { name: 'key', type: 'int', 'field-id': keyId },
        { name: 'value', type: value, 'field-id': valueId },
      ],
    },
  };
}

function partitionFieldTypes(spec: PartitionSpec, schema: IcebergSchema): PrimitiveType[] {
  return spec.fields.map((f) => {
    const source = schema.fields.find((x) => x.id === f['source-id']);
    if (source === undefined) throw new LakeError('CORRUPT_METADATA', `partition source ${f['source-id']} missing`);
    return transformResultType(f.transform, primitive(source.type));
  });
}

export function manifestEntrySchema(spec: PartitionSpec, schema: IcebergSchema): AvroSchema {
  const types = partitionFieldTypes(spec, schema);
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: opt('long'), default: null, 'field-id': 1 },
      { name: 'sequence_number', type: opt('long'), default: null, 'field-id': 3 },
      { name: 'file_sequence_number', type: opt('long'), default: null, 'field-id': 4 },
      {
        name: 'data_file',
        'field-id': 2,
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'content', type: 'int', 'field-id': 134 },
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            {
              name: 'partition',
              'field-id': 102,
              type: {
                type: 'record',
                name: 'r102',
                fields: spec.fields.map((f, i) => ({
                  name: f.name,
                  type: opt(AVRO_PRIMITIVE[types[i] as PrimitiveType]),
                  default: null,
                  'field-id': f['field-id'],
                })),
              },
            },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            { name: 'column_sizes', type: opt(kvArray('k117_v118', 117, 118, 'long')), default: null, 'field-id': 108 },
            { name: 'value_counts', type: opt(kvArray('k119_v120', 119, 120, 'long')), default: null, 'field-id': 109 },
            { name: 'null_value_counts', type: opt(kvArray('k121_v122', 121, 122, 'long')), default: null, 'field-id': 110 },
            { name: 'nan_value_counts', type: opt(kvArray('k138_v139', 138, 139, 'long')), default: null, 'field-id': 137 },
            { name: 'lower_bounds', type: opt(kvArray('k126_v127', 126, 127, 'bytes')), default: null, 'field-id': 125 },
            { name: 'upper_bounds', type: opt(kvArray('k129_v130', 129, 130, 'bytes')), default: null, 'field-id': 128 },
            { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 131 },
            { name: 'split_offsets', type: opt({ type: 'array', items: 'long', 'element-id': 133 }), default: null, 'field-id': 132 },
            { name: 'equality_ids', type: opt({ type: 'array', items: 'int', 'element-id': 136 }), default: null, 'field-id': 135 },
            { name: 'sort_order_id', type: opt('int'), default: null, 'field-id': 140 },
          ],
        },
      },
    ],
  };
}

export const MANIFEST_LIST_SCHEMA: AvroSchema = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    {
      name: 'partitions',
      type: opt({
        type: 'array',
        'element-id': 508,
        items: {
          type: 'record',
          name: 'r508',
          fields: [
            { name: 'contains_null', type: 'boolean', 'field-id': 509 },
            { name: 'contains_nan', type: opt('boolean'), default: null, 'field-id': 518 },
            { name: 'lower_bound', type: opt('bytes'), default: null, 'field-id': 510 },
            { name: 'upper_bound', type: opt('bytes'), default: null, 'field-id': 511 },
          ],
        },
      }),
      default: null,
      'field-id': 507,
    },
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 519 },
  ],
};

// ---------- records <-> domain ----------

const toBuf = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

function mapToKv<V>(m: ReadonlyMap<number, V> | undefined, conv: (v: V) => unknown): unknown {
  if (m === undefined) return null;
  return [...m].map(([key, value]) => ({ key, value: conv(value) }));
}

function kvToMap<V>(kv: unknown, conv: (v: unknown) => V): Map<number, V> | undefined {
  if (kv === null || kv === undefined) return undefined;
  return new Map((kv as { key: number; value: unknown }[]).map((e) => [e.key, conv(e.value)]));
}

function dataFileRecord(f: DataFile, spec: PartitionSpec): Record<string, unknown> {
  const partition: Record<string, unknown> = {};
  spec.fields.forEach((pf, i) => {
    const v = f.partition[i] ?? null;
    partition[pf.name] = typeof v === 'bigint' ? v : v;
  });
  return {
    content: f.content,
    file_path: f.filePath,
    file_format: f.fileFormat,
    partition,
    record_count: f.recordCount,
    file_size_in_bytes: f.fileSizeInBytes,
    column_sizes: mapToKv(f.columnSizes, (v) => v),
    value_counts: mapToKv(f.valueCounts, (v) => v),
    null_value_counts: mapToKv(f.nullValueCounts, (v) => v),
    nan_value_counts: mapToKv(f.nanValueCounts, (v) => v),
    lower_bounds: mapToKv(f.lowerBounds, toBuf),
    upper_bounds: mapToKv(f.upperBounds, toBuf),
    key_metadata: null,
    split_offsets: f.splitOffsets === undefined ? null : [...f.splitOffsets],
    equality_ids: null,
    sort_order_id: f.sortOrderId ?? null,
  };
}

function dataFileFrom(r: Record<string, unknown>, spec: PartitionSpec): DataFile {
  const partition = (r['partition'] ?? {}) as Record<string, unknown>;
  const u8 = (v: unknown): Uint8Array => new Uint8Array(v as Buffer);
  const big = (v: unknown): bigint => BigInt(v as bigint | number);
  const f: DataFile = {
    content: Number(r['content'] ?? 0) as FileContent,
    filePath: r['file_path'] as string,
    fileFormat: 'PARQUET',
    partition: spec.fields.map((pf) => (partition[pf.name] ?? null) as PartitionValue),
    recordCount: big(r['record_count']),
    fileSizeInBytes: big(r['file_size_in_bytes']),
  };
  const extra: { -readonly [K in keyof DataFile]?: DataFile[K] } = {};
  const cs = kvToMap(r['column_sizes'], big);
  if (cs !== undefined) extra.columnSizes = cs;
  const vc = kvToMap(r['value_counts'], big);
  if (vc !== undefined) extra.valueCounts = vc;
  const nc = kvToMap(r['null_value_counts'], big);
  if (nc !== undefined) extra.nullValueCounts = nc;
  const nan = kvToMap(r['nan_value_counts'], big);
  if (nan !== undefined) extra.nanValueCounts = nan;
  const lb = kvToMap(r['lower_bounds'], u8);
  if (lb !== undefined) extra.lowerBounds = lb;
  const ub = kvToMap(r['upper_bounds'], u8);
  if (ub !== undefined) extra.upperBounds = ub;
  if (Array.isArray(r['split_offsets'])) extra.splitOffsets = (r['split_offsets'] as unknown[]).map(big);
  if (typeof r['sort_order_id'] === 'number') extra.sortOrderId = r['sort_order_id'];
  return { ...f, ...extra };
}

export interface ManifestWriteOptions {
  readonly schema: IcebergSchema;
  readonly spec: PartitionSpec;
  readonly content: 'data' | 'deletes';
}

export function writeManifest(entries: readonly ManifestEntry[], options: ManifestWriteOptions): Uint8Array {
  const avroSchema = manifestEntrySchema(options.spec, options.schema);
  const records = entries.map((e) => ({
    status: e.status,
    snapshot_id: e.snapshotId,
    sequence_number: e.sequenceNumber,
    file_sequence_number: e.fileSequenceNumber,
    data_file: dataFileRecord(e.dataFile, options.spec),
  }));
  return writeAvroFile(avroSchema, records, {
    schema: stringifyJson(options.schema),
    'schema-id': String(options.schema['schema-id']),
    'partition-spec': stringifyJson(options.spec.fields),
    'partition-spec-id': String(options.spec['spec-id']),
    'format-version': '2',
    content: options.content,
  });
}

/**
 * Read a manifest. Entries with a null sequence number inherit the
 * manifest's (spec: "Sequence Number Inheritance").
 */
export async function readManifest(bytes: Uint8Array, manifest: ManifestFile, spec: PartitionSpec): Promise<ManifestEntry[]> {
  const file = await readAvroFile(bytes);
  return file.records.map((raw) => {
    const r = raw as Record<string, unknown>;
    const status = Number(r['status']) as EntryStatus;
    const inherit = (v: unknown): bigint =>
      v === null || v === undefined ? manifest.sequenceNumber : BigInt(v as bigint | number);
    return {
      status,
      snapshotId: r['snapshot_id'] === null || r['snapshot_id'] === undefined ? manifest.addedSnapshotId : BigInt(r['snapshot_id'] as bigint),
      sequenceNumber: inherit(r['sequence_number']),
      fileSequenceNumber: inherit(r['file_sequence_number']),
      dataFile: dataFileFrom(r['data_file'] as Record<string, unknown>, spec),
    };
  });
}

export function writeManifestList(
  manifests: readonly ManifestFile[],
  meta: { snapshotId: bigint; parentSnapshotId: bigint | undefined; sequenceNumber: bigint },
): Uint8Array {
  const records = manifests.map((m) => ({
    manifest_path: m.manifestPath,
    manifest_length: m.manifestLength,
    partition_spec_id: m.partitionSpecId,
    content: m.content,
    sequence_number: m.sequenceNumber,
    min_sequence_number: m.minSequenceNumber,
    added_snapshot_id: m.addedSnapshotId,
    added_files_count: m.addedFilesCount,
    existing_files_count: m.existingFilesCount,
    deleted_files_count: m.deletedFilesCount,
    added_rows_count: m.addedRowsCount,
    existing_rows_count: m.existingRowsCount,
    deleted_rows_count: m.deletedRowsCount,
    partitions:
      m.partitions === undefined
        ? null
        : m.partitions.map((p) => ({
            contains_null: p.containsNull,
            contains_nan: p.containsNan ?? null,
            lower_bound: p.lowerBound === undefined ? null : toBuf(p.lowerBound),
            upper_bound: p.upperBound === undefined ? null : toBuf(p.upperBound),
          })),
    key_metadata: null,
  }));
  return writeAvroFile(MANIFEST_LIST_SCHEMA, records, {
    'snapshot-id': meta.snapshotId.toString(),
    'parent-snapshot-id': meta.parentSnapshotId === undefined ? 'null' : meta.parentSnapshotId.toString(),
    'sequence-number': meta.sequenceNumber.toString(),
    'format-version': '2',
  });
}

export async function readManifestList(bytes: Uint8Array): Promise<ManifestFile[]> {
  const file = await readAvroFile(bytes);
  return file.records.map((raw) => {
    const r = raw as Record<string, unknown>;
    const big = (v: unknown): bigint => BigInt((v ?? 0) as bigint | number);
    const parts = r['partitions'] as Record<string, unknown>[] | null | undefined;
    const m: ManifestFile = {
      manifestPath: r['manifest_path'] as string,
      manifestLength: big(r['manifest_length']),
      partitionSpecId: Number(r['partition_spec_id']),
      content: Number(r['content'] ?? 0) === 1 ? 1 : 0,
      sequenceNumber: big(r['sequence_number']),
      minSequenceNumber: big(r['min_sequence_number']),
      addedSnapshotId: big(r['added_snapshot_id']),
      addedFilesCount: Number(r['added_files_count'] ?? r['added_data_files_count'] ?? 0),
      existingFilesCount: Number(r['existing_files_count'] ?? r['existing_data_files_count'] ?? 0),
      deletedFilesCount: Number(r['deleted_files_count'] ?? r['deleted_data_files_count'] ?? 0),
      addedRowsCount: big(r['added_rows_count']),
      existingRowsCount: big(r['existing_rows_count']),
      deletedRowsCount: big(r['deleted_rows_count']),
    };
    if (parts === null || parts === undefined) return m;
    const summaries: FieldSummary[] = parts.map((p) => {
      const s: { -readonly [K in keyof FieldSummary]: FieldSummary[K] } = { containsNull: Boolean(p['contains_null']) };
      if (typeof p['contains_nan'] === 'boolean') s.containsNan = p['contains_nan'];
      if (p['lower_bound'] !== null && p['lower_bound'] !== undefined) s.lowerBound = new Uint8Array(p['lower_bound'] as Buffer);
      if (p['upper_bound'] !== null && p['upper_bound'] !== undefined) s.upperBound = new Uint8Array(p['upper_bound'] as Buffer);
      return s;
    });
    return { ...m, partitions: summaries };
  });
}

export { FileContent };
