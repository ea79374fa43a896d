import { LakeSyncError } from './errors.ts';

/**
 * A 64-bit hybrid logical clock value: the upper 48 bits are wall-clock
 * milliseconds, the lower 16 bits a logical counter. Ordered as an unsigned
 * integer, so `a < b` on the bigint is the causal order.
 */
export type Hlc = bigint;

export const COUNTER_BITS = 16n;
export const MAX_COUNTER = (1 << 16) - 1;
export const MAX_WALL_MS = 2 ** 48 - 1;
const COUNTER_MASK = (1n << COUNTER_BITS) - 1n;

export function encodeHlc(wallMs: number, counter: number): Hlc {
  return (BigInt(wallMs) << COUNTER_BITS) | BigInt(counter);
}

export function hlcWall(h: Hlc): number {
  return Number(h >> COUNTER_BITS);
}

export function hlcCounter(h: Hlc): number {
  return Number(h & COUNTER_MASK);
}

export function isValidHlc(h: Hlc): boolean {
  return h >= 0n && h <= 0xffff_ffff_ffff_ffffn;
}

export interface HlcOptions {
  /** Wall clock in milliseconds; injected so tests control time. */
  wallClock?: () => number;
  /** A remote clock more than this far ahead of our wall clock is refused. */
  maxDriftMs?: number;
  /** Start from a persisted value so the clock never goes backwards across restarts. */
  last?: Hlc;
}

/**
 * Monotonic hybrid logical clock. `now()` for local events, `receive()` for
 * remote timestamps. When the 16-bit counter would overflow, the clock borrows
 * the next millisecond instead, so values stay strictly increasing.
 */
export class HybridLogicalClock {
  private wallMs = 0;
  private counter = 0;
  private readonly wallClock: () => number;
  readonly maxDriftMs: number;

  constructor(options: HlcOptions = {}) {
    this.wallClock = options.wallClock ?? Date.now;
    this.maxDriftMs = options.maxDriftMs ?? 60_000;
    if (options.last !== undefined) {
      this.wallMs = hlcWall(options.last);
      this.counter = hlcCounter(options.last);
    }
  }

  /** Timestamp a local event. */
  now(): Hlc {
    const physical = this.physical();
    if (physical > this.wallMs) {
      this.wallMs = physical;
      this.counter = 0;
    } else {
      this.tick();
    }
    return encodeHlc(this.wallMs, this.counter);
  }

  /**
   * Merge a remote timestamp: the result is greater than both the local clock
   * and the remote value. Throws CLOCK_DRIFT when the remote wall time is more
   * than `maxDriftMs` ahead of our physical clock (a broken or hostile peer
   * must not drag every clock into the future).
   */
  receive(remote: Hlc): Hlc {
    const physical = this.checkDrift(remote);
    const remoteWall = hlcWall(remote);
    const remoteCounter = hlcCounter(remote);
    const wall = Math.max(physical, this.wallMs, remoteWall);
    if (wall === this.wallMs && wall === remoteWall) {
      this.counter = Math.max(this.counter, remoteCounter);
      this.tick();
    } else if (wall === this.wallMs) {
      this.tick();
    } else if (wall === remoteWall) {
      this.wallMs = wall;
      this.counter = remoteCounter;
      this.tick();
    } else {
      this.wallMs = wall;
      this.counter = 0;
    }
    return encodeHlc(this.wallMs, this.counter);
  }

  /** Throws CLOCK_DRIFT if `remote` is too far ahead; returns the physical time used. */
  checkDrift(remote: Hlc, deltaIndex = -1): number {
    const physical = this.physical();
    const ahead = hlcWall(remote) - physical;
    if (ahead > this.maxDriftMs) {
      throw new LakeSyncError('CLOCK_DRIFT', `remote clock is ${ahead} ms ahead (max ${this.maxDriftMs} ms)`, {
        deltaIndex,
      });
    }
    return physical;
  }

  /** The greatest remote HLC `receive()` accepts right now (one clock read for a whole batch). */
  driftLimit(): Hlc {
    return encodeHlc(this.physical() + this.maxDriftMs, MAX_COUNTER);
  }

  /** The last value handed out (for persistence). */
  peek(): Hlc {
    return encodeHlc(this.wallMs, this.counter);
  }

  private tick(): void {
    if (this.counter >= MAX_COUNTER) {
      // Counter exhausted within one millisecond: borrow the next one.
      this.wallMs += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
  }

  private physical(): number {
    const ms = Math.floor(this.wallClock());
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_WALL_MS) {
      throw new LakeSyncError('INTERNAL', `wall clock returned ${ms}`);
    }
    return ms;
  }
}
