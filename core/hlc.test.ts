import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HybridLogicalClock, encodeHlc, hlcCounter, hlcWall, MAX_COUNTER } from './hlc.ts';
import { LakeSyncError } from './errors.ts';

describe('HybridLogicalClock', () => {
  it('packs 48-bit milliseconds and a 16-bit counter', () => {
    const h = encodeHlc(1_700_000_000_000, 42);
    expect(hlcWall(h)).toBe(1_700_000_000_000);
    expect(hlcCounter(h)).toBe(42);
  });

  it('ticks the counter when the wall clock stands still or goes back', () => {
    let t = 1000;
    const c = new HybridLogicalClock({ wallClock: () => t });
    const a = c.now();
    const b = c.now();
    t = 900;
    const d = c.now();
    expect(b).toBeGreaterThan(a);
    expect(d).toBeGreaterThan(b);
    expect(hlcWall(d)).toBe(1000);
  });

  it('borrows the next millisecond when the counter overflows', () => {
    const c = new HybridLogicalClock({ wallClock: () => 5, last: encodeHlc(5, MAX_COUNTER - 1) });
    const a = c.now();
    expect(hlcCounter(a)).toBe(MAX_COUNTER);
    const b = c.now();
    expect(hlcWall(b)).toBe(6);
    expect(hlcCounter(b)).toBe(0);
    expect(b).toBeGreaterThan(a);
  });

  it('refuses a remote clock too far ahead with CLOCK_DRIFT', () => {
    const c = new HybridLogicalClock({ wallClock: () => 10_000, maxDriftMs: 1000 });
    expect(() => c.receive(encodeHlc(11_001, 0))).toThrowError(LakeSyncError);
    try {
      c.receive(encodeHlc(20_000, 0));
    } catch (e) {
      expect((e as LakeSyncError).code).toBe('CLOCK_DRIFT');
    }
    // Within the bound is fine and the clock jumps forward.
    const r = c.receive(encodeHlc(10_900, 7));
    expect(hlcWall(r)).toBe(10_900);
    expect(hlcCounter(r)).toBe(8);
  });

  it('property: now() and receive() are strictly monotonic and dominate remote values', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('now' as const), advance: fc.integer({ min: -50, max: 50 }) }),
            fc.record({
              kind: fc.constant('recv' as const),
              advance: fc.integer({ min: -50, max: 50 }),
              remoteOffset: fc.integer({ min: -100, max: 100 }),
              remoteCounter: fc.integer({ min: 0, max: MAX_COUNTER }),
            }),
          ),
          { maxLength: 200 },
        ),
        (ops) => {
          let t = 1_000_000;
          const c = new HybridLogicalClock({ wallClock: () => t, maxDriftMs: 1000 });
          let last = -1n;
          for (const op of ops) {
            t = Math.max(0, t + op.advance);
            let v: bigint;
            if (op.kind === 'now') {
              v = c.now();
            } else {
              const remote = encodeHlc(Math.max(0, t + op.remoteOffset), op.remoteCounter);
              v = c.receive(remote);
              expect(v).toBeGreaterThan(remote);
            }
            expect(v).toBeGreaterThan(last);
            expect(hlcWall(v)).toBeGreaterThanOrEqual(0);
            last = v;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
