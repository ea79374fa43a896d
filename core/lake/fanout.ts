import type { LogEntry } from '../engine/ports.ts';
import { isLakeError } from './errors.ts';
import type { ObjectStore } from './ports.ts';

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

/** Where a namespace's fan-out marks live, beside its checkpoints. */
export function fanoutRootFor(warehouse: string, namespace: readonly string[]): string {
  return `${warehouse.replace(/\/+$/, '')}/${namespace.join('/')}/_fanout`;
}

/**
 * How far a target has been delivered, per shard, on the object store. The
 * flush job asks for (mark, flushed] whenever the mark is behind, so a
 * fan-out owed by a flush that died before asking is asked for again by the
 * next one; trim never passes the mark, so nothing is trimmed undelivered.
 * A mark only rises; two jobs racing may leave the lower of their ends,
 * which costs a repeated delivery (targets accept those), never a gap.
 */
export class FanoutMarks {
  constructor(
    private readonly store: ObjectStore,
    private readonly root: string,
    readonly target: string,
  ) {}

  private uri(shard: number): string {
    return `${this.root}/${encodeURIComponent(this.target)}-${shard}.json`;
  }

  async get(shard: number): Promise<bigint> {
    let bytes: Uint8Array;
    try {
      bytes = await this.store.get(this.uri(shard));
    } catch (e) {
      if (isLakeError(e, 'NOT_FOUND')) return 0n;
      throw e;
    }
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { delivered?: unknown };
    if (typeof parsed.delivered !== 'string' || !/^\d{1,19}$/.test(parsed.delivered)) throw new Error(`fan-out mark ${this.uri(shard)} is malformed`);
    return BigInt(parsed.delivered);
  }

  async raise(shard: number, delivered: bigint): Promise<void> {
    if (delivered <= (await this.get(shard))) return;
    await this.store.put(this.uri(shard), new TextEncoder().encode(JSON.stringify({ delivered: delivered.toString() })));
  }
}
