import type { LoadedTable, ObjectStore } from '../ports.ts';
import { currentSchema, currentSnapshot, defaultSpec, snapshotById, type TableRequirement, type TableUpdate } from './metadata.ts';
import { readManifest, readManifestList, writeManifest, writeManifestList } from './manifest.ts';
import { compareUtf8, primitive, serializeSingleValue, transformResultType } from './values.ts';
import {
  EntryStatus,
  FileContent,
  type DataFile,
  type FieldSummary,
  type ManifestEntry,
  type ManifestFile,
  type PartitionSpec,
  type PartitionValue,
  type Snapshot,
  type SnapshotOperation,
  type TableMetadata,
} from './types.ts';

/**
 * Snapshot production for Iceberg v2: new manifests for added data and
 * delete files, rewritten manifests where files are removed, a manifest list,
 * and the table updates + requirements that commit it. Nothing here talks to
 * a catalog; the caller commits and, on a conflict, produces again from the
 * reloaded table (the files written for the lost attempt become orphans).
 */

export interface SnapshotChange {
  readonly operation: SnapshotOperation;
  readonly addedDataFiles?: readonly DataFile[];
  readonly addedDeleteFiles?: readonly DataFile[];
  /** Paths of live data or delete files this snapshot removes. */
  readonly removedFiles?: ReadonlySet<string>;
  /** Extra summary properties (LakeSync keeps its flush watermark here). */
  readonly summary?: Readonly<Record<string, string>>;
}

export interface ProducedSnapshot {
  readonly snapshot: Snapshot;
  readonly requirements: TableRequirement[];
  readonly updates: TableUpdate[];
  /** Every object this attempt wrote (manifests, manifest list). */
  readonly written: string[];
}

/** A random positive 63-bit id, as Java and pyiceberg make them. */
export function newSnapshotId(): bigint {
  const b = crypto.getRandomValues(new Uint8Array(8));
  const v = new DataView(b.buffer).getBigUint64(0);
  return (v & 0x7fff_ffff_ffff_ffffn) || 1n;
}

export async function loadManifestList(store: ObjectStore, snapshot: Snapshot | undefined): Promise<ManifestFile[]> {
  if (snapshot === undefined) return [];
  return readManifestList(await store.get(snapshot['manifest-list']));
}

export async function loadManifestEntries(
  store: ObjectStore,
  metadata: TableMetadata,
  manifest: ManifestFile,
): Promise<ManifestEntry[]> {
  const spec = metadata['partition-specs'].find((s) => s['spec-id'] === manifest.partitionSpecId) ?? defaultSpec(metadata);
  return readManifest(await store.get(manifest.manifestPath), manifest, spec);
}

export interface LiveFiles {
  readonly data: ManifestEntry[];
  readonly deletes: ManifestEntry[];
}

/** Live (added or existing) data and delete files of a snapshot (default: the current one). */
export async function liveFiles(store: ObjectStore, metadata: TableMetadata, snapshotId?: bigint): Promise<LiveFiles> {
  const snapshot = snapshotId === undefined ? currentSnapshot(metadata) : snapshotById(metadata, snapshotId);
  const out: LiveFiles = { data: [], deletes: [] };
  for (const m of await loadManifestList(store, snapshot)) {
    for (const e of await loadManifestEntries(store, metadata, m)) {
      if (e.status === EntryStatus.Deleted) continue;
      (e.dataFile.content === FileContent.Data ? out.data : out.deletes).push(e);
    }
  }
  return out;
}

function manifestPath(metadata: TableMetadata, n: number): string {
  return `${metadata.location}/metadata/${crypto.randomUUID()}-m${n}.avro`;
}

function partitionSummaries(spec: PartitionSpec, metadata: TableMetadata, files: readonly DataFile[]): FieldSummary[] {
  const schema = currentSchema(metadata);
  return spec.fields.map((pf, i) => {
    const source = schema.fields.find((f) => f.id === pf['source-id']);
    const type = source === undefined ? 'string' : transformResultType(pf.transform, primitive(source.type));
    let containsNull = false;
    let lo: PartitionValue = null;
    let hi: PartitionValue = null;
    for (const f of files) {
      const v = f.partition[i] ?? null;
      if (v === null) {
        containsNull = true;
        continue;
      }
      if (lo === null || before(v, lo)) lo = v;
      if (hi === null || before(hi, v)) hi = v;
    }
    const s: { -readonly [K in keyof FieldSummary]: FieldSummary[K] } = { containsNull };
    if (lo !== null) s.lowerBound = serializeSingleValue(type, lo);
    if (hi !== null) s.upperBound = serializeSingleValue(type, hi);
    return s;
  });
}

/** Iceberg's order of partition values: strings by UTF-8 bytes (JS < compares UTF-16 code units), -0.0 before 0.0. */
function before(a: PartitionValue, b: PartitionValue): boolean {
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b) < 0;
  if (a === 0 && b === 0) return 1 / a < 1 / b;
  return (a as number | bigint | boolean) < (b as number | bigint | boolean);
}

function sum(entries: readonly ManifestEntry[], status: EntryStatus): { files: number; rows: bigint } {
  let files = 0;
  let rows = 0n;
  for (const e of entries) {
    if (e.status !== status) continue;
    files++;
    rows += e.dataFile.recordCount;
  }
  return { files, rows };
}

/** Write a manifest of entries and describe it for the manifest list. */
async function writeManifestFile(
  store: ObjectStore,
  metadata: TableMetadata,
  spec: PartitionSpec,
  entries: readonly ManifestEntry[],
  content: 0 | 1,
  snapshotId: bigint,
  sequenceNumber: bigint,
  n: number,
): Promise<ManifestFile> {
  const bytes = writeManifest(entries, {
    schema: currentSchema(metadata),
    spec,
    content: content === 0 ? 'data' : 'deletes',
  });
  const path = manifestPath(metadata, n);
  await store.put(path, bytes);
  const added = sum(entries, EntryStatus.Added);
  const existing = sum(entries, EntryStatus.Existing);
  const deleted = sum(entries, EntryStatus.Deleted);
  const live = entries.filter((e) => e.status !== EntryStatus.Deleted);
  const minSeq = live.length === 0 ? sequenceNumber : live.reduce((m, e) => (e.sequenceNumber < m ? e.sequenceNumber : m), sequenceNumber);
  return {
    manifestPath: path,
    manifestLength: BigInt(bytes.length),
    partitionSpecId: spec['spec-id'],
    content,
    sequenceNumber,
    minSequenceNumber: minSeq,
    addedSnapshotId: snapshotId,
    addedFilesCount: added.files,
    existingFilesCount: existing.files,
    deletedFilesCount: deleted.files,
    addedRowsCount: added.rows,
    existingRowsCount: existing.rows,
    deletedRowsCount: deleted.rows,
    partitions: partitionSummaries(spec, metadata, entries.map((e) => e.dataFile)),
  };
}

/** Produce (write the manifests and manifest list of) the next snapshot of `table`. */
export async function produceSnapshot(store: ObjectStore, table: LoadedTable, change: SnapshotChange, nowMs: number): Promise<ProducedSnapshot> {
  const metadata = table.metadata;
  const parent = currentSnapshot(metadata);
  const snapshotId = newSnapshotId();
  const sequenceNumber = metadata['last-sequence-number'] + 1n;
  const spec = defaultSpec(metadata);
  const written: string[] = [];
  const removed = change.removedFiles ?? new Set<string>();
  let manifestNo = 0;

  const manifests: ManifestFile[] = [];
  const removedStats = { dataFiles: 0, deleteFiles: 0, records: 0n, posDeletes: 0n, dataSize: 0n, deleteSize: 0n };

  // New files first, one manifest per content type.
  const addedEntry = (f: DataFile): ManifestEntry => ({
    status: EntryStatus.Added,
    snapshotId,
    sequenceNumber,
    fileSequenceNumber: sequenceNumber,
    dataFile: f,
  });
  const addedData = change.addedDataFiles ?? [];
  const addedDeletes = change.addedDeleteFiles ?? [];
  if (addedData.length > 0) {
    const m = await writeManifestFile(store, metadata, spec, addedData.map(addedEntry), 0, snapshotId, sequenceNumber, manifestNo++);
    written.push(m.manifestPath);
    manifests.push(m);
  }
  if (addedDeletes.length > 0) {
    const m = await writeManifestFile(store, metadata, spec, addedDeletes.map(addedEntry), 1, snapshotId, sequenceNumber, manifestNo++);
    written.push(m.manifestPath);
    manifests.push(m);
  }

  // Carry over the parent's manifests; rewrite those that hold removed files.
  for (const m of await loadManifestList(store, parent)) {
    // A manifest with only deleted entries belongs to the snapshot that deleted
    // them (as in Java's writers); carried on, every compaction's would stay in
    // every later manifest list for good.
    if (m.deletedFilesCount > 0 && m.addedFilesCount === 0 && m.existingFilesCount === 0) continue;
    if (removed.size === 0) {
      manifests.push(m);
      continue;
    }
    const entries = await loadManifestEntries(store, metadata, m);
    if (!entries.some((e) => e.status !== EntryStatus.Deleted && removed.has(e.dataFile.filePath))) {
      manifests.push(m);
      continue;
    }
    const rewritten: ManifestEntry[] = [];
    for (const e of entries) {
      if (e.status === EntryStatus.Deleted) continue; // deletes of older snapshots are dropped on rewrite
      if (removed.has(e.dataFile.filePath)) {
        rewritten.push({ ...e, status: EntryStatus.Deleted, snapshotId });
        if (e.dataFile.content === FileContent.Data) {
          removedStats.dataFiles++;
          removedStats.records += e.dataFile.recordCount;
          removedStats.dataSize += e.dataFile.fileSizeInBytes;
        } else {
          removedStats.deleteFiles++;
          removedStats.posDeletes += e.dataFile.recordCount;
          removedStats.deleteSize += e.dataFile.fileSizeInBytes;
        }
      } else rewritten.push({ ...e, status: EntryStatus.Existing });
    }
    const mSpec = metadata['partition-specs'].find((s) => s['spec-id'] === m.partitionSpecId) ?? spec;
    const out = await writeManifestFile(store, metadata, mSpec, rewritten, m.content, snapshotId, sequenceNumber, manifestNo++);
    written.push(out.manifestPath);
    if (out.addedFilesCount + out.existingFilesCount + out.deletedFilesCount > 0) manifests.push(out);
  }

  // Totals from the manifest list itself, so they are right even when the parent had none.
  let totalDataFiles = 0;
  let totalDeleteFiles = 0;
  let totalRecords = 0n;
  let totalPosDeletes = 0n;
  for (const m of manifests) {
    if (m.content === 0) {
      totalDataFiles += m.addedFilesCount + m.existingFilesCount;
      totalRecords += m.addedRowsCount + m.existingRowsCount;
    } else {
      totalDeleteFiles += m.addedFilesCount + m.existingFilesCount;
      totalPosDeletes += m.addedRowsCount + m.existingRowsCount;
    }
  }
  const sizeOf = (fs: readonly DataFile[]): bigint => fs.reduce((n, f) => n + f.fileSizeInBytes, 0n);
  const parentSize = BigInt(parent?.summary['total-files-size'] ?? '0');
  const summary: Record<string, string> = {
    operation: change.operation,
    'added-data-files': String(addedData.length),
    'added-records': String(addedData.reduce((n, f) => n + f.recordCount, 0n)),
    'added-files-size': String(sizeOf(addedData) + sizeOf(addedDeletes)),
    'added-delete-files': String(addedDeletes.length),
    'added-position-delete-files': String(addedDeletes.length),
    'added-position-deletes': String(addedDeletes.reduce((n, f) => n + f.recordCount, 0n)),
    'deleted-data-files': String(removedStats.dataFiles),
    'deleted-records': String(removedStats.records),
    'removed-delete-files': String(removedStats.deleteFiles),
    'removed-position-deletes': String(removedStats.posDeletes),
    'removed-files-size': String(removedStats.dataSize + removedStats.deleteSize),
    'total-data-files': String(totalDataFiles),
    'total-delete-files': String(totalDeleteFiles),
    'total-records': String(totalRecords),
    'total-position-deletes': String(totalPosDeletes),
    'total-equality-deletes': '0',
    'total-files-size': String(parentSize + sizeOf(addedData) + sizeOf(addedDeletes) - removedStats.dataSize - removedStats.deleteSize),
    ...change.summary,
  };

  const listPath = `${metadata.location}/metadata/snap-${snapshotId}-1-${crypto.randomUUID()}.avro`;
  await store.put(
    listPath,
    writeManifestList(manifests, { snapshotId, parentSnapshotId: parent?.['snapshot-id'], sequenceNumber }),
  );
  written.push(listPath);

  const snapshot: Snapshot = {
    'snapshot-id': snapshotId,
    ...(parent === undefined ? {} : { 'parent-snapshot-id': parent['snapshot-id'] }),
    'sequence-number': sequenceNumber,
    // Never before the table's last change: catalogs refuse snapshots older than the metadata log.
    'timestamp-ms': Math.max(nowMs, metadata['last-updated-ms'], (parent?.['timestamp-ms'] ?? 0) + 1),
    'manifest-list': listPath,
    summary: summary as Snapshot['summary'],
    'schema-id': metadata['current-schema-id'],
  };
  return {
    snapshot,
    written,
    requirements: [
      { type: 'assert-table-uuid', uuid: metadata['table-uuid'] },
      { type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': parent?.['snapshot-id'] ?? null },
      // Files were written with this schema's columns: a schema added meanwhile (a rolling upgrade's
      // new column) must not get a snapshot without it. The conflict reloads and writes again.
      { type: 'assert-current-schema-id', 'current-schema-id': metadata['current-schema-id'] },
    ],
    updates: [
      { action: 'add-snapshot', snapshot },
      { action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': snapshotId },
    ],
  };
}
