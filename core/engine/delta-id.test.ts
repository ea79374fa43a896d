import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { computeDeltaId, makeDelta, type Delta, type Op } from '../delta.ts';
import { deltaIdMatches } from './delta-id.ts';

const value = fc.oneof(
  fc.constant(null),
  fc.string({ unit: 'grapheme' }),
  fc.string({ maxLength: 80 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.json().map((json) => ({ json })),
);

describe('deltaIdMatches', () => {
  it('property: agrees with computeDeltaId on every delta, and refuses any other id', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 70 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.constantFrom<Op>('insert', 'update', 'delete'),
        fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), value),
        fc.string({ minLength: 1, maxLength: 12 }),
        (rowId, hlc, op, columns, clientId) => {
          const d = makeDelta({ table: 'todos', rowId, op, columns, hlc, clientId });
          expect(deltaIdMatches(d)).toBe(true);
          expect(computeDeltaId(d)).toBe(d.deltaId);
          const flipped = (d.deltaId[0] === '0' ? '1' : '0') + d.deltaId.slice(1);
          expect(deltaIdMatches({ ...d, deltaId: flipped })).toBe(false);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses ids of the wrong length or case, and ignores column order', () => {
    const d: Delta = makeDelta({ table: 't', rowId: 'r', op: 'update', columns: { b: 1n, a: 'x', Z: -0 }, hlc: 5n, clientId: 'c' });
    expect(deltaIdMatches(d)).toBe(true);
    expect(deltaIdMatches({ ...d, columns: { Z: 0, a: 'x', b: 1n } })).toBe(true);
    expect(deltaIdMatches({ ...d, deltaId: d.deltaId.toUpperCase() })).toBe(d.deltaId === d.deltaId.toUpperCase());
    expect(deltaIdMatches({ ...d, deltaId: `${d.deltaId}00` })).toBe(false);
    expect(deltaIdMatches({ ...d, deltaId: d.deltaId.slice(0, 31) })).toBe(false);
    expect(deltaIdMatches({ ...d, deltaId: '' })).toBe(false);
    // A large input grows the shared buffer and still hashes right.
    const big = makeDelta({ table: 't', rowId: 'r', op: 'insert', columns: { a: 'é'.repeat(50_000) }, hlc: 6n, clientId: 'c' });
    expect(deltaIdMatches(big)).toBe(true);
    expect(deltaIdMatches(d)).toBe(true);
  });
});
