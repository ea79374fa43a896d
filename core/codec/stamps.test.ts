import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packStamps, unpackStamps } from './stamps.ts';

describe('stamp runs', () => {
  it('round-trip any strictly increasing u64 hlcs with any seqs', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { minLength: 1, maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { minLength: 200, maxLength: 200 }),
        (hlcs, seqPool) => {
          const sorted = [...hlcs].sort((a, b) => (a < b ? -1 : 1));
          const seqs = sorted.map((_, i) => seqPool[i] as number);
          expect(unpackStamps(packStamps({ hlcs: sorted, seqs }))).toEqual({ hlcs: sorted, seqs });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('packs a push of close hlcs and consecutive seqs in a few bytes per stamp', () => {
    const hlcs = Array.from({ length: 1000 }, (_, i) => (1_700_000_000_000n << 16n) + BigInt(i));
    const bytes = packStamps({ hlcs, seqs: hlcs.map((_, i) => 5000 + i) });
    expect(bytes.length).toBeLessThan(2 * 1000 + 16);
  });

  it('refuses unsorted or repeated hlcs, and corrupt bytes', () => {
    expect(() => packStamps({ hlcs: [2n, 1n], seqs: [1, 2] })).toThrow(RangeError);
    expect(() => packStamps({ hlcs: [2n, 2n], seqs: [1, 2] })).toThrow(RangeError);
    const bytes = packStamps({ hlcs: [1n, 2n], seqs: [1, 2] });
    expect(() => unpackStamps(bytes.subarray(0, bytes.length - 1))).toThrow(RangeError);
    expect(() => unpackStamps(new Uint8Array([...bytes, 0]))).toThrow(RangeError);
  });
});
