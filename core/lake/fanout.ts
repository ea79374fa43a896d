import type { LogEntry } from '../engine/ports.ts';

/**
 * Fan-out: hand flushed deltas to another system (a warehouse, a stream).
 * No target ships yet, and none is configured by default: the `fanout` job
 * kind then acknowledges and does nothing. A target must accept the same
 * range twice (jobs are delivered at least once): deduplicate by delta id,
 * or by the range itself.
 */
export interface FanoutTarget {
  readonly name: string;
  /** Entries of one shard's log range (from, to], in seq order, in pages. */
  deliver(range: { readonly shard: number; readonly from: bigint; readonly to: bigint }, entries: readonly LogEntry[]): Promise<void>;
}
