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

const utf8 = new TextEncoder();

/** UTF-8 bytes of many strings, back to back: the ASCII ones without TextEncoder. */
class PackedStrings {
  readonly offsets: Int32Array;
  readonly hashes: Int32Array;
  bytes: Uint8Array;

  constructor(strings: readonly string[]) {
    const n = strings.length;
    this.offsets = new Int32Array(n + 1);
    this.hashes = new Int32Array(n);
    let buf = new Uint8Array(Math.max(64, n * 12));
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const s = strings[i] as string;
      if (buf.length - pos < s.length * 3) {
        const next = new Uint8Array(Math.max(buf.length * 2, pos + s.length * 3));
        next.set(buf.subarray(0, pos));
        buf = next;
      }
      let k = 0;
      for (; k < s.length; k++) {
        const c = s.charCodeAt(k);
        if (c >= 0x80) break;
        buf[pos + k] = c;
      }
      const end = k === s.length ? pos + k : pos + utf8.encodeInto(s, buf.subarray(pos)).written;
      this.hashes[i] = hashBytes(buf, pos, end);
      pos = end;
      this.offsets[i + 1] = pos;
    }
    this.bytes = buf.subarray(0, pos);
  }
}

/** FNV-1a over bytes[start, end). */
function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return h;
}

/**
 * The row ids of one state file by position, as UTF-8 bytes with an
 * open-addressing hash table over them: a million cached ids are a few typed
 * arrays instead of a million strings for the garbage collector to trace on
 * every major collection, and a lookup costs a probe instead of a scan of
 * the file's ids.
 */
export class RowIdIndex {
  private readonly ids: PackedStrings;
  /** Slots hold position + 1 (0: empty). */
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(ids: readonly string[]) {
    this.ids = new PackedStrings(ids);
    let cap = 16;
    while (cap < ids.length * 2) cap *= 2;
    this.slots = new Int32Array(cap);
    this.mask = cap - 1;
    const hashes = this.ids.hashes;
    for (let pos = 0; pos < ids.length; pos++) {
      let slot = (hashes[pos] as number) & this.mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = pos + 1;
    }
  }

  get length(): number {
    return this.ids.hashes.length;
  }

  /** Positions of query `q` of `queries` in this file (more than one only for a duplicate), appended to `out`. */
  find(queries: PackedStrings, q: number, out: number[]): void {
    const h = queries.hashes[q] as number;
    const qs = queries.offsets[q] as number;
    const qlen = (queries.offsets[q + 1] as number) - qs;
    const qb = queries.bytes;
    const { offsets, hashes, bytes } = this.ids;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.slots[slot] as number;
      if (v === 0) return;
      const pos = v - 1;
      if (hashes[pos] !== h) continue;
      const s = offsets[pos] as number;
      if ((offsets[pos + 1] as number) - s !== qlen) continue;
      let i = 0;
      while (i < qlen && bytes[s + i] === qb[qs + i]) i++;
      if (i === qlen) out.push(pos);
    }
  }
}

class FileCache<T extends RowIdIndex | Map<string, Set<number>>> {
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

const rowIdCache = new FileCache<RowIdIndex>(MAX_CACHED_VALUES);
const deleteCache = new FileCache<Map<string, Set<number>>>(MAX_CACHED_VALUES);

/** Tell the cache what a file we just wrote holds, so the next flush need not read it back. */
export function rememberRowIds(path: string, ids: readonly string[]): void {
  rowIdCache.set(path, new RowIdIndex(ids), ids.length);
}

async function rowIdsOf(store: ObjectStore, entry: ManifestEntry): Promise<RowIdIndex> {
  const path = entry.dataFile.filePath;
  const cached = rowIdCache.get(path);
  if (cached !== undefined) return cached;
  const table = readParquetTable(await store.get(path), ['_row_id']);
  const ids = Array.from((table.getChild('_row_id')?.toArray() ?? []) as string[]);
  const index = new RowIdIndex(ids);
  rowIdCache.set(path, index, ids.length);
  return index;
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
 * Locations of the given row ids in the current snapshot. A row id normally
 * has one location; more would mean a duplicate, and every one of them is
 * returned so it can be deleted.
 */
export async function locateRows(store: ObjectStore, metadata: TableMetadata, only: readonly string[]): Promise<Map<string, RowLocation[]>> {
  const live = await liveFiles(store, metadata);
  const deleted = await deletedPositions(store, live);
  const out = new Map<string, RowLocation[]>();
  if (live.data.length === 0 || only.length === 0) return out;
  const queries = new PackedStrings(only);
  const found: number[] = [];
  for (const e of live.data) {
    const index = await rowIdsOf(store, e);
    const gone = deleted.get(e.dataFile.filePath);
    for (let q = 0; q < only.length; q++) {
      found.length = 0;
      index.find(queries, q, found);
      for (const pos of found) {
        if (gone?.has(pos) === true) continue;
        const id = only[q] as string;
        const loc = { file: e.dataFile.filePath, pos, partition: e.dataFile.partition };
        const list = out.get(id);
        if (list === undefined) out.set(id, [loc]);
        else list.push(loc);
      }
    }
  }
  return out;
}
