import { LakeSyncError } from '../errors.ts';
import type { DeltaBuffer } from './ports.ts';

/**
 * A position in a sharded log: one seq per shard. The wire cursor is its
 * components joined by '.'; with one shard that is the plain seq, so a
 * single-shard deployment's cursors look as they always did.
 */
export type Position = readonly bigint[];

export function encodeCursor(position: Position): string {
  return position.join('.');
}

const SEQ = /^\d{1,19}$/;

/** A cursor this deployment issued, as a position of `shards` components; '' is the start. */
export function parseCursor(cursor: string, shards: number): bigint[] {
  if (cursor === '') return new Array<bigint>(shards).fill(0n);
  const parts = cursor.split('.');
  if (parts.length !== shards || !parts.every((p) => SEQ.test(p))) {
    throw new LakeSyncError('INVALID_CURSOR', 'cursor is not one this server issued');
  }
  return parts.map((p) => BigInt(p));
}

/** True when `a` is past `b` in any shard. */
export function anyAbove(a: Position, b: Position): boolean {
  return a.some((s, i) => s > (b[i] as bigint));
}

/** How many seqs `a` is past `b`, summed over shards (negative parts count as 0). */
export function distance(a: Position, b: Position): bigint {
  let total = 0n;
  a.forEach((s, i) => {
    if (s > (b[i] as bigint)) total += s - (b[i] as bigint);
  });
  return total;
}

/** 32-bit FNV-1a over the table name's UTF-16 code units: stable across runtimes and releases. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The buffers of one deployment and which table goes to which. Each shard
 * is its own log with its own serialization point, so a hot table only
 * contends with the tables that hash to its shard. A table's shard is a
 * hash of its name modulo the shard count: the count is fixed for the
 * life of a deployment (changing it moves tables between logs whose seqs,
 * flush marks and lake watermarks do not line up).
 */
export class BufferShards {
  readonly buffers: readonly DeltaBuffer[];

  constructor(buffers: readonly DeltaBuffer[]) {
    if (buffers.length === 0) throw new RangeError('at least one shard');
    this.buffers = buffers;
  }

  get count(): number {
    return this.buffers.length;
  }

  shardOf(table: string): number {
    return this.buffers.length === 1 ? 0 : fnv1a(table) % this.buffers.length;
  }

  bufferOf(table: string): DeltaBuffer {
    return this.buffers[this.shardOf(table)] as DeltaBuffer;
  }

  heads(): Promise<bigint[]> {
    return Promise.all(this.buffers.map((b) => b.head()));
  }

  floors(): Promise<bigint[]> {
    return Promise.all(this.buffers.map((b) => b.floor()));
  }

  flushed(): Promise<bigint[]> {
    return Promise.all(this.buffers.map((b) => b.flushedThrough()));
  }

  async close(): Promise<void> {
    await Promise.all(this.buffers.map((b) => b.close()));
  }
}

/** A single buffer is a deployment of one shard. */
export function asShards(buffer: DeltaBuffer | BufferShards): BufferShards {
  return buffer instanceof BufferShards ? buffer : new BufferShards([buffer]);
}
