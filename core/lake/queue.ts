import { LakeSyncError } from '../errors.ts';

/**
 * The lake's background work as messages on a queue (SQS on AWS). Every job
 * is idempotent: running one twice, or late, or after a newer one, leaves
 * the lake and the buffer as running it once would.
 *
 * - `flush`: buffer -> lake. The lake's per-table watermark makes a repeated
 *   flush a no-op; `ref` only names the request (the stream batch or the
 *   schedule tick that sent it) for deduplication on FIFO queues: the same
 *   request sent twice is one job. A flush always takes everything.
 * - `checkpoint`: build a checkpoint unless the newest one already holds
 *   `cursor` (when given) or everything flushed (when not); then trim.
 * - `compact`: rewrite one table's small files (a no-op when nothing is small).
 * - `lifecycle`: trim the buffer behind the lake and the newest checkpoint,
 *   expire old snapshots and remove orphan files of one table (or only trim).
 * - `fanout`: hand the log range (from, to] of one shard (default 0) to the
 *   configured fan-out target.
 */
export type LakeJob =
  | { readonly kind: 'flush'; readonly ref?: string }
  | { readonly kind: 'checkpoint'; readonly cursor?: string }
  | { readonly kind: 'compact'; readonly table: string }
  | { readonly kind: 'lifecycle'; readonly table?: string }
  | { readonly kind: 'fanout'; readonly from: string; readonly to: string; readonly shard?: string };

export type LakeJobKind = LakeJob['kind'];

/** The job-queue port. Adapters: SQS (core/adapters/sqs-job-queue.ts). */
export interface JobQueue {
  /** Enqueue jobs; resolves once the queue holds all of them durably. */
  send(jobs: readonly LakeJob[]): Promise<void>;
}

/** A job's deduplication key: equal jobs may be collapsed by FIFO queues. */
export function jobKey(job: LakeJob): string {
  switch (job.kind) {
    case 'flush':
      return `flush-${job.ref ?? 'any'}`;
    case 'checkpoint':
      return `checkpoint-${job.cursor ?? 'any'}`;
    case 'compact':
      return `compact-${job.table}`;
    case 'lifecycle':
      return `lifecycle-${job.table ?? '*'}`;
    case 'fanout':
      return job.shard === undefined ? `fanout-${job.from}-${job.to}` : `fanout-${job.shard}:${job.from}-${job.to}`;
  }
}

const DIGITS = /^[0-9]{1,20}$/;
/** A cursor: one seq per shard, joined by '.' (core/engine/shards.ts). */
const CURSOR = /^[0-9]{1,19}(\.[0-9]{1,19}){0,255}$/;
const SHARD = /^[0-9]{1,3}$/;
const REF = /^[A-Za-z0-9_.:-]{1,100}$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function field(o: Record<string, unknown>, name: string, pattern: RegExp, optional: boolean): string | undefined {
  const v = o[name];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || !pattern.test(v)) throw new LakeSyncError('INVALID_REQUEST', `job field ${name} is missing or malformed`);
  return v;
}

/** Parse a message body; throws LakeSyncError INVALID_REQUEST for anything that is not a job. */
export function parseLakeJob(body: string): LakeJob {
  let o: unknown;
  try {
    o = JSON.parse(body);
  } catch {
    throw new LakeSyncError('INVALID_REQUEST', 'job body is not JSON');
  }
  if (typeof o !== 'object' || o === null) throw new LakeSyncError('INVALID_REQUEST', 'job body is not an object');
  const r = o as Record<string, unknown>;
  const opt = <K extends string>(k: K, v: string | undefined): { [P in K]?: string } => (v === undefined ? {} : ({ [k]: v } as { [P in K]: string }));
  switch (r['kind']) {
    case 'flush':
      return { kind: 'flush', ...opt('ref', field(r, 'ref', REF, true)) };
    case 'checkpoint':
      return { kind: 'checkpoint', ...opt('cursor', field(r, 'cursor', CURSOR, true)) };
    case 'compact':
      return { kind: 'compact', table: field(r, 'table', NAME, false) as string };
    case 'lifecycle':
      return { kind: 'lifecycle', ...opt('table', field(r, 'table', NAME, true)) };
    case 'fanout':
      return {
        kind: 'fanout',
        from: field(r, 'from', DIGITS, false) as string,
        to: field(r, 'to', DIGITS, false) as string,
        ...opt('shard', field(r, 'shard', SHARD, true)),
      };
    default:
      throw new LakeSyncError('INVALID_REQUEST', `unknown job kind ${JSON.stringify(r['kind'])}`);
  }
}
