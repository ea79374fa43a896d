import type { ColumnType, TableSchema } from '../schema.ts';
import { LakeError } from './errors.ts';
import { maxFieldId } from './iceberg/metadata.ts';
import type { IcebergSchema, NestedField, PartitionSpec, PrimitiveType } from './iceberg/types.ts';
import type { ParquetColumn } from './parquet.ts';

/**
 * The lake layout (docs/lake.md): per synced table an append-only change
 * table `<table>_changes` and a current-state table `<table>`, in one
 * namespace per gateway. System columns have fixed field ids; user columns
 * get ids from 10 up in the order they were added, and keep them forever.
 */

export const CHANGES_SUFFIX = '_changes';
export const FIRST_USER_FIELD_ID = 10;

export function changeTableName(table: string): string {
  return `${table}${CHANGES_SUFFIX}`;
}

export const CHANGE_SYSTEM_FIELDS: readonly NestedField[] = [
  { id: 1, name: '_seq', required: true, type: 'long', doc: 'server order in the gateway buffer' },
  { id: 2, name: '_delta_id', required: true, type: 'string' },
  { id: 3, name: '_op', required: true, type: 'string', doc: 'insert, update or delete' },
  { id: 4, name: '_row_id', required: true, type: 'string' },
  { id: 5, name: '_client_id', required: true, type: 'string' },
  { id: 6, name: '_hlc', required: true, type: 'long', doc: 'hybrid logical clock: ms << 16 | counter' },
  { id: 7, name: '_hlc_time', required: true, type: 'timestamptz', doc: 'wall-clock part of _hlc' },
  {
    id: 8,
    name: '_set_columns',
    required: true,
    type: { type: 'list', 'element-id': 9, element: 'string', 'element-required': true },
    doc: 'columns this delta set; a set column may be null, an unset one is absent',
  },
];

export const STATE_SYSTEM_FIELDS: readonly NestedField[] = [
  { id: 1, name: '_row_id', required: true, type: 'string' },
  { id: 2, name: '_seq', required: true, type: 'long', doc: 'buffer seq of the last delta flushed into this row' },
  { id: 3, name: '_hlc', required: true, type: 'long', doc: 'newest stamp in the row' },
  { id: 4, name: '_hlc_time', required: true, type: 'timestamptz' },
  { id: 5, name: '_state', required: true, type: 'binary', doc: 'merge state: per-column values and stamps' },
];

export const ICEBERG_TYPE: Readonly<Record<ColumnType, PrimitiveType>> = {
  string: 'string',
  integer: 'long',
  number: 'double',
  boolean: 'boolean',
  json: 'string',
};

/**
 * The Iceberg schema for a table's columns, evolving `current` if given:
 * existing columns keep their ids, new ones get the next free id. A column
 * whose type changed is refused (the engine's schemas only add columns).
 */
export function evolveSchema(
  system: readonly NestedField[],
  table: TableSchema,
  current: IcebergSchema | undefined,
  lastColumnId: number,
): { schema: IcebergSchema; changed: boolean } {
  const fields: NestedField[] = current === undefined ? [...system] : [...current.fields];
  let nextId = Math.max(lastColumnId, FIRST_USER_FIELD_ID - 1) + 1;
  let changed = current === undefined;
  for (const col of table.columns) {
    const type = ICEBERG_TYPE[col.type];
    const existing = fields.find((f) => f.name === col.name);
    if (existing !== undefined) {
      if (existing.type !== type) {
        throw new LakeError('CORRUPT_METADATA', `${table.name}.${col.name} is ${String(existing.type)} in the lake, ${type} in the schema`);
      }
      continue;
    }
    fields.push({ id: nextId++, name: col.name, required: false, type, ...(col.type === 'json' ? { doc: 'json' } : {}) });
    changed = true;
  }
  const schemaId = current === undefined ? 0 : current['schema-id'] + (changed ? 1 : 0);
  return { schema: { type: 'struct', 'schema-id': schemaId, fields }, changed };
}

export function lastColumnId(schema: IcebergSchema): number {
  return maxFieldId(schema);
}

/** Parquet columns for every top-level field of an Iceberg schema. */
/** Columns with few distinct values, worth a Parquet dictionary. */
const LOW_CARDINALITY = new Set(['_op', '_client_id']);

export function parquetColumns(schema: IcebergSchema): ParquetColumn[] {
  return schema.fields.map((f) => {
    if (typeof f.type === 'string') {
      const dictionary = LOW_CARDINALITY.has(f.name) || (f.type === 'string' && !f.name.startsWith('_'));
      return { id: f.id, name: f.name, type: f.type, required: f.required, dictionary };
    }
    if (f.type.type === 'list' && f.type.element === 'string') {
      return { id: f.id, name: f.name, type: 'list<string>', required: f.required, elementId: f.type['element-id'] };
    }
    throw new LakeError('CORRUPT_METADATA', `unsupported column type for ${f.name}`);
  });
}

/** The primitive types each transform takes (as written here: values.ts applies them); null: any. */
const TRANSFORM_SOURCES = {
  identity: null,
  year: ['date', 'timestamp', 'timestamptz'],
  month: ['date', 'timestamp', 'timestamptz'],
  day: ['date', 'timestamp', 'timestamptz'],
  hour: ['timestamp', 'timestamptz'],
  bucket: ['int', 'long', 'date', 'time', 'timestamp', 'timestamptz', 'string', 'binary', 'uuid'],
  truncate: ['int', 'long', 'string'],
} satisfies Record<string, readonly PrimitiveType[] | null>;

/**
 * Partitioning from a config string: "none", "identity(col)", "day(col)",
 * "month(col)", "year(col)", "hour(col)", "bucket(N, col)", "truncate(W, col)".
 */
export function parsePartitioning(text: string, schema: IcebergSchema): PartitionSpec {
  const spec = text.trim();
  if (spec === '' || spec === 'none') return { 'spec-id': 0, fields: [] };
  const fields = spec.split(/\s*;\s*/).map((part, i) => {
    const m = /^(identity|year|month|day|hour|bucket|truncate)\(\s*(?:(\d+)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(part);
    if (m === null) throw new LakeError('CORRUPT_METADATA', `bad partitioning "${part}"`);
    const [, fn, n, col] = m as unknown as [string, string, string | undefined, string];
    const source = schema.fields.find((f) => f.name === col);
    if (source === undefined) throw new LakeError('CORRUPT_METADATA', `partition column ${col} does not exist`);
    const needsN = fn === 'bucket' || fn === 'truncate';
    if (needsN !== (n !== undefined) || (n !== undefined && !(Number(n) >= 1 && Number(n) <= 2 ** 31 - 1))) {
      throw new LakeError('CORRUPT_METADATA', `bad partitioning "${part}"`);
    }
    // Refused here, before the table exists: a transform that cannot take the column would fail every flush.
    const accepts: readonly PrimitiveType[] | null = TRANSFORM_SOURCES[fn as keyof typeof TRANSFORM_SOURCES];
    if (typeof source.type !== 'string' || (accepts !== null && !accepts.includes(source.type))) {
      throw new LakeError('CORRUPT_METADATA', `bad partitioning "${part}": ${fn} cannot take ${col} (${typeof source.type === 'string' ? source.type : source.type.type})`);
    }
    const transform = needsN ? `${fn}[${n}]` : fn;
    const name = fn === 'identity' ? col : `${col}_${fn}`;
    return { 'source-id': source.id, 'field-id': 1000 + i, name, transform };
  });
  const names = fields.map((f) => f.name);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new LakeError('CORRUPT_METADATA', `bad partitioning "${spec}": ${twice} twice`);
  return { 'spec-id': 0, fields };
}
