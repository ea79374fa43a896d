import type { DeltaBuffer } from '../engine/ports.ts';
import { anyAbove, asShards, distance, encodeCursor, parseCursor, type BufferShards } from '../engine/shards.ts';
import type { Checkpoints } from './checkpoint.ts';
import type { FanoutMarks, FanoutTarget } from './fanout.ts';
import type { Lake } from './flush.ts';
import { compactTable, expireSnapshots, removeOrphans } from './maintenance.ts';
import type { JobQueue, LakeJob } from './queue.ts';
import { checkpointPosition, flushShards, trimShards, type FlushSummary } from './shard-steps.ts';

/**
 * Runs one queued lake job (see queue.ts) against the buffer and the lake:
 * the queue-driven counterpart of LakeJobs.cycle()/maintain() (jobs.ts),
 * for runtimes where flush, checkpoint and maintenance are separate
 * invocations that share no memory. Nothing is kept between jobs; every
 * decision is re-read from the buffer, the catalog and the newest
 * checkpoint, so jobs may repeat, arrive late or out of order.
 */
/** A checkpoint directory without a manifest, written to within this, is a build under way (one chunk takes seconds). */
const BUILD_QUIET_MS = 5 * 60_000;

export interface JobRunnerOptions {
  /** One buffer, or the shards of a sharded deployment. */
  readonly buffer: DeltaBuffer | BufferShards;
  readonly lake: Lake;
  readonly checkpoints: Checkpoints;
  readonly schemaVersion: number;
  /** Where follow-up jobs go (checkpoint after flush, fan-out); none are sent without one. */
  readonly jobs?: JobQueue;
  /** Ask for a checkpoint once this many deltas were flushed past the newest one (default 100,000). */
  readonly checkpointEvery?: number;
  /** Deltas the buffer (each shard) keeps beyond what the lake and the newest checkpoint hold (default 100,000). */
  readonly retainDeltas?: number;
  /** Snapshots younger than this stay (default 7 days); the newest 5 always stay. */
  readonly snapshotRetentionMs?: number;
  /** Unreferenced files younger than this may belong to a flush in flight (default 1 hour). */
  readonly orphanAgeMs?: number;
  readonly compactTargetBytes?: number;
  /** Fan-out target; null/absent: fan-out jobs are acknowledged and do nothing. */
  readonly fanout?: FanoutTarget | null;
  /** Where the target's delivered marks live; required with a target. */
  readonly fanoutMarks?: FanoutMarks;
  readonly now?: () => number;
}

export type JobResult =
  | { readonly kind: 'flush'; readonly flush: FlushSummary; readonly followUps: readonly LakeJob[] }
  | { readonly kind: 'checkpoint'; readonly checkpoint: string | null; readonly floor: string }
  | { readonly kind: 'compact'; readonly table: string; readonly rewritten: number }
  | { readonly kind: 'lifecycle'; readonly table: string | null; readonly expired: number; readonly orphans: number; readonly floor: string }
  | { readonly kind: 'fanout'; readonly delivered: number };

const FANOUT_PAGE = 1000;

export class LakeJobRunner {
  private readonly shards: BufferShards;

  private readonly marks: FanoutMarks | null;

  constructor(private readonly opts: JobRunnerOptions) {
    this.shards = asShards(opts.buffer);
    this.marks = opts.fanout != null ? (opts.fanoutMarks ?? null) : null;
    if (opts.fanout != null && this.marks === null) throw new Error('a fan-out target needs fanoutMarks');
  }

  /**
   * Each shard's delivered mark (null without a target). A target that
   * never delivered from a shard starts where the buffer starts (its floor):
   * what is older is in the lake, not in the buffer.
   */
  private async delivered(): Promise<bigint[] | null> {
    const marks = this.marks;
    if (marks === null) return null;
    return Promise.all(
      this.shards.buffers.map(async (buffer, k) => {
        const mark = await marks.get(k);
        if (mark !== null) return mark;
        const floor = await buffer.floor();
        await marks.raise(k, floor);
        return floor;
      }),
    );
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async run(job: LakeJob): Promise<JobResult> {
    switch (job.kind) {
      case 'flush':
        return this.flush();
      case 'checkpoint':
        return this.checkpoint(job.cursor === undefined ? null : parseCursor(job.cursor, this.shards.count));
      case 'compact':
        return this.compact(job.table);
      case 'lifecycle':
        return this.lifecycle(job.table ?? null);
      case 'fanout':
        return this.fanout(Number(job.shard ?? '0'), BigInt(job.from), BigInt(job.to));
    }
  }

  private latestCheckpoint(): Promise<bigint[]> {
    return checkpointPosition(this.opts.checkpoints, this.shards);
  }

  /**
   * Flush everything up to the head, then ask for a checkpoint when due. A
   * retry after a crash anywhere flushes only what the tables lack, and
   * still sends the checkpoint job it owes (the decision is re-read).
   */
  private async flush(): Promise<JobResult> {
    const { lake } = this.opts;
    const report = await flushShards(lake, this.shards);
    const flushed = await this.shards.flushed();
    const followUps: LakeJob[] = [];
    if (distance(flushed, await this.latestCheckpoint()) >= BigInt(this.opts.checkpointEvery ?? 100_000)) {
      followUps.push({ kind: 'checkpoint', cursor: encodeCursor(flushed) });
    }
    // Fan-out owed is read from durable marks, not from this flush's report,
    // so a flush that died before sending is made good by the next one.
    (await this.delivered())?.forEach((mark, k) => {
      const to = flushed[k] as bigint;
      if (to <= mark) return;
      const range = { kind: 'fanout', from: mark.toString(), to: to.toString() } as const;
      followUps.push(this.shards.count === 1 ? range : { ...range, shard: String(k) });
    });
    if (followUps.length > 0 && this.opts.jobs !== undefined) await this.opts.jobs.send(followUps);
    return { kind: 'flush', flush: report, followUps };
  }

  /**
   * Build unless the newest checkpoint already holds `wanted` (or everything
   * flushed), or another build is under way (the next flush asks again if it
   * is still owed); then trim.
   */
  private async checkpoint(wanted: bigint[] | null): Promise<JobResult> {
    const { lake, checkpoints } = this.opts;
    // The cursor is read before the state tables: they hold at least everything up to it.
    const flushed = await this.shards.flushed();
    const latest = await this.latestCheckpoint();
    let id: string | null = null;
    const due = anyAbove(flushed, latest) && (wanted === null || anyAbove(wanted, latest));
    if (due && !(await checkpoints.building(Date.now() - BUILD_QUIET_MS))) {
      const m = await checkpoints.build(lake.stateTables(), { cursor: flushed, schemaVersion: this.opts.schemaVersion, now: this.now() });
      id = m.checkpointId;
      await checkpoints.gc({ keepLast: 2, olderThanMs: this.now() - 10 * 60_000 });
    }
    return { kind: 'checkpoint', checkpoint: id, floor: await this.trim() };
  }

  /** Forget only what both the lake and the newest checkpoint hold, minus a window kept for pulls. */
  private async trim(): Promise<string> {
    const keep = await this.latestCheckpoint();
    // Nothing is trimmed that the fan-out target has not been given.
    (await this.delivered())?.forEach((mark, k) => {
      if (mark < (keep[k] as bigint)) keep[k] = mark;
    });
    const floors = await trimShards(this.shards, keep, BigInt(this.opts.retainDeltas ?? 100_000));
    return encodeCursor(floors);
  }

  /**
   * Whether the lake table exists. Asked first, so that only "no table yet"
   * (nothing flushed to it) is skipped: any NOT_FOUND after this (a data file
   * missing from the store, a table dropped meanwhile) fails the job.
   */
  private async exists(table: string): Promise<boolean> {
    return (await this.opts.lake.catalog.loadTable(this.opts.lake.ident(table))) !== null;
  }

  private async compact(table: string): Promise<JobResult> {
    if (!(await this.exists(table))) return { kind: 'compact', table, rewritten: 0 };
    const c = await compactTable(this.opts.lake, table, this.opts.compactTargetBytes === undefined ? {} : { targetFileBytes: this.opts.compactTargetBytes });
    return { kind: 'compact', table, rewritten: c.rewrittenDataFiles };
  }

  private async lifecycle(table: string | null): Promise<JobResult> {
    const floor = await this.trim();
    if (table === null || !(await this.exists(table))) return { kind: 'lifecycle', table, expired: 0, orphans: 0, floor };
    const now = this.now();
    const e = await expireSnapshots(this.opts.lake, table, { olderThanMs: now - (this.opts.snapshotRetentionMs ?? 7 * 86_400_000), retainLast: 5 });
    const o = await removeOrphans(this.opts.lake, table, { olderThanMs: now - (this.opts.orphanAgeMs ?? 3_600_000) });
    return { kind: 'lifecycle', table, expired: e.expiredSnapshots, orphans: o.orphans.length, floor };
  }

  /**
   * Deliver (from, to] of one shard to the fan-out target, from where its
   * mark stands, then raise the mark. A range the buffer already trimmed
   * cannot be delivered any more: that is reported as an error (the message
   * goes to the DLQ after its retries), never skipped silently.
   */
  private async fanout(shard: number, from: bigint, to: bigint): Promise<JobResult> {
    const target = this.opts.fanout;
    const marks = this.marks;
    if (target == null || marks === null) return { kind: 'fanout', delivered: 0 };
    const buffer = this.shards.buffers[shard];
    if (buffer === undefined) throw new Error(`fan-out job names shard ${shard}, but there are ${this.shards.count}`);
    const mark = await marks.get(shard);
    if (mark !== null && mark > from) from = mark;
    if (from >= to) return { kind: 'fanout', delivered: 0 };
    if ((await buffer.floor()) > from) throw new Error(`fan-out range (${from}, ${to}] was trimmed from the buffer`);
    let after = from;
    let delivered = 0;
    while (after < to) {
      const page = await buffer.read(after, FANOUT_PAGE);
      const entries = page.entries.filter((e) => e.seq <= to);
      if (entries.length > 0) await target.deliver({ shard, from, to }, entries);
      delivered += entries.length;
      if (page.lastSeq <= after || !page.hasMore) break;
      after = page.lastSeq;
    }
    await marks.raise(shard, to);
    return { kind: 'fanout', delivered };
  }
}
