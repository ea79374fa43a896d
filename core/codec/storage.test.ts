import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { makeDelta, type Op } from '../delta.ts';
import type { RowState, Stamp } from '../merge.ts';
import type { ColumnValue } from '../values.ts';
import { Packer, packRow, packSegment, SegmentReader, unpackRow, type StoredEntry } from './storage.ts';

const value: fc.Arbitrary<ColumnValue> = fc.oneof(
  fc.constant(null),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ maxLength: 300 }).map((s) => s.toWellFormed()),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.double(),
  fc.boolean(),
  fc.json().map((json) => ({ json })),
);
const name = fc.oneof(fc.string({ minLength: 1, maxLength: 10, unit: 'grapheme' }), fc.constantFrom('__proto__', 'constructor', 'title'));
const columns = fc.dictionary(name, value, { maxKeys: 6 });
const hlc = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const client = fc.constantFrom('c1', 'client-2', 'ü');

const entry: fc.Arbitrary<StoredEntry> = fc.record({
  delta: fc
    .record({
      table: fc.constantFrom('todos', 'notes'),
      rowId: fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme' }),
      op: fc.constantFrom<Op>('insert', 'update', 'delete'),
      columns,
      hlc,
      clientId: client,
    })
    .map((c) => makeDelta(c)),
  before: fc.option(columns, { nil: null }),
  after: fc.option(columns, { nil: null }),
  fresh: fc.boolean(),
});

const stamp: fc.Arbitrary<Stamp> = fc.record({ hlc, clientId: client });

describe('buffer storage encodings (version 2)', () => {
  it('property: a segment reads back every entry exactly, and skips to any of them', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 12 }), fc.nat(), (entries, k) => {
        const p = new Packer();
        p.byte(0xff); // segments are packed after other bytes in the shared buffer
        const at = p.pos;
        packSegment(p, entries);
        const bytes = p.view(at).slice();
        const r = new SegmentReader(bytes);
        expect(r.count).toBe(entries.length);
        const back = entries.map((_, i) => r.next(BigInt(i + 1)));
        expect(back.map((e) => e.seq)).toEqual(entries.map((_, i) => BigInt(i + 1)));
        expect(back.map(({ delta, before, after, fresh }) => ({ delta, before, after, fresh }))).toEqual(entries);
        const skip = k % entries.length;
        const r2 = new SegmentReader(bytes);
        r2.skip(skip);
        expect(r2.next(7n).delta).toEqual(entries[skip]?.delta);
      }),
      { numRuns: 500 },
    );
  });

  it('property: a row state reads back exactly, sharing equal stamps', () => {
    fc.assert(
      fc.property(
        fc.option(stamp, { nil: null }),
        fc.option(stamp, { nil: null }),
        fc.dictionary(name, fc.record({ value, stamp }), { maxKeys: 8 }),
        (inserted, deleted, cols) => {
          const row: RowState = { table: 'todos', rowId: 'r', inserted, deleted, columns: cols };
          const p = new Packer();
          packRow(p, row);
          const back = unpackRow('todos', 'r', p.view(0).slice());
          expect(back).toEqual(row);
          expect(Object.keys(back.columns)).toEqual(Object.keys(cols));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses bytes it did not write', () => {
    expect(() => new SegmentReader(new Uint8Array([9]))).toThrow(RangeError);
    expect(() => unpackRow('t', 'r', new Uint8Array([1]))).toThrow(RangeError);
    const p = new Packer();
    packSegment(p, []);
    const r = new SegmentReader(p.view(0));
    expect(r.count).toBe(0);
    expect(() => r.next(1n)).toThrow(RangeError);
  });
});
