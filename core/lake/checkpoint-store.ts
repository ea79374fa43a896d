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

/**
 * Where the newest checkpoint is named. Each build that finishes writes its
 * own pointer object, `latest/<order>-<checkpointId>.json`, and the newest
 * checkpoint is the pointer with the highest name: builds that finish out of
 * order (a slow one started from an older cursor) can never move it back,
 * which one overwritten `latest.json` could. `order` is the sum of the
 * cursor's per-shard seqs, 20 digits: cursors are flushed marks, which only
 * grow in every shard, so any two are ordered the same way by their sums.
 */
const POINTER = /\/latest\/([0-9]{20}-[0-9]{15}-[0-9a-f]{8})\.json$/;

export function pointerName(checkpointId: string, cursor: string): string {
  const order = cursor === '' ? 0n : cursor.split('.').reduce((n, part) => n + BigInt(part), 0n);
  return `${order.toString().padStart(20, '0')}-${checkpointId}`;
}

/** Checkpoint directories, one per build: `<root>/<checkpointId>/`. */
const DIRECTORY = /\/_checkpoints\/([0-9]{15}-[0-9a-f]{8})\//;

export class CheckpointStore {
  private readonly manifests = new Map<string, CheckpointManifest>();

  constructor(
    protected readonly store: ObjectStore,
    protected readonly root: string,
  ) {}

  protected pointerUri(name: string): string {
    return `${this.root}/latest/${name}.json`;
  }

  /** The published pointers' names, highest (newest) first. */
  protected async pointers(): Promise<string[]> {
    const names: string[] = [];
    for await (const o of this.store.list(`${this.root}/latest/`)) {
      const m = POINTER.exec(o.uri);
      if (m !== null) names.push(m[1] as string);
    }
    return names.sort().reverse();
  }

  async latest(): Promise<CheckpointManifest | null> {
    const names = await this.pointers();
    // Newest first; one naming a checkpoint that is gone (left by a gc before pointers were spared
    // while their build published) must not hide the others.
    for (const name of names) {
      const m = await this.manifest(name.slice(21));
      if (m !== null) return m;
    }
    if (names.length > 0) return null;
    // A lake written before pointers: its one latest.json.
    let pointer: { checkpointId: string };
    try {
      pointer = JSON.parse(new TextDecoder().decode(await this.store.get(`${this.root}/latest.json`))) as { checkpointId: string };
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

  /** Every checkpoint directory: its objects, its newest write, whether its manifest exists (the build finished). */
  protected async directories(): Promise<Map<string, { finished: boolean; newest: number; uris: string[] }>> {
    const dirs = new Map<string, { finished: boolean; newest: number; uris: string[] }>();
    for await (const o of this.store.list(`${this.root}/`)) {
      const m = DIRECTORY.exec(o.uri);
      if (m === null) continue;
      const id = m[1] as string;
      let d = dirs.get(id);
      if (d === undefined) dirs.set(id, (d = { finished: false, newest: 0, uris: [] }));
      d.uris.push(o.uri);
      d.newest = Math.max(d.newest, o.lastModified);
      if (o.uri.endsWith('/manifest.json')) d.finished = true;
    }
    return dirs;
  }

  /**
   * Delete old checkpoints. Kept: the newest `keepLast` published ones, and
   * any other published one replaced after `olderThanMs`: a client may have
   * started loading it while it was the newest, and loads resume chunk by
   * chunk. Replaced means a newer checkpoint was built (its id's time); in a
   * lake from before pointers, a checkpoint's age is its own id's time. A directory without a manifest, or
   * with one but no pointer yet, is a build in progress, or one that died:
   * it goes only once nothing in it was written after `unfinishedOlderThanMs`
   * (default: an hour before `olderThanMs`, far beyond a function's run time).
   */
  async gc(options: { keepLast: number; olderThanMs: number; unfinishedOlderThanMs?: number }): Promise<string[]> {
    const dirs = await this.directories();
    const pointers = await this.pointers();
    const unfinishedBefore = options.unfinishedOlderThanMs ?? options.olderThanMs - 3_600_000;
    // A pointer is written after its directory: an old one without a directory names a checkpoint
    // that is gone (a young one may belong to a build that published after the directories were listed).
    const live = pointers.filter((p) => dirs.has(p.slice(21)));
    const dangling = pointers.filter((p) => !dirs.has(p.slice(21)) && Number(p.slice(21, 36)) < unfinishedBefore);
    await this.store.delete(dangling.map((p) => this.pointerUri(p)));
    const kept = new Set(live.slice(0, Math.max(1, options.keepLast)).map((p) => p.slice(21)));
    const legacy = pointers.length === 0 ? (await this.latest())?.checkpointId : undefined;
    if (legacy !== undefined) kept.add(legacy);
    if (pointers.length === 0) for (const id of [...dirs.keys()].sort().reverse().slice(0, Math.max(1, options.keepLast))) kept.add(id);
    const named = new Set(pointers.map((p) => p.slice(21)));
    // Published means named by a pointer (or any finished one, in a lake from before pointers). A
    // manifest without a pointer is a build about to publish (a pointer naming a deleted checkpoint
    // would hide every other one), or one that died: it waits like a build in progress.
    const published = (id: string, d: { finished: boolean }): boolean => d.finished && (pointers.length === 0 || named.has(id));
    // Pointers come newest first: each checkpoint was replaced when the next newer one was built.
    const replacedAt = new Map<string, number>();
    live.forEach((p, i) => replacedAt.set(p.slice(21), i === 0 ? Number.POSITIVE_INFINITY : Number((live[i - 1] as string).slice(21, 36))));
    const age = (id: string): number => replacedAt.get(id) ?? Number(id.slice(0, 15));
    const doomed = [...dirs.entries()]
      .filter(([id, d]) => !kept.has(id) && (published(id, d) ? age(id) < options.olderThanMs : d.newest < unfinishedBefore))
      .map(([id]) => id)
      .sort();
    // The pointer of lakes from before pointers, once pointers took over.
    if (pointers.length > 0) await this.store.delete([`${this.root}/latest.json`]);
    for (const id of doomed) {
      this.manifests.delete(id);
      // Its pointer first: no pointer ever names a checkpoint that is gone.
      await this.store.delete(pointers.filter((p) => p.slice(21) === id).map((p) => this.pointerUri(p)));
      await this.store.delete((dirs.get(id) as { uris: string[] }).uris);
    }
    return doomed;
  }
}
