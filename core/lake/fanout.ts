import type { LogEntry } from '../engine/ports.ts';
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
 *
 * A mark only rises, also under racing jobs: each delivery writes its own
 * object named by its end (write-if-absent), the mark is the highest name,
 * and lower ones are pruned. (One read-then-write object could be lowered
 * by a slower job finishing a shorter range, and then point below what
 * trim already removed.)
 */
export class FanoutMarks {
  constructor(
    private readonly store: ObjectStore,
    private readonly root: string,
    readonly target: string,
  ) {}

  private prefix(shard: number): string {
    return `${this.root}/${encodeURIComponent(this.target)}/${shard}/`;
  }

  private async ends(shard: number): Promise<{ uri: string; end: bigint }[]> {
    const out: { uri: string; end: bigint }[] = [];
    const prefix = this.prefix(shard);
    for await (const o of this.store.list(prefix)) {
      const name = o.uri.slice(prefix.length);
      if (/^\d{20}$/.test(name)) out.push({ uri: o.uri, end: BigInt(name) });
    }
    return out;
  }

  /** The delivered mark, or null when this target never delivered from this shard. */
  async get(shard: number): Promise<bigint | null> {
    let mark: bigint | null = null;
    for (const { end } of await this.ends(shard)) if (mark === null || end > mark) mark = end;
    return mark;
  }

  async raise(shard: number, delivered: bigint): Promise<void> {
    const current = await this.get(shard);
    if (current !== null && delivered <= current) return;
    await this.store.putIfAbsent(`${this.prefix(shard)}${delivered.toString().padStart(20, '0')}`, new Uint8Array(0));
    const ends = await this.ends(shard);
    const top = ends.reduce((m, e) => (e.end > m ? e.end : m), delivered);
    const stale = ends.filter((e) => e.end < top).map((e) => e.uri);
    if (stale.length > 0) await this.store.delete(stale);
  }
}
