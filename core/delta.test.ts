import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { computeDeltaId, makeDelta } from './delta.ts';
import { decodeDelta, encodeDelta } from './codec/storage.ts';

describe('delta ids', () => {
  const base = { table: 'todos', rowId: 'r1', op: 'update' as const, hlc: 123n, clientId: 'c1' };

  it('is deterministic and independent of column order', () => {
    expect(computeDeltaId({ ...base, columns: { a: 'x', b: 1n } })).toBe(computeDeltaId({ ...base, columns: { b: 1n, a: 'x' } }));
    expect(computeDeltaId({ ...base, columns: { a: 'x' } })).toMatch(/^[0-9a-f]{32}$/);
  });

  it('tells an explicit null from an absent column, and types apart', () => {
    const ids = new Set([
      computeDeltaId({ ...base, columns: {} }),
      computeDeltaId({ ...base, columns: { a: null } }),
      computeDeltaId({ ...base, columns: { a: '1' } }),
      computeDeltaId({ ...base, columns: { a: 1n } }),
      computeDeltaId({ ...base, columns: { a: 1 } }),
      computeDeltaId({ ...base, columns: { a: true } }),
      computeDeltaId({ ...base, columns: { a: { json: '1' } } }),
    ]);
    expect(ids.size).toBe(7);
  });

  it('changes with every field', () => {
    const id = computeDeltaId({ ...base, columns: { a: 'x' } });
    for (const patch of [{ table: 't2' }, { rowId: 'r2' }, { op: 'insert' as const }, { hlc: 124n }, { clientId: 'c2' }]) {
      expect(computeDeltaId({ ...base, columns: { a: 'x' }, ...patch })).not.toBe(id);
    }
  });

  it('property: storage encoding round-trips exactly', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 8 }),
          fc.oneof(
            fc.constant(null),
            fc.string(),
            fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
            fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
            fc.boolean(),
            fc.json().map((json) => ({ json })),
          ),
        ),
        (rowId, hlc, columns) => {
          const d = makeDelta({ table: 'todos', rowId, op: 'insert', columns, hlc, clientId: 'c' });
          const back = decodeDelta(encodeDelta(d));
          expect(back).toEqual(d);
          expect(computeDeltaId(back)).toBe(d.deltaId);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
