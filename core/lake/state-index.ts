import type { ObjectStore } from './ports.ts';
import { readParquetTable } from './parquet.ts';
import { LakeError } from './errors.ts';
import { liveFiles, type LiveFiles } from './iceberg/snapshot.ts';
import { FileContent, type ManifestEntry, type PartitionValue, type TableMetadata } from './iceberg/types.ts';

/**
 * Where each live row of a current-state table sits: (data file, position),
 * with position deletes already applied. Flush needs it to write position
 * deletes for updated and deleted rows. Data and delete files never change
 * once written, so what is read from them is cached by path.
 */
export interface RowLocation {
  readonly file: string;
  readonly pos: number;
  /** The data file's partition (its position deletes must carry the same). */
  readonly partition: readonly PartitionValue[];
}

const MAX_CACHED_VALUES = 4_000_000;

class FileCache<T extends { length: number } | Map<string, Set<number>>> {
  private readonly map = new Map<string, T>();
  private size = 0;
  constructor(private readonly max: number) {}

  get(path: string): T | undefined {
    const v = this.map.get(path);
    if (v !== undefined) {
      this.map.delete(path);
      this.map.set(path, v); // most recently used last
    }
    return v;
  }

  set(path: string, v: T, weight: number): void {
    this.map.set(path, v);
    this.size += weight;
    for (const [k, old] of this.map) {
      if (this.size <= this.max || k === path) break;
      this.map.delete(k);
      this.size -= old instanceof Map ? old.size : old.length;
    }
  }
}

const rowIdCache = new FileCache<string[]>(MAX_CACHED_VALUES);
const deleteCache = new FileCache<Map<string, Set<number>>>(MAX_CACHED_VALUES);

/** Tell the cache what a file we just wrote holds, so the next flush need not read it back. */
export function rememberRowIds(path: string, ids: string[]): void {
  rowIdCache.set(path, ids, ids.length);
}

async function rowIdsOf(store: ObjectStore, entry: ManifestEntry): Promise<string[]> {
  const path = entry.dataFile.filePath;
  const cached = rowIdCache.get(path);
  if (cached !== undefined) return cached;
  const table = readParquetTable(await store.get(path), ['_row_id']);
  const ids = (table.getChild('_row_id')?.toArray() ?? []) as string[];
  const list = Array.from(ids);
  rowIdCache.set(path, list, list.length);
  return list;
}

async function positionsOf(store: ObjectStore, entry: ManifestEntry): Promise<Map<string, Set<number>>> {
  const path = entry.dataFile.filePath;
  const cached = deleteCache.get(path);
  if (cached !== undefined) return cached;
  const table = readParquetTable(await store.get(path), ['file_path', 'pos']);
  const files = table.getChild('file_path');
  const pos = table.getChild('pos');
  const out = new Map<string, Set<number>>();
  for (let i = 0; i < table.numRows; i++) {
    const f = files?.get(i) as string;
    let set = out.get(f);
    if (set === undefined) out.set(f, (set = new Set()));
    set.add(Number(pos?.get(i) as bigint));
  }
  deleteCache.set(path, out, table.numRows);
  return out;
}

/**
 * Deleted positions per data file of a snapshot's live files, honouring
 * sequence numbers: a position delete applies to data files whose data
 * sequence number is not newer than its own. Equality deletes are refused:
 * LakeSync never writes them.
 */
export async function deletedPositions(store: ObjectStore, live: LiveFiles): Promise<Map<string, Set<number>>> {
  const dataSeq = new Map(live.data.map((e) => [e.dataFile.filePath, e.sequenceNumber]));
  const deleted = new Map<string, Set<number>>();
  for (const d of live.deletes) {
    if (d.dataFile.content !== FileContent.PositionDeletes) {
      throw new LakeError('CORRUPT_METADATA', `equality deletes are not supported (${d.dataFile.filePath})`);
    }
    for (const [file, positions] of await positionsOf(store, d)) {
      const seq = dataSeq.get(file);
      if (seq === undefined || seq > d.sequenceNumber) continue;
      let set = deleted.get(file);
      if (set === undefined) deleted.set(file, (set = new Set()));
      for (const p of positions) set.add(p);
    }
  }
  return deleted;
}

/**
 * Locations of the given row ids (all of them, when `only` is undefined) in
 * the current snapshot. A row id normally has one location; more would mean
 * a duplicate, and every one of them is returned so it can be deleted.
 */
export async function locateRows(
  store: ObjectStore,
  metadata: TableMetadata,
  only?: ReadonlySet<string>,
): Promise<Map<string, RowLocation[]>> {
  const live = await liveFiles(store, metadata);
  const deleted = await deletedPositions(store, live);
  const out = new Map<string, RowLocation[]>();
  for (const e of live.data) {
    const ids = await rowIdsOf(store, e);
    const gone = deleted.get(e.dataFile.filePath);
    for (let pos = 0; pos < ids.length; pos++) {
      const id = ids[pos] as string;
      if (only !== undefined && !only.has(id)) continue;
      if (gone?.has(pos) === true) continue;
      const loc = { file: e.dataFile.filePath, pos, partition: e.dataFile.partition };
      const list = out.get(id);
      if (list === undefined) out.set(id, [loc]);
      else list.push(loc);
    }
  }
  return out;
}
