import { isLakeError } from './errors.ts';
import type { ObjectStore } from './ports.ts';

/**
 * Reading checkpoints (and forgetting old ones): what serving initial sync
 * needs, on an object store alone. Kept apart from building (checkpoint.ts),
 * which reads Parquet: the HTTP function serves checkpoints without loading
 * parquet-wasm or Arrow.
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

export function checkpointRootFor(warehouse: string, namespace: readonly string[]): string {
  return `${warehouse.replace(/\/+$/, '')}/${namespace.join('/')}/_checkpoints`;
}

/** What CheckpointService reads. */
export type CheckpointReader = Pick<CheckpointStore, 'latest' | 'manifest' | 'chunk'>;

export class CheckpointStore {
  private readonly manifests = new Map<string, CheckpointManifest>();

  constructor(
    protected readonly store: ObjectStore,
    protected readonly root: string,
  ) {}

  protected latestUri(): string {
    return `${this.root}/latest.json`;
  }

  async latest(): Promise<CheckpointManifest | null> {
    let pointer: { checkpointId: string };
    try {
      pointer = JSON.parse(new TextDecoder().decode(await this.store.get(this.latestUri()))) as { checkpointId: string };
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
      const bytes = await this.store.get(`${this.root}/${checkpointId}/manifest.json`);
      // Plain JSON.parse is exact here: every 64-bit value in a manifest
      // (cursor, snapshot ids) is a string. It keeps lossless-json out of the
      // http function's bundle.
      const m = JSON.parse(new TextDecoder().decode(bytes)) as CheckpointManifest;
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
      return await this.store.get(info.uri);
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
    for await (const o of this.store.list(`${this.root}/`)) {
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
      for await (const o of this.store.list(`${this.root}/${id}/`)) uris.push(o.uri);
      await this.store.delete(uris);
    }
    return doomed;
  }
}
