import { encodeCursor, parseCursor, type BufferShards, type Position } from '../engine/shards.ts';
import type { Checkpoints } from './checkpoint.ts';
import type { FlushReport, Lake } from './flush.ts';

/**
 * The lake steps every scheduler (LakeJobs, LakeJobRunner) runs over all
 * shards of a deployment. Each shard is flushed, checkpointed and trimmed
 * by its own marks: a table lives in exactly one shard, so the lake's
 * per-table watermarks never mix seqs of two shards.
 */
export interface FlushSummary {
  /** Positions (cursor form) before and after the flush. */
  readonly from: string;
  readonly to: string;
  readonly deltas: number;
  readonly snapshots: number;
  readonly files: number;
  /** Each shard's report, by shard index. */
  readonly shards: readonly FlushReport[];
}

export async function flushShards(lake: Lake, shards: BufferShards): Promise<FlushSummary> {
  const reports: FlushReport[] = [];
  // One at a time: a flush already streams its chunks, and shards share the catalog.
  for (const buffer of shards.buffers) reports.push(await lake.flush(buffer));
  return {
    from: encodeCursor(reports.map((r) => r.from)),
    to: encodeCursor(reports.map((r) => r.to)),
    deltas: reports.reduce((n, r) => n + r.deltas, 0),
    snapshots: reports.reduce((n, r) => n + r.snapshots, 0),
    files: reports.reduce((n, r) => n + r.files, 0),
    shards: reports,
  };
}

/** The newest checkpoint's position (zeros when there is none). */
export async function checkpointPosition(checkpoints: Checkpoints, shards: BufferShards): Promise<bigint[]> {
  return parseCursor((await checkpoints.latest())?.cursor ?? '', shards.count);
}

/**
 * Forget, per shard, only what both the lake and the newest checkpoint
 * hold, minus `retain` deltas kept for pulls. Returns the new floors.
 */
export async function trimShards(shards: BufferShards, checkpoint: Position, retain: bigint): Promise<bigint[]> {
  const [flushed, heads] = await Promise.all([shards.flushed(), shards.heads()]);
  await Promise.all(
    shards.buffers.map(async (buffer, k) => {
      const c = checkpoint[k] as bigint;
      const f = flushed[k] as bigint;
      let upTo = c < f ? c : f;
      const keep = (heads[k] as bigint) - retain;
      if (keep < upTo) upTo = keep;
      // Called even with nothing to forget: a buffer whose log expires by TTL
      // raises its floor over items about to expire here, whatever upTo is.
      await buffer.trim(upTo > 0n ? upTo : 0n);
    }),
  );
  return shards.floors();
}
