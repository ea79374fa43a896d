import type { DeltaBuffer, LogEntry } from '../engine/ports.ts';
import { encodeHlc, hlcWall, isValidHlc, type Hlc } from '../hlc.ts';
import { visibleValues } from '../merge.ts';
import { isJsonText, type ColumnValue } from '../values.ts';
import { LakeError } from './errors.ts';
import type { Lake } from './flush.ts';
import { newestHlc, watermark } from './flush.ts';
import { currentSchema, currentSnapshot } from './iceberg/metadata.ts';
import { liveFiles } from './iceberg/snapshot.ts';
import type { IcebergSchema, NestedField } from './iceberg/types.ts';
import { CHANGE_SYSTEM_FIELDS, changeTableName, evolveSchema, STATE_SYSTEM_FIELDS } from './layout.ts';
import type { TableSchema } from '../schema.ts';

/**
 * Analytics over one synced table (MISSION capability 16): what a SQL engine
 * needs to read the **union of cold and hot data** (the lake's Iceberg files
 * plus the deltas the buffer holds that no flush has committed yet), and to
 * **time-travel by HLC** (the state made of every delta stamped at or before
 * an HLC). The engine is DuckDB (functions/local/query.ts); this module only
 * gathers files and hot rows and writes the SQL, so it stays runtime-free.
 *
 * Consistency: the lake is read first, the buffer after it, from the
 * table's watermark. A flush that commits in between could move deltas from
 * the buffer into the lake we already read, and a trim could then forget
 * them: so the lake is read again afterwards, and the whole read is retried
 * when either table got a new snapshot (see `readTable`).
 */

/** What analytics reads from the buffer. */
export type HotSource = Pick<DeltaBuffer, 'read' | 'loadRows'>;

/** A table's live Parquet files at one snapshot. */
export interface ColdFiles {
  readonly schema: IcebergSchema;
  readonly snapshotId: bigint | undefined;
  /** The highest buffer seq the table holds. */
  readonly watermark: bigint;
  readonly data: readonly string[];
  readonly deletes: readonly string[];
}

/** A row of the current state not yet in the lake (columns as in the state table, minus `_state`). */
export interface HotStateRow {
  readonly _row_id: string;
  readonly _seq: bigint;
  readonly _hlc: bigint;
  readonly values: Readonly<Record<string, ColumnValue>>;
}

export interface TableRead {
  readonly table: string;
  readonly changes: ColdFiles;
  readonly state: ColdFiles;
  /** Deltas of this table above the change table's watermark, in seq order. */
  readonly hotChanges: readonly LogEntry[];
  /** Rows written above the state table's watermark: the lake's row (if any) is replaced by `hotRows` (if live). */
  readonly touched: readonly string[];
  readonly hotRows: readonly HotStateRow[];
}

const PAGE = 10_000;
const MAX_ATTEMPTS = 10;

/**
 * A table's live files, under the schema the next flush gives it (the
 * lake's, plus the columns the engine's schema added since: the buffer may
 * already hold their values). A table no flush has created yet is empty.
 */
export async function coldFiles(lake: Lake, name: string, system: readonly NestedField[], synced: TableSchema): Promise<ColdFiles> {
  const table = await lake.catalog.loadTable(lake.ident(name));
  if (table === null) return { schema: evolveSchema(system, synced, undefined, 0).schema, snapshotId: undefined, watermark: 0n, data: [], deletes: [] };
  const m = table.metadata;
  const schema = evolveSchema(system, synced, currentSchema(m), m['last-column-id']).schema;
  const snapshot = currentSnapshot(m);
  const wm = await watermark(m);
  if (snapshot === undefined) return { schema, snapshotId: undefined, watermark: wm, data: [], deletes: [] };
  const live = await liveFiles(lake.store, m, snapshot['snapshot-id']);
  return {
    schema,
    snapshotId: snapshot['snapshot-id'],
    watermark: wm,
    data: live.data.map((e) => e.dataFile.filePath),
    deletes: live.deletes.map((e) => e.dataFile.filePath),
  };
}

async function snapshotIdOf(lake: Lake, name: string): Promise<bigint | undefined> {
  const table = await lake.catalog.loadTable(lake.ident(name));
  return table === null ? undefined : currentSnapshot(table.metadata)?.['snapshot-id'];
}

/**
 * The lake's files of both tables of `table`, and, with a source, what the
 * buffer holds beyond them. Without a source the read is cold only.
 */
export async function readTable(lake: Lake, table: string, source?: HotSource): Promise<TableRead> {
  const synced = lake.tableSchema(table);
  if (synced === undefined) throw new LakeError('NOT_FOUND', `no synced table ${table}`);
  const read = (): Promise<[ColdFiles, ColdFiles]> =>
    Promise.all([coldFiles(lake, changeTableName(table), CHANGE_SYSTEM_FIELDS, synced), coldFiles(lake, table, STATE_SYSTEM_FIELDS, synced)]);
  for (let attempt = 1; ; attempt++) {
    const [changes, state] = await read();
    if (source === undefined) return { table, changes, state, hotChanges: [], touched: [], hotRows: [] };
    const hot = await readHot(source, table, changes.watermark, state.watermark);
    // Only the snapshot ids are compared: the metadata, not the manifests, is read again.
    const [c2, s2] = await Promise.all([snapshotIdOf(lake, changeTableName(table)), snapshotIdOf(lake, table)]);
    if (c2 === changes.snapshotId && s2 === state.snapshotId) return { table, changes, state, ...hot };
    if (attempt >= MAX_ATTEMPTS) throw new LakeError('COMMIT_CONFLICT', `${table} kept changing while it was read (${attempt} attempts): try again`);
  }
}

async function readHot(
  source: HotSource,
  table: string,
  changesWatermark: bigint,
  stateWatermark: bigint,
): Promise<Pick<TableRead, 'hotChanges' | 'touched' | 'hotRows'>> {
  const hotChanges: LogEntry[] = [];
  const lastSeq = new Map<string, bigint>();
  let after = changesWatermark < stateWatermark ? changesWatermark : stateWatermark;
  for (;;) {
    const page = await source.read(after, PAGE);
    for (const e of page.entries) {
      if (e.delta.table !== table) continue;
      if (e.seq > changesWatermark) hotChanges.push(e);
      if (e.seq > stateWatermark) lastSeq.set(e.delta.rowId, e.seq);
    }
    if (!page.hasMore || page.lastSeq === after) break;
    after = page.lastSeq;
  }
  const touched = [...lastSeq.keys()].sort();
  const stored = await source.loadRows(touched.map((rowId) => ({ table, rowId })));
  const hotRows: HotStateRow[] = [];
  touched.forEach((id, i) => {
    const state = stored[i]?.state;
    const values = state === undefined ? null : visibleValues(state);
    if (state === undefined || values === null) return;
    hotRows.push({ _row_id: id, _seq: lastSeq.get(id) as bigint, _hlc: newestHlc(state), values });
  });
  return { hotChanges, touched, hotRows };
}

/**
 * An `--as-of` argument: a raw HLC (decimal digits), or an ISO-8601 time,
 * which means "every delta stamped within or before that millisecond".
 */
export function parseAsOf(text: string): Hlc {
  if (/^\d+$/.test(text)) {
    const h = BigInt(text);
    if (!isValidHlc(h)) throw new LakeError('NOT_FOUND', `"${text}" is not a valid HLC`);
    return h;
  }
  const m = /^\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:?\d\d)?)?$/.exec(text);
  // A time without a zone is UTC, like a bare date (Date.parse would read it as local time).
  const ms = m === null ? Number.NaN : Date.parse(m[1] !== undefined && m[2] === undefined ? `${text}Z` : text);
  if (!Number.isFinite(ms) || ms < 0) throw new LakeError('NOT_FOUND', `"${text}" is neither an HLC nor an ISO-8601 time (e.g. 2026-11-26T14:00:00Z)`);
  return encodeHlc(ms, 0xffff);
}

/** The wall-clock time of an HLC, for messages. */
export function hlcTime(h: Hlc): string {
  return new Date(hlcWall(h)).toISOString();
}

// ---------------------------------------------------------------- SQL

/** A quoted SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A quoted SQL string literal. */
export function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The DuckDB type of a lake column. */
export function sqlType(field: NestedField): string {
  const t = field.type;
  if (typeof t !== 'string') return 'VARCHAR[]';
  switch (t) {
    case 'long':
      return 'BIGINT';
    case 'int':
      return 'INTEGER';
    case 'double':
      return 'DOUBLE';
    case 'float':
      return 'FLOAT';
    case 'boolean':
      return 'BOOLEAN';
    case 'binary':
      return 'BLOB';
    case 'timestamptz':
      return 'TIMESTAMPTZ';
    default:
      return 'VARCHAR';
  }
}

/** The user columns of a lake table (field ids 10 and up; system columns start with `_`). */
export function userFields(schema: IcebergSchema): NestedField[] {
  return schema.fields.filter((f) => !f.name.startsWith('_'));
}

/** A typed empty relation with these columns (read_parquet refuses an empty file list). */
function emptyRelation(fields: readonly NestedField[]): string {
  return `SELECT ${fields.map((f) => `CAST(NULL AS ${sqlType(f)}) AS ${ident(f.name)}`).join(', ')} WHERE false`;
}

function fileList(paths: readonly string[]): string {
  return `[${paths.map(literal).join(', ')}]`;
}

/** The name a field gets inside a Parquet scan: by id, so no user name can clash with DuckDB's own columns. */
function scanName(f: NestedField): string {
  return `f${f.id}`;
}

/**
 * A scan of Parquet files that reads columns by Iceberg field id, as
 * Iceberg readers must: a file written before a column existed reads it as
 * null (even when no file has it yet), and names cannot collide with the
 * virtual `filename` / `file_row_number` columns (a user column may be
 * called either). Partition directories are not columns (no hive parsing:
 * their names are escaped, and a transform's value is not the column's).
 */
function parquetScan(paths: readonly string[], fields: readonly NestedField[]): string {
  const map = fields.map((f) => `${f.id}: {name: ${literal(scanName(f))}, type: ${literal(sqlType(f))}, default_value: NULL}`).join(', ');
  return `read_parquet(${fileList(paths)}, schema = MAP {${map}}, hive_partitioning = false)`;
}

function selectScanned(fields: readonly NestedField[], alias: string): string {
  return fields.map((f) => `${alias}.${scanName(f)} AS ${ident(f.name)}`).join(', ');
}

/**
 * The change table as SQL: its Parquet files (every schema version, read
 * by field id) plus the hot deltas, which the caller loads into the
 * relation named `hot`. `path` maps a file URI to what DuckDB opens.
 */
export function changesSql(files: ColdFiles, hot: string, path: (uri: string) => string): string {
  const fields = files.schema.fields;
  const cols = fields.map((f) => ident(f.name)).join(', ');
  const cold = files.data.length === 0 ? emptyRelation(fields) : `SELECT ${selectScanned(fields, 'd')} FROM ${parquetScan(files.data.map(path), fields)} d`;
  return `${cold} UNION ALL BY NAME SELECT ${cols} FROM ${hot}`;
}

/**
 * The current state as SQL: the state table's Parquet files with its
 * position deletes applied (the delete files name data files by URI, so the
 * relation `uris` maps them to the paths DuckDB reports), minus rows the
 * buffer changed since (`touched`), plus the buffer's live rows (`hot`).
 */
export function stateSql(files: ColdFiles, rel: { hot: string; touched: string; uris: string }, path: (uri: string) => string): string {
  const fields = files.schema.fields.filter((f) => f.name !== '_state');
  const cols = fields.map((f) => ident(f.name)).join(', ');
  let cold: string;
  if (files.data.length === 0) cold = emptyRelation(fields);
  else {
    const data = parquetScan(files.data.map(path), fields);
    cold =
      files.deletes.length === 0
        ? `SELECT ${selectScanned(fields, 'd')} FROM ${data} d`
        : `SELECT ${selectScanned(fields, 'd')} FROM ${data} d ANTI JOIN (SELECT u.path, x.pos FROM read_parquet(${fileList(files.deletes.map(path))}, hive_partitioning = false) x JOIN ${rel.uris} u ON u.uri = x.file_path) g ON g.path = d.filename AND g.pos = d.file_row_number`;
  }
  return `SELECT ${cols} FROM (${cold}) c WHERE c._row_id NOT IN (SELECT _row_id FROM ${rel.touched}) UNION ALL BY NAME SELECT ${cols} FROM ${rel.hot}`;
}

/**
 * The state as of an HLC, as SQL over a change relation: the merge rules of
 * core/MERGE.md, column by column. Stamps compare as (hlc, client id); client
 * ids are ASCII, so DuckDB's byte order is the merge's code-unit order.
 * - a row is live when its newest insert is newer than its newest delete;
 * - a column shows the value of its newest write, if that write is newer
 *   than the newest delete (older ones were dropped by the delete).
 * Tested against the engine's own merge on random histories.
 */
export function asOfSql(schema: IcebergSchema, changes: string, hlc: Hlc): string {
  const stamp = '{h: _hlc, c: _client_id}';
  const users = userFields(schema);
  const perColumn = users.flatMap((f, i) => {
    const sets = `list_contains(_set_columns, ${literal(f.name)})`;
    return [`arg_max_null(${ident(f.name)}, ${stamp}) FILTER (WHERE ${sets}) AS v${i}`, `max(${stamp}) FILTER (WHERE ${sets}) AS s${i}`];
  });
  const grouped = [
    '_row_id',
    'max(_seq) AS _seq',
    'max(_hlc) AS _hlc',
    `max(${stamp}) FILTER (WHERE _op = 'insert') AS ins`,
    `max(${stamp}) FILTER (WHERE _op = 'delete') AS del`,
    ...perColumn,
  ].join(', ');
  const visibleCols = users.map((f, i) => `CASE WHEN del IS NULL OR s${i} > del THEN v${i} END AS ${ident(f.name)}`);
  const hlcTimeCol = `make_timestamp((_hlc >> 16) * 1000)::TIMESTAMPTZ AS _hlc_time`;
  return (
    `SELECT _row_id, _seq, _hlc, ${hlcTimeCol}${visibleCols.map((c) => `, ${c}`).join('')} ` +
    `FROM (SELECT ${grouped} FROM (${changes}) WHERE _hlc <= ${BigInt.asIntN(64, hlc)} GROUP BY _row_id) ` +
    `WHERE ins IS NOT NULL AND (del IS NULL OR ins > del)`
  );
}

/** A column value as the lake stores it (JSON as its text, integers as int64). */
export function lakeCell(v: ColumnValue | undefined, field: NestedField): ColumnValue {
  if (v === undefined || v === null) return null;
  if (isJsonText(v)) return v.json;
  if (field.type === 'long') return typeof v === 'bigint' ? v : BigInt(v as number);
  if (field.type === 'double') return Number(v);
  return v;
}
