import type { DeltaBuffer, LogEntry } from '../engine/ports.ts';
import { hlcWall } from '../hlc.ts';
import { isLive, type ColumnState, type RowState } from '../merge.ts';
import type { Schema, TableSchema } from '../schema.ts';
import { encodeRows } from '../codec/storage.ts';
import { isJsonText, type ColumnValue } from '../values.ts';
import { isLakeError, LakeError } from './errors.ts';
import { currentSchema, currentSnapshot, defaultSpec, snapshotById, type TableUpdate } from './iceberg/metadata.ts';
import { produceSnapshot } from './iceberg/snapshot.ts';
import { applyTransform, compareUtf8, partitionKey, type LakeValue } from './iceberg/values.ts';
import {
  FileContent,
  POS_DELETE_FILE_PATH_ID,
  POS_DELETE_POS_ID,
  type DataFile,
  type IcebergSchema,
  type PartitionSpec,
  type PartitionValue,
  type TableMetadata,
} from './iceberg/types.ts';
import {
  CHANGE_SYSTEM_FIELDS,
  STATE_SYSTEM_FIELDS,
  changeTableName,
  evolveSchema,
  lastColumnId,
  parquetColumns,
  parsePartitioning,
} from './layout.ts';
import { writeTableFile } from './data-files.ts';
import type { ParquetColumn } from './parquet.ts';
import type { Catalog, LoadedTable, ObjectStore, TableIdent } from './ports.ts';
import { locateRows, rememberRowIds, type RowLocation } from './state-index.ts';

/**
 * Flush: buffer -> Parquet -> object store -> catalog commit, exactly once.
 *
 * Every snapshot LakeSync commits carries `lakesync.watermark`: the highest
 * buffer seq whose deltas the table holds. A flush of the range (a, b]
 * writes, per Iceberg table, only the entries above that table's watermark
 * and commits with `assert-ref-snapshot-id`, so a retried or concurrent
 * flush can never add a delta twice; a lost commit only leaves orphan files.
 * The buffer is told `markFlushed(b)` after both tables of every touched
 * synced table are committed, and only then may forget the range.
 */

export const WATERMARK = 'lakesync.watermark';

/**
 * The buffer's head as a flush knows it: read when the flush begins, and
 * again when a table's watermark is above it (heads only grow; another
 * flush may have landed deltas appended after the first read).
 */
class HeadMark {
  constructor(
    private readonly source: Pick<DeltaBuffer, 'head'>,
    public seq: bigint,
  ) {}

  async reaches(seq: bigint): Promise<boolean> {
    if (seq > this.seq) this.seq = await this.source.head();
    return seq <= this.seq;
  }
}

/** What flush needs from the gateway buffer (see DeltaBuffer). */
export type FlushSource = Pick<DeltaBuffer, 'read' | 'loadRows' | 'head' | 'flushedThrough' | 'markFlushed'>;

export type FlushStep =
  | 'changes-files-written'
  | 'changes-committed'
  | 'state-files-written'
  | 'state-committed'
  | 'chunk-done';

export interface LakeOptions {
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly schema: Schema;
  /** Where new tables live: `<warehouse>/<namespace>/<table>`. */
  readonly warehouse: string;
  readonly namespace?: readonly string[];
  /** Partitioning of change tables (default "day(_hlc_time)") and state tables (default "none"). */
  readonly partitioning?: { readonly changes?: string; readonly state?: string };
  /** Deltas per flush chunk: each chunk is one snapshot per table, and bounds memory. */
  readonly chunkDeltas?: number;
  readonly rowGroupBytes?: number;
  /** Write Parquet format 2 data pages (see ParquetWriteOptions.dataPageV2); off by default. */
  readonly parquetDataPageV2?: boolean;
  /** Files of at least twice this many rows are encoded in pieces on worker threads (ParquetWriteOptions.minPieceRows). */
  readonly parquetPieceRows?: number;
  readonly now?: () => number;
  readonly maxCommitAttempts?: number;
  /** Test hook: called after each step; throwing simulates a crash there. */
  readonly fault?: (step: FlushStep, table: string) => void | Promise<void>;
}

export interface FlushReport {
  readonly from: bigint;
  readonly to: bigint;
  readonly deltas: number;
  readonly snapshots: number;
  readonly files: number;
}

const DEFAULT_CHUNK = 50_000;

export class Lake {
  readonly namespace: readonly string[];
  private readonly opts: LakeOptions;
  private readonly tables: Map<string, TableSchema>;
  private ready = false;

  constructor(options: LakeOptions) {
    this.opts = options;
    this.namespace = options.namespace ?? ['lakesync'];
    this.tables = new Map(options.schema.tables.map((t) => [t.name, t]));
    for (const t of options.schema.tables) {
      if (this.tables.has(changeTableName(t.name))) {
        throw new LakeError('CORRUPT_METADATA', `table ${t.name} collides with the change table of another`);
      }
    }
  }

  get catalog(): Catalog {
    return this.opts.catalog;
  }

  get store(): ObjectStore {
    return this.opts.store;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A synced table's columns as this lake's schema has them. */
  tableSchema(name: string): TableSchema | undefined {
    return this.tables.get(name);
  }

  /** The current-state tables (one per synced table), as checkpoints read them. */
  stateTables(): string[] {
    return [...this.tables.keys()];
  }

  ident(name: string): TableIdent {
    return { namespace: this.namespace, name };
  }

  /** Create or evolve both Iceberg tables of every synced table. Idempotent. */
  async ensureTables(): Promise<void> {
    await this.catalog.createNamespace(this.namespace);
    for (const t of this.tables.values()) {
      await this.ensureTable(changeTableName(t.name), CHANGE_SYSTEM_FIELDS, t, this.opts.partitioning?.changes ?? 'day(_hlc_time)');
      await this.ensureTable(t.name, STATE_SYSTEM_FIELDS, t, this.opts.partitioning?.state ?? 'none');
    }
    this.ready = true;
  }

  private async ensureTable(name: string, system: typeof CHANGE_SYSTEM_FIELDS, table: TableSchema, partitioning: string): Promise<void> {
    const ident = this.ident(name);
    for (let attempt = 0; ; attempt++) {
      const loaded = await this.catalog.loadTable(ident);
      if (loaded === null) {
        const { schema } = evolveSchema(system, table, undefined, 0);
        try {
          await this.catalog.createTable(ident, {
            schema,
            spec: parsePartitioning(partitioning, schema),
            location: `${this.opts.warehouse.replace(/\/+$/, '')}/${this.namespace.join('/')}/${name}`,
            properties: { 'lakesync.table': table.name, 'write.parquet.compression-codec': 'zstd' },
          });
          return;
        } catch (e) {
          if (isLakeError(e, 'ALREADY_EXISTS') && attempt < 3) continue;
          throw e;
        }
      }
      const current = currentSchema(loaded.metadata);
      const { schema, changed } = evolveSchema(system, table, current, loaded.metadata['last-column-id']);
      if (!changed) return;
      const updates: TableUpdate[] = [
        { action: 'add-schema', schema, 'last-column-id': lastColumnId(schema) },
        { action: 'set-current-schema', 'schema-id': -1 },
      ];
      try {
        await this.catalog.commitTable(
          ident,
          [
            { type: 'assert-current-schema-id', 'current-schema-id': current['schema-id'] },
            { type: 'assert-last-assigned-field-id', 'last-assigned-field-id': loaded.metadata['last-column-id'] },
          ],
          updates,
        );
        return;
      } catch (e) {
        if ((isLakeError(e, 'COMMIT_CONFLICT') || isLakeError(e, 'COMMIT_STATE_UNKNOWN')) && attempt < 5) continue;
        throw e;
      }
    }
  }

  /** Flush everything the buffer holds above its flushed mark, chunk by chunk. */
  async flush(source: FlushSource): Promise<FlushReport> {
    if (!this.ready) await this.ensureTables();
    const from = await source.flushedThrough();
    const head = new HeadMark(source, await source.head());
    let after = from;
    let deltas = 0;
    let snapshots = 0;
    let files = 0;
    for (;;) {
      const page = await source.read(after, this.opts.chunkDeltas ?? DEFAULT_CHUNK);
      if (page.entries.length === 0) break;
      const byTable = new Map<string, LogEntry[]>();
      for (const e of page.entries) {
        let list = byTable.get(e.delta.table);
        if (list === undefined) byTable.set(e.delta.table, (list = []));
        list.push(e);
      }
      for (const [table, entries] of byTable) {
        const schema = this.tables.get(table);
        if (schema === undefined) throw new LakeError('CORRUPT_METADATA', `buffer holds deltas of unknown table ${table}`);
        const c = await this.commitChanges(schema, entries, page.lastSeq, head);
        const s = await this.commitState(schema, entries, page.lastSeq, source, head);
        snapshots += c.snapshots + s.snapshots;
        files += c.files + s.files;
      }
      await source.markFlushed(page.lastSeq);
      await this.opts.fault?.('chunk-done', '*');
      deltas += page.entries.length;
      after = page.lastSeq;
      if (!page.hasMore) break;
    }
    return { from, to: after, deltas, snapshots, files };
  }

  /**
   * Commit one table's part of a chunk: reload, keep the entries above the
   * table's watermark, write files, commit. A conflict or an unknown outcome
   * reloads and looks again; the watermark tells what already landed.
   */
  private async commitLoop(
    name: string,
    upTo: bigint,
    head: HeadMark,
    entries: readonly LogEntry[],
    write: (table: LoadedTable, todo: readonly LogEntry[]) => Promise<{ data: DataFile[]; deletes: DataFile[] }>,
  ): Promise<{ snapshots: number; files: number }> {
    const ident = this.ident(name);
    const max = this.opts.maxCommitAttempts ?? 10;
    for (let attempt = 1; ; attempt++) {
      const table = await this.catalog.loadTable(ident);
      if (table === null) throw new LakeError('NOT_FOUND', `lake table ${name} disappeared`);
      const wm = await watermark(table.metadata);
      // Seqs are never reused, so a table ahead of the buffer's head means a
      // new buffer (deleted, or restored from an older backup) beside the old
      // lake: its deltas reuse seqs the watermark says landed, and skipping
      // them would lose them. Stop; they stay in the buffer. (The head read
      // when this flush began may be behind a concurrent flush that landed
      // newer deltas since: it is read again first.)
      if (!(await head.reaches(wm))) {
        throw new LakeError(
          'BUFFER_BEHIND_LAKE',
          `lake table ${name} holds deltas through seq ${wm}, but the buffer has handed out only ${head.seq}: the buffer was replaced (or restored from an older backup) while the lake was kept. Nothing is flushed until you restore that buffer, or move this lake away to start a new one`,
        );
      }
      if (wm >= upTo) return { snapshots: 0, files: 0 };
      const todo = entries.filter((e) => e.seq > wm);
      if (todo.length === 0) return { snapshots: 0, files: 0 };
      const { data, deletes } = await write(table, todo);
      const produced = await produceSnapshot(
        this.store,
        table,
        {
          operation: deletes.length > 0 ? 'overwrite' : 'append',
          addedDataFiles: data,
          addedDeleteFiles: deletes,
          summary: { [WATERMARK]: upTo.toString(), 'lakesync.flush-from': todo[0]?.seq.toString() ?? '' },
        },
        this.now(),
      );
      try {
        // The watermark also goes into the table's properties, in the same commit: snapshot expiry
        // may remove every snapshot that carries it (another engine's commits keep the newest ones).
        await this.catalog.commitTable(ident, produced.requirements, [...produced.updates, { action: 'set-properties', updates: { [WATERMARK]: upTo.toString() } }]);
        return { snapshots: 1, files: data.length + deletes.length };
      } catch (e) {
        const retry = isLakeError(e, 'COMMIT_CONFLICT') || isLakeError(e, 'COMMIT_STATE_UNKNOWN');
        if (!retry || attempt >= max) throw e;
        // Files of this attempt stay where they are: after an unknown outcome
        // they may be referenced. Orphan removal deletes them if they are not.
      }
    }
  }

  private async commitChanges(table: TableSchema, entries: readonly LogEntry[], upTo: bigint, head: HeadMark): Promise<{ snapshots: number; files: number }> {
    const name = changeTableName(table.name);
    return this.commitLoop(name, upTo, head, entries, async (loaded, todo) => {
      const schema = currentSchema(loaded.metadata);
      const spec = defaultSpec(loaded.metadata);
      const columns = parquetColumns(schema);
      refuseUnknownColumns(name, columns, todo);
      const byName = new Map(columns.map((c) => [c.name, c]));
      const groups = groupByPartition(spec, schema, todo, (e, name) => changeValue(e, byName.get(name), name));
      const data: DataFile[] = [];
      for (const [partition, group] of groups) {
        const values = columns.map((c) => changeColumn(c, group));
        data.push(await this.writeDataFile(loaded, spec, partition, columns, values, `${group[0]?.seq}-${group.at(-1)?.seq}`));
      }
      await this.opts.fault?.('changes-files-written', name);
      return { data, deletes: [] };
    }).then(async (r) => {
      await this.opts.fault?.('changes-committed', name);
      return r;
    });
  }

  private async commitState(
    table: TableSchema,
    entries: readonly LogEntry[],
    upTo: bigint,
    source: FlushSource,
    head: HeadMark,
  ): Promise<{ snapshots: number; files: number }> {
    const name = table.name;
    return this.commitLoop(name, upTo, head, entries, async (loaded, todo) => {
      const lastSeq = new Map<string, bigint>();
      for (const e of todo) lastSeq.set(e.delta.rowId, e.seq);
      // Sorted so state files have tight _row_id bounds (UTF-16 order: only pruning depends on it, not correctness).
      const ids = [...lastSeq.keys()].sort();
      // The buffer's merged state is authoritative (it has tombstones the lake
      // does not keep). It may include deltas past this chunk; merge is
      // idempotent, so a later flush of those deltas writes the same row again.
      const rows = await source.loadRows(ids.map((rowId) => ({ table: table.name, rowId })));
      const located = await locateRows(this.store, loaded.metadata, ids);

      const schema = currentSchema(loaded.metadata);
      const spec = defaultSpec(loaded.metadata);
      const columns = parquetColumns(schema);
      const live: StateRow[] = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as string;
        const state = rows[i]?.state;
        if (state !== undefined && isLive(state)) live.push({ id, state, seq: lastSeq.get(id) as bigint });
      }
      const byName = new Map(columns.map((c) => [c.name, c]));
      const groups = groupByPartition(spec, schema, live, (r, name) => stateValue(r, byName.get(name), name));
      const data: DataFile[] = [];
      for (const [partition, group] of groups) {
        const values = stateColumns(columns, group);
        const file = await this.writeDataFile(loaded, spec, partition, columns, values, 'state');
        rememberRowIds(file.filePath, group.map((r) => r.id));
        data.push(file);
      }
      const deletes: DataFile[] = [];
      const byPartition = new Map<string, RowLocation[]>();
      for (const id of ids) {
        for (const loc of located.get(id) ?? []) {
          const key = partitionKey(loc.partition);
          let list = byPartition.get(key);
          if (list === undefined) byPartition.set(key, (list = []));
          list.push(loc);
        }
      }
      for (const positions of byPartition.values()) deletes.push(await this.writePositionDeletes(loaded, positions));
      await this.opts.fault?.('state-files-written', name);
      return { data, deletes };
    }).then(async (r) => {
      await this.opts.fault?.('state-committed', name);
      return r;
    });
  }

  private async writeDataFile(
    table: LoadedTable,
    spec: PartitionSpec,
    partition: readonly PartitionValue[],
    columns: readonly ParquetColumn[],
    values: readonly unknown[][],
    tag: string,
  ): Promise<DataFile> {
    return writeTableFile(this.store, table, spec, { content: FileContent.Data, partition, tag, columns, values }, {
      ...(this.opts.rowGroupBytes === undefined ? {} : { rowGroupBytes: this.opts.rowGroupBytes }),
      ...(this.opts.parquetDataPageV2 === true ? { dataPageV2: true } : {}),
      ...(this.opts.parquetPieceRows === undefined ? {} : { minPieceRows: this.opts.parquetPieceRows }),
    });
  }

  /**
   * A position delete file for the rows of one partition, sorted by
   * (file_path, pos) as the spec requires, in the partition of the data
   * files it points at.
   */
  private async writePositionDeletes(table: LoadedTable, positions: RowLocation[]): Promise<DataFile> {
    positions.sort((a, b) => compareUtf8(a.file, b.file) || a.pos - b.pos);
    const columns: ParquetColumn[] = [
      { id: POS_DELETE_FILE_PATH_ID, name: 'file_path', type: 'string', required: true },
      { id: POS_DELETE_POS_ID, name: 'pos', type: 'long', required: true },
    ];
    // Unpartitioned spec for the path: delete files sit beside the data root, in the data files' partition.
    return writeTableFile(this.store, table, { 'spec-id': 0, fields: [] }, {
      content: FileContent.PositionDeletes,
      partition: positions[0]?.partition ?? [],
      tag: 'deletes',
      columns,
      values: [positions.map((p) => p.file), positions.map((p) => BigInt(p.pos))],
    });
  }
}

/**
 * The watermark of the newest snapshot that has one (foreign commits, e.g. an
 * external compaction, carry none); when expiry removed all of those, the one
 * our last flush commit put in the table's properties.
 */
export async function watermark(metadata: TableMetadata): Promise<bigint> {
  let s = currentSnapshot(metadata);
  while (s !== undefined) {
    const w = s.summary[WATERMARK];
    if (w !== undefined) return BigInt(w);
    s = s['parent-snapshot-id'] === undefined ? undefined : snapshotById(metadata, s['parent-snapshot-id']);
  }
  const p = metadata.properties[WATERMARK];
  return Promise.resolve(p !== undefined && /^[0-9]+$/.test(p) ? BigInt(p) : 0n);
}

function hlcMicros(hlc: bigint): number {
  return hlcWall(hlc) * 1000;
}

/** The newest stamp in a row: the state table's `_hlc`. */
export function newestHlc(row: RowState): bigint {
  let h = row.inserted?.hlc ?? 0n;
  if (row.deleted !== null && row.deleted.hlc > h) h = row.deleted.hlc;
  for (const name in row.columns) {
    const s = (row.columns[name] as ColumnState).stamp.hlc;
    if (s > h) h = s;
  }
  return h;
}

/**
 * A delta with a column the lake table does not have means this flusher's
 * schema is older than the gateway's: stop rather than drop the values.
 */
function refuseUnknownColumns(table: string, columns: readonly ParquetColumn[], entries: readonly LogEntry[]): void {
  const known = new Set(columns.map((c) => c.name));
  let last: object | null = null;
  for (const e of entries) {
    const cols = e.delta.columns;
    if (cols === last) continue;
    last = cols;
    for (const name in cols) {
      if (!known.has(name)) {
        throw new LakeError('CORRUPT_METADATA', `${table} has no column "${name}": this flusher's schema is older than the deltas; upgrade it`);
      }
    }
  }
}

/** One change-table column for a group of log entries (column by column: no per-cell closures). */
function changeColumn(c: ParquetColumn, group: readonly LogEntry[]): unknown[] {
  const n = group.length;
  const out = new Array<unknown>(n);
  switch (c.name) {
    case '_seq':
      for (let i = 0; i < n; i++) out[i] = (group[i] as LogEntry).seq;
      break;
    case '_delta_id':
      for (let i = 0; i < n; i++) out[i] = (group[i] as LogEntry).delta.deltaId;
      break;
    case '_op':
      for (let i = 0; i < n; i++) out[i] = (group[i] as LogEntry).delta.op;
      break;
    case '_row_id':
      for (let i = 0; i < n; i++) out[i] = (group[i] as LogEntry).delta.rowId;
      break;
    case '_client_id':
      for (let i = 0; i < n; i++) out[i] = (group[i] as LogEntry).delta.clientId;
      break;
    case '_hlc':
      for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, (group[i] as LogEntry).delta.hlc);
      break;
    case '_hlc_time':
      for (let i = 0; i < n; i++) out[i] = hlcMicros((group[i] as LogEntry).delta.hlc);
      break;
    case '_set_columns': {
      // Deltas mostly set the same columns: one array for a run of them (buildList encodes a repeat once).
      let keys: string[] = [];
      let last: object | null = null;
      for (let i = 0; i < n; i++) {
        const cols = (group[i] as LogEntry).delta.columns;
        if (cols !== last) {
          if (last === null || !sameKeys(cols, keys)) keys = Object.keys(cols);
          last = cols;
        }
        out[i] = keys;
      }
      break;
    }
    default:
      for (let i = 0; i < n; i++) {
        const v = (group[i] as LogEntry).delta.columns[c.name];
        out[i] = v === undefined ? null : lakeValue(v, c);
      }
  }
  return out;
}

/** Whether a record's keys are `keys`, in order. */
function sameKeys(record: object, keys: readonly string[]): boolean {
  let i = 0;
  for (const k in record) if (k !== keys[i++]) return false;
  return i === keys.length;
}

interface StateRow {
  readonly id: string;
  readonly state: RowState;
  readonly seq: bigint;
}

/** Every state-table column for a group of live rows. */
function stateColumns(columns: readonly ParquetColumn[], group: readonly StateRow[]): unknown[][] {
  const n = group.length;
  const hlcs = group.map((r) => newestHlc(r.state));
  return columns.map((c) => {
    const out = new Array<unknown>(n);
    switch (c.name) {
      case '_row_id':
        for (let i = 0; i < n; i++) out[i] = (group[i] as StateRow).id;
        break;
      case '_seq':
        for (let i = 0; i < n; i++) out[i] = (group[i] as StateRow).seq;
        break;
      case '_hlc':
        for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, hlcs[i] as bigint);
        break;
      case '_hlc_time':
        for (let i = 0; i < n; i++) out[i] = hlcMicros(hlcs[i] as bigint);
        break;
      case '_state': {
        const encoded = encodeRows(group.map((r) => r.state));
        for (let i = 0; i < n; i++) out[i] = encoded[i];
        break;
      }
      default:
        // The row's visible values (rows here are live; merge already dropped columns older than a delete).
        for (let i = 0; i < n; i++) {
          const col = (group[i] as StateRow).state.columns[c.name];
          out[i] = col === undefined ? null : lakeValue(col.value, c);
        }
    }
    return out;
  });
}

/** A column value as the lake type of its column. */
function lakeValue(v: ColumnValue, c: ParquetColumn): LakeValue {
  if (v === null) return null;
  if (isJsonText(v)) return v.json;
  if (c.type === 'long') return typeof v === 'bigint' ? v : BigInt(v as number);
  if (c.type === 'double') return Number(v);
  return v;
}

function groupByPartition<T>(
  spec: PartitionSpec,
  schema: IcebergSchema,
  items: readonly T[],
  valueOf: (item: T, column: string) => LakeValue,
): Map<PartitionValue[], T[]> {
  if (spec.fields.length === 0) return new Map([[[], [...items]]]);
  const sources = spec.fields.map((pf) => {
    const field = schema.fields.find((f) => f.id === pf['source-id']);
    if (field === undefined) throw new LakeError('CORRUPT_METADATA', `partition source ${pf['source-id']} missing`);
    if (typeof field.type !== 'string') throw new LakeError('CORRUPT_METADATA', `cannot partition by ${field.name}: not a primitive column`);
    return { pf, name: field.name, type: field.type };
  });
  const byKey = new Map<string, { partition: PartitionValue[]; items: T[] }>();
  for (const item of items) {
    const partition = sources.map((s) => applyTransform(s.pf.transform, s.type, valueOf(item, s.name)));
    const key = partitionKey(partition);
    let g = byKey.get(key);
    if (g === undefined) byKey.set(key, (g = { partition, items: [] }));
    g.items.push(item);
  }
  return new Map([...byKey.values()].map((g) => [g.partition, g.items]));
}

/** A change-table column's value for one entry (any column may be a partition source). */
function changeValue(e: LogEntry, column: ParquetColumn | undefined, name: string): LakeValue {
  switch (name) {
    case '_seq':
      return e.seq;
    case '_delta_id':
      return e.delta.deltaId;
    case '_op':
      return e.delta.op;
    case '_row_id':
      return e.delta.rowId;
    case '_client_id':
      return e.delta.clientId;
    case '_hlc':
      return BigInt.asIntN(64, e.delta.hlc);
    case '_hlc_time':
      return hlcMicros(e.delta.hlc);
  }
  // A user column the delta did not set partitions as null.
  const v = e.delta.columns[name];
  return v === undefined || column === undefined ? null : lakeValue(v, column);
}

/** A state-table column's value for one live row. */
function stateValue(r: StateRow, column: ParquetColumn | undefined, name: string): LakeValue {
  switch (name) {
    case '_row_id':
      return r.id;
    case '_seq':
      return r.seq;
    case '_hlc':
      return BigInt.asIntN(64, newestHlc(r.state));
    case '_hlc_time':
      return hlcMicros(newestHlc(r.state));
  }
  const col = r.state.columns[name];
  return col === undefined || column === undefined ? null : lakeValue(col.value, column);
}
