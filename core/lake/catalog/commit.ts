import { LakeError, isLakeError } from '../errors.ts';
import type { TableRequirement, TableUpdate } from '../iceberg/metadata.ts';
import type { Catalog, LoadedTable, TableIdent } from '../ports.ts';

export interface TableChange {
  readonly requirements: readonly TableRequirement[];
  readonly updates: readonly TableUpdate[];
}

export interface CommitRetryOptions {
  /** Commit attempts in all (each after a fresh load). Default 5. */
  readonly maxAttempts?: number;
  /** Pause before a retry; doubles each time, with jitter. Default 100 ms. */
  readonly baseDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Optimistic commit loop: load the table, let `build` derive the change from
 * what is there now, commit, and start over when another writer got in first.
 *
 * After COMMIT_STATE_UNKNOWN the loop reloads too, and `build` decides from
 * the fresh metadata whether its earlier attempt landed (say, a snapshot with
 * its id or its summary marker is already on the branch): returning null
 * means "already applied, nothing to do", and the loaded table is returned.
 * `build` may be async (it may write a new manifest list per attempt).
 *
 * Gives up with the last error. If any attempt's outcome was unknown and no
 * later load settled it, the error is COMMIT_STATE_UNKNOWN: the caller must
 * not delete the files those attempts referenced.
 */
export async function commitWithRetry(
  catalog: Catalog,
  ident: TableIdent,
  build: (table: LoadedTable) => TableChange | null | Promise<TableChange | null>,
  options: CommitRetryOptions = {},
): Promise<LoadedTable> {
  const maxAttempts = options.maxAttempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 100;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let unknown: LakeError | null = null;
  let last: unknown = null;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (attempt > 0) {
      const ms = Math.min(5_000, baseDelayMs * 2 ** (attempt - 1));
      await sleep(ms / 2 + Math.random() * (ms / 2));
    }
    let table: LoadedTable | null;
    try {
      table = await catalog.loadTable(ident);
    } catch (e) {
      throw unknown === null ? e : stillUnknown(unknown, e);
    }
    if (table === null) {
      const gone = new LakeError('NOT_FOUND', `table ${[...ident.namespace, ident.name].join('.')} does not exist`);
      throw unknown === null ? gone : stillUnknown(unknown, gone);
    }
    let change: TableChange | null;
    try {
      change = await build(table);
    } catch (e) {
      // `build` was to settle an unknown attempt: failing, it settled nothing.
      throw unknown === null ? e : stillUnknown(unknown, e);
    }
    if (change === null) return table;
    try {
      return await catalog.commitTable(ident, change.requirements, change.updates);
    } catch (e) {
      last = e;
      if (isLakeError(e, 'COMMIT_STATE_UNKNOWN')) unknown = e;
      else if (!isLakeError(e, 'COMMIT_CONFLICT')) throw unknown === null ? e : stillUnknown(unknown, e);
    }
  }
  if (unknown !== null) throw stillUnknown(unknown, last);
  throw last;
}

function stillUnknown(unknown: LakeError, cause: unknown): LakeError {
  return new LakeError('COMMIT_STATE_UNKNOWN', `${unknown.message} (not settled: ${String(cause)})`, { cause });
}
