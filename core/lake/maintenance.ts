import { isLakeError, LakeError } from './errors.ts';
import { WATERMARK, watermark, type Lake } from './flush.ts';
import { currentSchema, currentSnapshot, defaultSpec, statisticsFiles } from './iceberg/metadata.ts';
import { liveFiles, loadManifestEntries, loadManifestList, produceSnapshot, type LiveFiles } from './iceberg/snapshot.ts';
import { EntryStatus, FileContent, type DataFile, type ManifestEntry, type TableMetadata } from './iceberg/types.ts';
import { partitionKey } from './iceberg/values.ts';
import { parquetColumns } from './layout.ts';
import { writeTableFile } from './data-files.ts';
import { columnValues, readParquetTable } from './parquet.ts';
import type { LoadedTable, ObjectStore } from './ports.ts';
import { deletedPositions, rememberRowIds } from './state-index.ts';

/**
 * Table maintenance: compaction (merge-on-read files rewritten into clean
 * base files), snapshot expiry, and orphan removal. Every step is one
 * ordinary Iceberg commit guarded by assert-ref-snapshot-id, so readers see
 * the table before or after it, never half of it, and a flush that commits
 * in between makes the maintenance step retry instead of losing data.
 */

export interface CompactOptions {
  /** Target size of the rewritten files (compressed bytes, estimated). */
  readonly targetFileBytes?: number;
  /** Files at least this large with no deletes against them are left alone. */
  readonly minFileBytes?: number;
  readonly maxAttempts?: number;
}

export interface CompactReport {
  readonly table: string;
  readonly rewrittenDataFiles: number;
  readonly removedDeleteFiles: number;
  readonly addedDataFiles: number;
  readonly rows: number;
}

const DEFAULT_TARGET = 128 * 1024 * 1024;

/** A compaction's rewritten files, kept across commit attempts. */
interface Rewritten {
  /** Data files rewritten, and delete files made unnecessary: removed by the commit. */
  readonly removed: ReadonlySet<string>;
  readonly rewrittenData: ReadonlySet<string>;
  /** Delete files live when the rewrite read the table. */
  readonly knownDeletes: ReadonlySet<string>;
  readonly added: DataFile[];
  readonly removedDeleteFiles: number;
}

export async function compactTable(lake: Lake, name: string, options: CompactOptions = {}): Promise<CompactReport> {
  const target = options.targetFileBytes ?? DEFAULT_TARGET;
  const minBytes = options.minFileBytes ?? Math.floor(target * 0.75);
  const ident = lake.ident(name);
  let done: Rewritten | null = null;
  for (let attempt = 1; ; attempt++) {
    const table = await lake.catalog.loadTable(ident);
    if (table === null) throw new LakeError('NOT_FOUND', `no table ${name}`);
    const live = await liveFiles(lake.store, table.metadata);
    // After a lost commit race: the files already written still do, unless the
    // winner removed one of ours or deleted rows in one (a flush's appends, and
    // its deletes against other files, do not matter). A rewrite takes long;
    // without this, a table flushed more often than that could never be compacted.
    if (done === null || !(await stillApplies(lake.store, done, live))) {
      const deletesByFile = await deletedPositions(lake.store, live);
      const rewrite = filesWorthRewriting(live.data, deletesByFile, minBytes);
      if (rewrite.length === 0 && live.deletes.length === 0) return { table: name, rewrittenDataFiles: 0, removedDeleteFiles: 0, addedDataFiles: 0, rows: 0 };
      done = {
        added: await rewriteFiles(lake.store, table, rewrite, deletesByFile, target),
        removed: new Set([...rewrite.map((e) => e.dataFile.filePath), ...live.deletes.map((e) => e.dataFile.filePath)]),
        rewrittenData: new Set(rewrite.map((e) => e.dataFile.filePath)),
        knownDeletes: new Set(live.deletes.map((e) => e.dataFile.filePath)),
        removedDeleteFiles: live.deletes.length,
      };
    }
    // Orphan removal deletes unreferenced files older than its cut-off, and ours
    // are unreferenced until this commit: after a rewrite that took long, or
    // files kept from a lost race, look that they are all still there.
    if (!(await allStored(lake.store, done.added))) {
      done = null;
      if (attempt >= (options.maxAttempts ?? 5)) throw new LakeError('COMMIT_CONFLICT', `compaction of ${name}: its files were removed before it could commit`);
      continue;
    }
    const wm = await watermark(table.metadata);
    const produced = await produceSnapshot(
      lake.store,
      table,
      { operation: 'replace', addedDataFiles: done.added, removedFiles: done.removed, summary: { [WATERMARK]: wm.toString(), 'lakesync.compaction': 'true' } },
      Date.now(),
    );
    try {
      await lake.catalog.commitTable(ident, produced.requirements, produced.updates);
      return {
        table: name,
        rewrittenDataFiles: done.rewrittenData.size,
        removedDeleteFiles: done.removedDeleteFiles,
        addedDataFiles: done.added.length,
        rows: Number(done.added.reduce((n, f) => n + f.recordCount, 0n)),
      };
    } catch (e) {
      const retry = isLakeError(e, 'COMMIT_CONFLICT') || isLakeError(e, 'COMMIT_STATE_UNKNOWN');
      if (!retry || attempt >= (options.maxAttempts ?? 5)) throw e;
    }
  }
}

async function allStored(store: ObjectStore, files: readonly DataFile[]): Promise<boolean> {
  for (const f of files) if ((await store.head(f.filePath)) === null) return false;
  return true;
}

/**
 * Whether a rewrite made against an older snapshot can be committed on top of
 * `live` as it is: every file it removes is still live, and no delete file
 * added since points into a file it rewrote (those rows would come back).
 */
async function stillApplies(store: ObjectStore, done: Rewritten, live: LiveFiles): Promise<boolean> {
  const paths = new Set([...live.data, ...live.deletes].map((e) => e.dataFile.filePath));
  for (const f of done.removed) if (!paths.has(f)) return false;
  const newDeletes = live.deletes.filter((e) => !done.knownDeletes.has(e.dataFile.filePath));
  if (newDeletes.length === 0) return true;
  const hit = await deletedPositions(store, { data: live.data, deletes: newDeletes });
  for (const f of hit.keys()) if (done.rewrittenData.has(f)) return false;
  return true;
}

/**
 * The data files to rewrite, decided per partition (files are written per
 * partition): a partition's files with deletes against them, and its small
 * ones, but a single small file alone only if deletes point at it. Decided for
 * the whole table, a day-partitioned table would have every day's one file
 * rewritten on every run. Every file a delete file points at is rewritten, so
 * all delete files can go.
 */
function filesWorthRewriting(data: readonly ManifestEntry[], deletes: ReadonlyMap<string, ReadonlySet<number>>, minBytes: number): ManifestEntry[] {
  const byPartition = new Map<string, ManifestEntry[]>();
  for (const e of data) {
    if (!deletes.has(e.dataFile.filePath) && e.dataFile.fileSizeInBytes >= BigInt(minBytes)) continue;
    const key = partitionKey(e.dataFile.partition); // as rewriteFiles groups them
    let list = byPartition.get(key);
    if (list === undefined) byPartition.set(key, (list = []));
    list.push(e);
  }
  return [...byPartition.values()].filter((files) => files.length > 1 || files.some((e) => deletes.has(e.dataFile.filePath))).flat();
}

/** Read the files one at a time, drop deleted rows, and write files of about the target size per partition. */
async function rewriteFiles(
  store: ObjectStore,
  table: LoadedTable,
  files: readonly ManifestEntry[],
  deleted: ReadonlyMap<string, ReadonlySet<number>>,
  targetBytes: number,
): Promise<DataFile[]> {
  const schema = currentSchema(table.metadata);
  const spec = defaultSpec(table.metadata);
  const columns = parquetColumns(schema);
  const rowIdIndex = columns.findIndex((c) => c.name === '_row_id');
  const isState = table.metadata.properties['lakesync.table'] === table.ident.name;
  const totalBytes = files.reduce((n, e) => n + Number(e.dataFile.fileSizeInBytes), 0);
  const totalRows = files.reduce((n, e) => n + Number(e.dataFile.recordCount), 0);
  const rowsPerFile = Math.max(1, Math.floor(targetBytes / Math.max(1, totalBytes / Math.max(1, totalRows))));

  const byPartition = new Map<string, ManifestEntry[]>();
  for (const e of files) {
    const key = partitionKey(e.dataFile.partition);
    let list = byPartition.get(key);
    if (list === undefined) byPartition.set(key, (list = []));
    list.push(e);
  }
  const out: DataFile[] = [];
  for (const group of byPartition.values()) {
    const partition = group[0]?.dataFile.partition ?? [];
    let pending: unknown[][] = columns.map(() => []);
    let pendingRows = 0;
    const flushPending = async (): Promise<void> => {
      if (pendingRows === 0) return;
      const file = await writeTableFile(store, table, spec, { content: FileContent.Data, partition, tag: 'compacted', columns, values: pending });
      if (isState && rowIdIndex >= 0) rememberRowIds(file.filePath, pending[rowIdIndex] as string[]);
      out.push(file);
      pending = columns.map(() => []);
      pendingRows = 0;
    };
    for (const e of group) {
      const read = readParquetTable(await store.get(e.dataFile.filePath));
      const gone = deleted.get(e.dataFile.filePath);
      const values = columns.map((c) => columnValues(read, c));
      for (let row = 0; row < read.numRows; row++) {
        if (gone?.has(row) === true) continue;
        columns.forEach((_, i) => (pending[i] as unknown[]).push((values[i] as unknown[])[row]));
        if (++pendingRows >= rowsPerFile) await flushPending();
      }
    }
    await flushPending();
  }
  return out;
}

// ---------- snapshot expiry ----------

export interface ExpireOptions {
  /** Snapshots older than this (ms since epoch) may go. */
  readonly olderThanMs: number;
  /** Always keep at least this many of the newest snapshots (default 1). */
  readonly retainLast?: number;
}

export interface ExpireReport {
  readonly table: string;
  readonly expiredSnapshots: number;
  readonly deletedFiles: number;
}

/** Files (manifest lists, manifests, data and delete files) reachable from some snapshots. */
async function reachableFiles(
  store: ObjectStore,
  metadata: TableMetadata,
  snapshotIds: Iterable<bigint>,
  includeDeletedEntries = true,
): Promise<Set<string>> {
  const out = new Set<string>();
  const seenManifests = new Set<string>();
  for (const id of snapshotIds) {
    const snap = metadata.snapshots.find((s) => s['snapshot-id'] === id);
    if (snap === undefined) continue;
    out.add(snap['manifest-list']);
    for (const m of await loadManifestList(store, snap)) {
      out.add(m.manifestPath);
      if (seenManifests.has(m.manifestPath)) continue;
      seenManifests.add(m.manifestPath);
      for (const e of await loadManifestEntries(store, metadata, m)) {
        // An entry marked deleted names a file only older snapshots still read.
        if (e.status === EntryStatus.Deleted && !includeDeletedEntries) continue;
        out.add(e.dataFile.filePath);
      }
    }
  }
  return out;
}

/**
 * Remove old snapshots from the metadata, then delete the files only they
 * reached. Snapshots a tag or branch points at are kept.
 */
export async function expireSnapshots(lake: Lake, name: string, options: ExpireOptions): Promise<ExpireReport> {
  const ident = lake.ident(name);
  for (let attempt = 1; ; attempt++) {
    const table = await lake.catalog.loadTable(ident);
    if (table === null) throw new LakeError('NOT_FOUND', `no table ${name}`);
    const m = table.metadata;
    const keep = new Set<bigint>();
    const byAge = [...m.snapshots].sort((a, b) => b['timestamp-ms'] - a['timestamp-ms']);
    byAge.slice(0, Math.max(1, options.retainLast ?? 1)).forEach((s) => keep.add(s['snapshot-id']));
    for (const ref of Object.values(m.refs)) keep.add(ref['snapshot-id']);
    for (const s of m.snapshots) if (s['timestamp-ms'] >= options.olderThanMs) keep.add(s['snapshot-id']);
    const expire = m.snapshots.filter((s) => !keep.has(s['snapshot-id'])).map((s) => s['snapshot-id']);
    if (expire.length === 0) return { table: name, expiredSnapshots: 0, deletedFiles: 0 };

    const before = await reachableFiles(lake.store, m, expire);
    const after = await reachableFiles(lake.store, m, keep, false);
    const current = currentSnapshot(m);
    try {
      await lake.catalog.commitTable(
        ident,
        [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': current?.['snapshot-id'] ?? null }],
        [{ action: 'remove-snapshots', 'snapshot-ids': expire }],
      );
    } catch (e) {
      const retry = isLakeError(e, 'COMMIT_CONFLICT');
      if (!retry || attempt >= 5) throw e;
      continue;
    }
    // Only after the commit is durable: delete what nothing kept still reaches
    // (statistics files of expired snapshots left the metadata with them).
    const expired = new Set(expire.map(String));
    const keptStats = new Set(statisticsFiles(m).filter((f) => !expired.has(f.snapshotId)).map((f) => f.path));
    for (const f of statisticsFiles(m)) if (expired.has(f.snapshotId) && !keptStats.has(f.path)) before.add(f.path);
    const gone = [...before].filter((f) => !after.has(f));
    await lake.store.delete(gone);
    return { table: name, expiredSnapshots: expire.length, deletedFiles: gone.length };
  }
}

// ---------- orphan removal ----------

export interface OrphanOptions {
  /** Only files older than this (ms since epoch) are candidates: younger ones may belong to a commit in flight. */
  readonly olderThanMs: number;
  readonly dryRun?: boolean;
}

export interface OrphanReport {
  readonly table: string;
  readonly orphans: string[];
}

/**
 * Files the table metadata itself names: the current and earlier metadata
 * files, and statistics files (Puffin, written by other engines: Trino's
 * ANALYZE, Spark, pyiceberg) of table and partition statistics.
 */
function metadataFiles(table: LoadedTable): string[] {
  const m = table.metadata;
  return [table.metadataLocation, ...m['metadata-log'].map((e) => e['metadata-file']), ...statisticsFiles(m).map((f) => f.path)];
}

/** Every file the table references, by fileKey. */
async function referencedFiles(store: ObjectStore, table: LoadedTable): Promise<Set<string>> {
  const m = table.metadata;
  const out = new Set<string>();
  for (const f of [...(await reachableFiles(store, m, m.snapshots.map((s) => s['snapshot-id']))), ...metadataFiles(table)]) {
    out.add(fileKey(f));
    // Java and pyarrow open a path as written, percent signs and all: a file
    // they wrote is named that way on disk (Java URL-encodes partition values).
    out.add(fileKey(f, false));
  }
  return out;
}

/**
 * One spelling for each file. Metadata and manifests hold the URIs their
 * writer used, which need not be the listing's: Java's HadoopFileIO (the
 * Iceberg REST fixture, Spark) writes file:/p where the store lists file:///p,
 * Spark on S3 writes s3a://. Compared as written, every such file looked like
 * an orphan (the current metadata file included).
 */
export function fileKey(uri: string, decode = true): string {
  const file = /^file:(?:\/\/[^/]*)?(\/.*)$/.exec(uri);
  if (file !== null) {
    let path = file[1] as string;
    try {
      if (decode) path = decodeURIComponent(path);
    } catch {
      // not percent-encoded after all: keep it as written
    }
    return `file://${path}`;
  }
  return uri.replace(/^s3[an]:\/\//, 's3://');
}

/**
 * Delete files under the table's location that no snapshot, manifest or
 * metadata file references: leftovers of flushes that died or lost a commit
 * race. Files younger than the cut-off are left alone, because a flush in
 * progress writes its files before it commits them.
 */
export async function removeOrphans(lake: Lake, name: string, options: OrphanOptions): Promise<OrphanReport> {
  const table = await lake.catalog.loadTable(lake.ident(name));
  if (table === null) throw new LakeError('NOT_FOUND', `no table ${name}`);
  const referenced = await referencedFiles(lake.store, table);
  const orphans: string[] = [];
  for await (const o of lake.store.list(`${table.metadata.location}/`)) {
    if (referenced.has(fileKey(o.uri)) || o.lastModified >= options.olderThanMs) continue;
    orphans.push(o.uri);
  }
  // Re-check against the table as it is now: a commit may have landed while we listed.
  const now = await lake.catalog.loadTable(lake.ident(name));
  if (now !== null && now.metadataLocation !== table.metadataLocation) {
    const again = await referencedFiles(lake.store, now);
    const still = orphans.filter((o) => !again.has(fileKey(o)));
    orphans.length = 0;
    orphans.push(...still);
  }
  if (options.dryRun !== true) await lake.store.delete(orphans);
  return { table: name, orphans };
}
