import type { DeltaBuffer } from '../engine/ports.ts';
import { asShards, distance, encodeCursor, type BufferShards } from '../engine/shards.ts';
import type { Checkpoints } from './checkpoint.ts';
import type { Lake } from './flush.ts';
import { compactTable, expireSnapshots, removeOrphans } from './maintenance.ts';
import { changeTableName } from './layout.ts';
import { checkpointPosition, flushShards, trimShards, type FlushSummary } from './shard-steps.ts';

/**
 * The background work every runtime schedules its own way (a timer on the
 * local server, SQS and EventBridge on AWS, alarms on Cloudflare): flush,
 * then checkpoint, then let the buffer forget what the lake and the newest
 * checkpoint hold; and, less often, maintenance.
 */
export interface LakeJobOptions {
  /** One buffer, or the shards of a sharded deployment. */
  readonly buffer: DeltaBuffer | BufferShards;
  readonly lake: Lake;
  readonly checkpoints: Checkpoints;
  readonly schemaVersion: number;
  /** Build a new checkpoint once this many deltas were flushed since the last one (default 10,000). */
  readonly checkpointEvery?: number;
  /** Deltas the buffer (each shard) keeps beyond the checkpoint, so briefly offline clients just pull (default 100,000). */
  readonly retainDeltas?: number;
  readonly now?: () => number;
}

export interface CycleReport {
  readonly flush: FlushSummary;
  readonly checkpoint: string | null;
  /** The buffer's floor after trimming, in cursor form. */
  readonly floor: string;
}

export class LakeJobs {
  private lastCheckpoint: bigint[] | null = null;
  private running: Promise<CycleReport> | null = null;

  constructor(private readonly opts: LakeJobOptions) {}

  /** One flush cycle; concurrent calls share the running one. */
  cycle(): Promise<CycleReport> {
    this.running ??= this.runCycle().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async runCycle(): Promise<CycleReport> {
    const { lake, checkpoints } = this.opts;
    const shards = asShards(this.opts.buffer);
    const flush = await flushShards(lake, shards);
    const flushed = await shards.flushed();
    this.lastCheckpoint ??= await checkpointPosition(checkpoints, shards);
    let checkpoint: string | null = null;
    if (distance(flushed, this.lastCheckpoint) >= BigInt(this.opts.checkpointEvery ?? 10_000)) {
      // The cursor is read before the state tables: they hold at least everything up to it.
      const m = await checkpoints.build(
        lake.stateTables(),
        { cursor: flushed, schemaVersion: this.opts.schemaVersion, now: (this.opts.now ?? Date.now)() },
      );
      this.lastCheckpoint = flushed;
      checkpoint = m.checkpointId;
      await checkpoints.gc({ keepLast: 2, olderThanMs: (this.opts.now ?? Date.now)() - 10 * 60_000 });
    }
    // Forget only what both the lake and the newest checkpoint hold, minus a window kept for pulls.
    const floors = await trimShards(shards, this.lastCheckpoint, BigInt(this.opts.retainDeltas ?? 100_000));
    return { flush, checkpoint, floor: encodeCursor(floors) };
  }

  /** Resolves once no cycle is running (for shutdown). */
  async idle(): Promise<void> {
    // Its failure was already reported to whoever awaited cycle(); here we only wait.
    await this.running?.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Compaction, snapshot expiry and orphan removal for LakeSync's lake tables
   * (each synced table's state and change tables), as the AWS maintenance
   * function schedules them. Other tables in the namespace belong to
   * whoever wrote them.
   */
  async maintain(options: { snapshotRetentionMs: number; orphanAgeMs: number; targetFileBytes?: number }): Promise<string[]> {
    const { lake } = this.opts;
    const now = (this.opts.now ?? Date.now)();
    const log: string[] = [];
    for (const name of lake.stateTables().flatMap((t) => [t, changeTableName(t)])) {
      if ((await lake.catalog.loadTable(lake.ident(name))) === null) continue; // nothing flushed to it yet
      const c = await compactTable(lake, name, options.targetFileBytes === undefined ? {} : { targetFileBytes: options.targetFileBytes });
      const e = await expireSnapshots(lake, name, { olderThanMs: now - options.snapshotRetentionMs, retainLast: 5 });
      const o = await removeOrphans(lake, name, { olderThanMs: now - options.orphanAgeMs });
      log.push(`${name}: compacted ${c.rewrittenDataFiles}+${c.removedDeleteFiles} files, expired ${e.expiredSnapshots} snapshots, removed ${o.orphans.length} orphans`);
    }
    return log;
  }
}
