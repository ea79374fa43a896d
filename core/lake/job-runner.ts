import type { DeltaBuffer } from '../engine/ports.ts';
import type { Checkpoints } from './checkpoint.ts';
import { isLakeError } from './errors.ts';
import type { FanoutTarget } from './fanout.ts';
import type { FlushReport, Lake } from './flush.ts';
import { compactTable, expireSnapshots, removeOrphans } from './maintenance.ts';
import type { JobQueue, LakeJob } from './queue.ts';

/**
 * Runs one queued lake job (see queue.ts) against the buffer and the lake:
 * the queue-driven counterpart of LakeJobs.cycle()/maintain() (jobs.ts),
 * for runtimes where flush, checkpoint and maintenance are separate
 * invocations that share no memory. Nothing is kept between jobs; every
 * decision is re-read from the buffer, the catalog and the newest
 * checkpoint, so jobs may repeat, arrive late or out of order.
 */
export interface JobRunnerOptions {
  readonly buffer: DeltaBuffer;
  readonly lake: Lake;
  readonly checkpoints: Checkpoints;
  readonly schemaVersion: number;
  /** Where follow-up jobs go (checkpoint after flush, fan-out); none are sent without one. */
  readonly jobs?: JobQueue;
  /** Ask for a checkpoint once this many deltas were flushed past the newest one (default 100,000). */
  readonly checkpointEvery?: number;
  /** Deltas the buffer keeps beyond what the lake and the newest checkpoint hold (default 100,000). */
  readonly retainDeltas?: number;
  /** Snapshots younger than this stay (default 7 days); the newest 5 always stay. */
  readonly snapshotRetentionMs?: number;
  /** Unreferenced files younger than this may belong to a flush in flight (default 1 hour). */
  readonly orphanAgeMs?: number;
  readonly compactTargetBytes?: number;
  /** Fan-out target; null/absent: fan-out jobs are acknowledged and do nothing. */
  readonly fanout?: FanoutTarget | null;
  readonly now?: () => number;
}

export type JobResult =
  | { readonly kind: 'flush'; readonly flush: FlushReport; readonly followUps: readonly LakeJob[] }
  | { readonly kind: 'checkpoint'; readonly checkpoint: string | null; readonly floor: bigint }
  | { readonly kind: 'compact'; readonly table: string; readonly rewritten: number }
  | { readonly kind: 'lifecycle'; readonly table: string | null; readonly expired: number; readonly orphans: number; readonly floor: bigint }
  | { readonly kind: 'fanout'; readonly delivered: number };

const FANOUT_PAGE = 1000;

export class LakeJobRunner {
  constructor(private readonly opts: JobRunnerOptions) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  run(job: LakeJob): Promise<JobResult> {
    switch (job.kind) {
      case 'flush':
        return this.flush();
      case 'checkpoint':
        return this.checkpoint(job.cursor === undefined ? null : BigInt(job.cursor));
      case 'compact':
        return this.compact(job.table);
      case 'lifecycle':
        return this.lifecycle(job.table ?? null);
      case 'fanout':
        return this.fanout(BigInt(job.from), BigInt(job.to));
    }
  }

  private async latestCursor(): Promise<bigint> {
    return BigInt((await this.opts.checkpoints.latest())?.cursor ?? '0');
  }

  /**
   * Flush everything up to the head, then ask for a checkpoint when due. A
   * retry after a crash anywhere flushes only what the tables lack, and
   * still sends the checkpoint job it owes (the decision is re-read).
   */
  private async flush(): Promise<JobResult> {
    const { buffer, lake } = this.opts;
    const report = await lake.flush(buffer);
    const flushed = await buffer.flushedThrough();
    const followUps: LakeJob[] = [];
    if (flushed - (await this.latestCursor()) >= BigInt(this.opts.checkpointEvery ?? 100_000)) {
      followUps.push({ kind: 'checkpoint', cursor: flushed.toString() });
    }
    if (this.opts.fanout != null && report.to > report.from) {
      followUps.push({ kind: 'fanout', from: report.from.toString(), to: report.to.toString() });
    }
    if (followUps.length > 0 && this.opts.jobs !== undefined) await this.opts.jobs.send(followUps);
    return { kind: 'flush', flush: report, followUps };
  }

  /** Build unless the newest checkpoint already holds `wanted` (or everything flushed); then trim. */
  private async checkpoint(wanted: bigint | null): Promise<JobResult> {
    const { buffer, lake, checkpoints } = this.opts;
    // The cursor is read before the state tables: they hold at least everything up to it.
    const flushed = await buffer.flushedThrough();
    const latest = await this.latestCursor();
    let id: string | null = null;
    if (flushed > latest && (wanted === null || wanted > latest)) {
      const m = await checkpoints.build(lake.stateTables(), { cursor: flushed, schemaVersion: this.opts.schemaVersion, now: this.now() });
      id = m.checkpointId;
      await checkpoints.gc({ keepLast: 2, olderThanMs: this.now() - 10 * 60_000 });
    }
    return { kind: 'checkpoint', checkpoint: id, floor: await this.trim() };
  }

  /** Forget only what both the lake and the newest checkpoint hold, minus a window kept for pulls. */
  private async trim(): Promise<bigint> {
    const { buffer } = this.opts;
    const flushed = await buffer.flushedThrough();
    const latest = await this.latestCursor();
    const head = await buffer.head();
    let upTo = latest < flushed ? latest : flushed;
    const keep = head - BigInt(this.opts.retainDeltas ?? 100_000);
    if (keep < upTo) upTo = keep;
    if (upTo > 0n) await buffer.trim(upTo);
    return buffer.floor();
  }

  private async compact(table: string): Promise<JobResult> {
    try {
      const c = await compactTable(this.opts.lake, table, this.opts.compactTargetBytes === undefined ? {} : { targetFileBytes: this.opts.compactTargetBytes });
      return { kind: 'compact', table, rewritten: c.rewrittenDataFiles };
    } catch (e) {
      // No table yet (nothing flushed to it): nothing to compact.
      if (isLakeError(e, 'NOT_FOUND')) return { kind: 'compact', table, rewritten: 0 };
      throw e;
    }
  }

  private async lifecycle(table: string | null): Promise<JobResult> {
    const floor = await this.trim();
    if (table === null) return { kind: 'lifecycle', table, expired: 0, orphans: 0, floor };
    const now = this.now();
    try {
      const e = await expireSnapshots(this.opts.lake, table, { olderThanMs: now - (this.opts.snapshotRetentionMs ?? 7 * 86_400_000), retainLast: 5 });
      const o = await removeOrphans(this.opts.lake, table, { olderThanMs: now - (this.opts.orphanAgeMs ?? 3_600_000) });
      return { kind: 'lifecycle', table, expired: e.expiredSnapshots, orphans: o.orphans.length, floor };
    } catch (e) {
      if (isLakeError(e, 'NOT_FOUND')) return { kind: 'lifecycle', table, expired: 0, orphans: 0, floor };
      throw e;
    }
  }

  /**
   * Deliver (from, to] to the fan-out target. A range the buffer already
   * trimmed cannot be delivered any more: that is reported as an error (the
   * message goes to the DLQ after its retries), never skipped silently.
   */
  private async fanout(from: bigint, to: bigint): Promise<JobResult> {
    const target = this.opts.fanout;
    if (target == null) return { kind: 'fanout', delivered: 0 };
    const { buffer } = this.opts;
    if ((await buffer.floor()) > from) throw new Error(`fan-out range (${from}, ${to}] was trimmed from the buffer`);
    let after = from;
    let delivered = 0;
    while (after < to) {
      const page = await buffer.read(after, FANOUT_PAGE);
      const entries = page.entries.filter((e) => e.seq <= to);
      if (entries.length > 0) await target.deliver({ from, to }, entries);
      delivered += entries.length;
      if (page.lastSeq <= after || !page.hasMore) break;
      after = page.lastSeq;
    }
    return { kind: 'fanout', delivered };
  }
}
