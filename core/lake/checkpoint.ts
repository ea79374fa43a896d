import { decodeRow } from '../codec/storage.ts';
import type { RowState } from '../merge.ts';
import { encodePullResponse } from '../protocol/codec.ts';
import { isLakeError } from './errors.ts';
import type { Lake } from './flush.ts';
import { parseJson, stringifyJson } from './json.ts';
import { readParquetTable } from './parquet.ts';
import { liveFiles } from './iceberg/snapshot.ts';
import { currentSnapshot } from './iceberg/metadata.ts';
import { deletedPositions } from './state-index.ts';

/**
 * Checkpoints for initial sync: the merged rows of every current-state
 * table, cut into chunks (protobuf PullResponse pages of `row` changes) on
 * the object store, plus a manifest. Built from the lake one data file at a
 * time, so memory holds one file's two system columns and one chunk.
 *
 * The cursor is the buffer's flushed mark read *before* the state tables are
 * loaded: every table then holds at least everything up to it (possibly a
 * little more, which a client's pull from the cursor re-applies harmlessly,
 * because merge is idempotent).
 */

export interface CheckpointChunkInfo {
  readonly table: string;
  readonly index: number;
  readonly rows: number;
  readonly bytes: number;
  readonly uri: string;
}

export interface CheckpointManifest {
  readonly checkpointId: string;
  readonly cursor: string;
  readonly schemaVersion: number;
  readonly createdAtMs: number;
  /** State-table snapshot each table was read from. */
  readonly snapshots: Readonly<Record<string, string>>;
  readonly chunks: readonly CheckpointChunkInfo[];
}

export interface BuildCheckpointOptions {
  /** The buffer's flushed mark, read before calling. */
  readonly cursor: bigint;
  readonly schemaVersion: number;
  readonly chunkRows?: number;
  readonly now?: number;
}

const DEFAULT_CHUNK_ROWS = 10_000;

export function checkpointRoot(lake: Lake, warehouse: string): string {
  return `${warehouse.replace(/\/+$/, '')}/${lake.namespace.join('/')}/_checkpoints`;
}

export class Checkpoints {
  private readonly manifests = new Map<string, CheckpointManifest>();

  constructor(
    private readonly lake: Lake,
    private readonly root: string,
  ) {}

  private latestUri(): string {
    return `${this.root}/latest.json`;
  }

  async build(tables: readonly string[], options: BuildCheckpointOptions): Promise<CheckpointManifest> {
    const createdAtMs = options.now ?? Date.now();
    const checkpointId = `${String(createdAtMs).padStart(15, '0')}-${crypto.randomUUID().slice(0, 8)}`;
    const dir = `${this.root}/${checkpointId}`;
    const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
    const chunks: CheckpointChunkInfo[] = [];
    const snapshots: Record<string, string> = {};
    const cursor = options.cursor.toString();

    for (const table of tables) {
      const loaded = await this.lake.catalog.loadTable(this.lake.ident(table));
      if (loaded === null) continue;
      const snap = currentSnapshot(loaded.metadata);
      if (snap === undefined) continue;
      snapshots[table] = snap['snapshot-id'].toString();
      const live = await liveFiles(this.lake.store, loaded.metadata, snap['snapshot-id']);
      const deleted = await deletedPositions(this.lake.store, live);
      let pending: RowState[] = [];
      let index = 0;
      const writeChunk = async (): Promise<void> => {
        if (pending.length === 0) return;
        const bytes = encodePullResponse('proto', {
          changes: pending.map((row) => ({ kind: 'row', row })),
          nextCursor: cursor,
          hasMore: false,
          serverHlc: 0n,
        });
        const uri = `${dir}/${table}-${String(index).padStart(6, '0')}.pb`;
        await this.lake.store.put(uri, bytes);
        chunks.push({ table, index, rows: pending.length, bytes: bytes.length, uri });
        index++;
        pending = [];
      };
      for (const e of live.data) {
        const t = readParquetTable(await this.lake.store.get(e.dataFile.filePath), ['_row_id', '_state']);
        const ids = t.getChild('_row_id');
        const states = t.getChild('_state');
        const gone = deleted.get(e.dataFile.filePath);
        for (let i = 0; i < t.numRows; i++) {
          if (gone?.has(i) === true) continue;
          pending.push(decodeRow(table, ids?.get(i) as string, states?.get(i) as Uint8Array));
          if (pending.length >= chunkRows) await writeChunk();
        }
      }
      await writeChunk();
    }
    const manifest: CheckpointManifest = { checkpointId, cursor, schemaVersion: options.schemaVersion, createdAtMs, snapshots, chunks };
    await this.lake.store.put(`${dir}/manifest.json`, new TextEncoder().encode(stringifyJson(manifest, 2)));
    // The pointer goes last: a checkpoint is visible only once all of it exists.
    await this.lake.store.put(this.latestUri(), new TextEncoder().encode(stringifyJson({ checkpointId, cursor }, 2)));
    return manifest;
  }

  async latest(): Promise<CheckpointManifest | null> {
    let pointer: { checkpointId: string };
    try {
      pointer = parseJson(new TextDecoder().decode(await this.lake.store.get(this.latestUri()))) as { checkpointId: string };
    } catch (e) {
      if (isLakeError(e, 'NOT_FOUND')) return null;
      throw e;
    }
    return this.manifest(pointer.checkpointId);
  }

  async manifest(checkpointId: string): Promise<CheckpointManifest | null> {
    if (!/^[0-9]{15}-[0-9a-f]{8}$/.test(checkpointId)) return null;
    // Manifests never change once written: a client fetching many chunks reads it once.
    const cached = this.manifests.get(checkpointId);
    if (cached !== undefined) return cached;
    try {
      const bytes = await this.lake.store.get(`${this.root}/${checkpointId}/manifest.json`);
      const m = parseJson(new TextDecoder().decode(bytes)) as CheckpointManifest;
      if (this.manifests.size >= 8) this.manifests.delete(this.manifests.keys().next().value as string);
      this.manifests.set(checkpointId, m);
      return m;
    } catch (e) {
      if (isLakeError(e, 'NOT_FOUND')) return null;
      throw e;
    }
  }

  /** The stored bytes of one chunk (a PullResponse of `row` changes), or null when gone. */
  async chunk(manifest: CheckpointManifest, index: number): Promise<Uint8Array | null> {
    const info = manifest.chunks[index];
    if (info === undefined) return null;
    try {
      return await this.lake.store.get(info.uri);
    } catch (e) {
      if (isLakeError(e, 'NOT_FOUND')) return null;
      throw e;
    }
  }

  /**
   * Delete old checkpoints: keep the newest `keepLast`, and any younger than
   * the cut-off (a client may be loading it right now).
   */
  async gc(options: { keepLast: number; olderThanMs: number }): Promise<string[]> {
    const ids = new Set<string>();
    for await (const o of this.lake.store.list(`${this.root}/`)) {
      const m = /\/_checkpoints\/([0-9]{15}-[0-9a-f]{8})\//.exec(o.uri);
      if (m !== null) ids.add(m[1] as string);
    }
    const sorted = [...ids].sort().reverse();
    const latest = await this.latest();
    const doomed = sorted
      .slice(Math.max(1, options.keepLast))
      .filter((id) => id !== latest?.checkpointId && Number(id.slice(0, 15)) < options.olderThanMs);
    for (const id of doomed) {
      this.manifests.delete(id);
      const uris: string[] = [];
      for await (const o of this.lake.store.list(`${this.root}/${id}/`)) uris.push(o.uri);
      await this.lake.store.delete(uris);
    }
    return doomed;
  }
}
