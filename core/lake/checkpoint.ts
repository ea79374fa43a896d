import { decodeRow } from '../codec/storage.ts';
import { encodeCursor, type Position } from '../engine/shards.ts';
import type { RowState } from '../merge.ts';
import { encodePullResponse } from '../protocol/codec.ts';
import { CheckpointStore, checkpointRootFor, pointerName, type CheckpointChunkInfo, type CheckpointManifest } from './checkpoint-store.ts';
import { jsonSizeBound } from '../protocol/json-size.ts';
import { LakeError } from './errors.ts';
import type { Lake } from './flush.ts';
import { stringifyJson } from './json.ts';
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

export interface BuildCheckpointOptions {
  /** The buffer's flushed mark (one per shard), read before calling. */
  readonly cursor: bigint | Position;
  readonly schemaVersion: number;
  readonly chunkRows?: number;
  /** A chunk ends before this many bytes of JSON (jsonSizeBound); a row larger than that goes alone. */
  readonly chunkBytes?: number;
  readonly now?: number;
}

const DEFAULT_CHUNK_ROWS = 10_000;
/** Well under AWS Lambda's 6 MB response (the http function serves a chunk in one), whatever the format. */
const DEFAULT_CHUNK_BYTES = 4_000_000;

export type { CheckpointChunkInfo, CheckpointManifest, CheckpointReader } from './checkpoint-store.ts';

export function checkpointRoot(lake: Lake, warehouse: string): string {
  return checkpointRootFor(warehouse, lake.namespace);
}

/** Builds checkpoints from the lake's state tables; reads them as CheckpointStore does. */
export class Checkpoints extends CheckpointStore {
  constructor(
    private readonly lake: Lake,
    root: string,
  ) {
    super(lake.store, root);
  }

  /**
   * Whether another build is under way: a checkpoint directory without a
   * manifest that was written to since `sinceMs`. Jobs arrive concurrently
   * (each flush may ask for a checkpoint while one is being built); a second
   * full build at once only costs.
   */
  async building(sinceMs: number): Promise<boolean> {
    return [...(await this.directories()).values()].some((d) => !d.finished && d.newest >= sinceMs);
  }

  async build(tables: readonly string[], options: BuildCheckpointOptions): Promise<CheckpointManifest> {
    const createdAtMs = options.now ?? Date.now();
    const checkpointId = `${String(createdAtMs).padStart(15, '0')}-${crypto.randomUUID().slice(0, 8)}`;
    const dir = `${this.root}/${checkpointId}`;
    const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const chunks: CheckpointChunkInfo[] = [];
    const snapshots: Record<string, string> = {};
    const cursor = typeof options.cursor === 'bigint' ? options.cursor.toString() : encodeCursor(options.cursor);

    for (const table of tables) {
      const loaded = await this.lake.catalog.loadTable(this.lake.ident(table));
      if (loaded === null) continue;
      const snap = currentSnapshot(loaded.metadata);
      if (snap === undefined) continue;
      snapshots[table] = snap['snapshot-id'].toString();
      const live = await liveFiles(this.lake.store, loaded.metadata, snap['snapshot-id']);
      const deleted = await deletedPositions(this.lake.store, live);
      let pending: RowState[] = [];
      let pendingBytes = 0;
      const writeChunk = async (): Promise<void> => {
        if (pending.length === 0) return;
        const bytes = encodePullResponse('proto', {
          changes: pending.map((row) => ({ kind: 'row', row })),
          nextCursor: cursor,
          hasMore: false,
          serverHlc: 0n,
        });
        // A chunk's index is its place in the whole checkpoint: GET /v1/checkpoint/{id}/{index} addresses it.
        const index = chunks.length;
        const uri = `${dir}/${table}-${String(index).padStart(6, '0')}.pb`;
        await this.lake.store.put(uri, bytes);
        chunks.push({ table, index, rows: pending.length, bytes: bytes.length, uri });
        pending = [];
        pendingBytes = 0;
      };
      for (const e of live.data) {
        const t = readParquetTable(await this.lake.store.get(e.dataFile.filePath), ['_row_id', '_state']);
        const ids = t.getChild('_row_id');
        const states = t.getChild('_state');
        const gone = deleted.get(e.dataFile.filePath);
        for (let i = 0; i < t.numRows; i++) {
          if (gone?.has(i) === true) continue;
          const row = decodeRow(table, ids?.get(i) as string, states?.get(i) as Uint8Array);
          const size = jsonSizeBound(row);
          if (pendingBytes + size > chunkBytes) await writeChunk();
          pending.push(row);
          pendingBytes += size;
          if (pending.length >= chunkRows) await writeChunk();
        }
      }
      await writeChunk();
    }
    const manifest: CheckpointManifest = { checkpointId, cursor, schemaVersion: options.schemaVersion, createdAtMs, snapshots, chunks };
    await this.lake.store.put(`${dir}/manifest.json`, new TextEncoder().encode(stringifyJson(manifest, 2)));
    // Never publish a checkpoint with a part missing (collected while it was built, however unlikely).
    const written = new Set<string>();
    for await (const o of this.lake.store.list(`${dir}/`)) written.add(o.uri);
    const missing = chunks.find((c) => !written.has(c.uri));
    if (missing !== undefined) throw new LakeError('NOT_FOUND', `checkpoint ${checkpointId} lost ${missing.uri} while it was built; not published`);
    // The pointer goes last: a checkpoint is visible only once all of it exists.
    await this.lake.store.put(this.pointerUri(pointerName(checkpointId, cursor)), new TextEncoder().encode(stringifyJson({ checkpointId, cursor }, 2)));
    return manifest;
  }
}
