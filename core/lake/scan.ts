import { LakeError } from './errors.ts';
import type { Lake } from './flush.ts';
import { currentSchema, currentSnapshot, snapshotById } from './iceberg/metadata.ts';
import { liveFiles } from './iceberg/snapshot.ts';
import type { IcebergSchema, Snapshot } from './iceberg/types.ts';
import { parquetColumns } from './layout.ts';
import { columnValues, readParquetTable } from './parquet.ts';
import { deletedPositions } from './state-index.ts';

/**
 * A small merge-on-read scan of one table (position deletes applied), one
 * data file at a time. For inspection and tests of our own; the proof that
 * the lake is standard comes from pyiceberg, pyarrow and DuckDB.
 */
export interface ScanOptions {
  readonly snapshotId?: bigint;
  readonly limit?: number;
  readonly columns?: readonly string[];
}

export interface ScanResult {
  readonly snapshot: Snapshot | undefined;
  readonly schema: IcebergSchema;
  readonly rows: Record<string, unknown>[];
}

export async function scanTable(lake: Lake, name: string, options: ScanOptions = {}): Promise<ScanResult> {
  const table = await lake.catalog.loadTable(lake.ident(name));
  if (table === null) throw new LakeError('NOT_FOUND', `no table ${name}`);
  const m = table.metadata;
  const snapshot = options.snapshotId === undefined ? currentSnapshot(m) : snapshotById(m, options.snapshotId);
  if (options.snapshotId !== undefined && snapshot === undefined) throw new LakeError('NOT_FOUND', `no snapshot ${options.snapshotId}`);
  // The current snapshot reads with the table's current schema (a rename since that snapshot
  // shows the new name); time travel to an older snapshot with the schema it was written with.
  const schemaId = options.snapshotId === undefined ? m['current-schema-id'] : (snapshot?.['schema-id'] ?? m['current-schema-id']);
  const schema = m.schemas.find((s) => s['schema-id'] === schemaId) ?? currentSchema(m);
  const rows: Record<string, unknown>[] = [];
  if (snapshot === undefined) return { snapshot, schema, rows };
  const columns = parquetColumns(schema).filter((c) => options.columns === undefined || options.columns.includes(c.name));
  const live = await liveFiles(lake.store, m, snapshot['snapshot-id']);
  const deleted = await deletedPositions(lake.store, live);
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  for (const e of live.data) {
    if (rows.length >= limit) break;
    const t = readParquetTable(await lake.store.get(e.dataFile.filePath));
    const values = columns.map((c) => columnValues(t, c));
    const gone = deleted.get(e.dataFile.filePath);
    for (let i = 0; i < t.numRows && rows.length < limit; i++) {
      if (gone?.has(i) === true) continue;
      const row: Record<string, unknown> = {};
      columns.forEach((c, k) => (row[c.name] = (values[k] as unknown[])[i]));
      rows.push(row);
    }
  }
  return { snapshot, schema, rows };
}
