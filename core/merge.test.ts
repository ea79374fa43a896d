import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { makeDelta, type Delta, type Op } from './delta.ts';
import { applyDelta, emptyRow, isLive, mergeRows, visibleValues, type RowState } from './merge.ts';
import type { ColumnValue } from './values.ts';

const CLIENTS = ['a', 'b', 'c'];
const ROWS = ['r1', 'r2'];
const COLS = ['x', 'y', 'z'];

/** A canonical, comparable form of a row state (columns sorted, bigints as strings). */
function canon(row: RowState | undefined): unknown {
  if (row === undefined) return null;
  const cols = Object.keys(row.columns)
    .sort()
    .map((n) => {
      const c = row.columns[n]!;
      return [n, String(c.value), c.stamp.hlc.toString(), c.stamp.clientId];
    });
  const stamp = (s: { hlc: bigint; clientId: string } | null) => (s === null ? null : `${s.hlc}/${s.clientId}`);
  return { inserted: stamp(row.inserted), deleted: stamp(row.deleted), cols };
}

const valueArb: fc.Arbitrary<ColumnValue> = fc.oneof(
  fc.constant(null),
  fc.string({ maxLength: 3 }),
  fc.integer({ min: -5, max: 5 }).map(BigInt),
  fc.boolean(),
);

/** Deltas with unique (hlc, client) stamps: a real client never reuses an HLC. */
const deltasArb: fc.Arbitrary<Delta[]> = fc
  .uniqueArray(
    fc.record({
      hlc: fc.integer({ min: 1, max: 40 }),
      client: fc.constantFrom(...CLIENTS),
      row: fc.constantFrom(...ROWS),
      op: fc.constantFrom<Op>('insert', 'update', 'delete', 'insert', 'update'),
      cols: fc.dictionary(fc.constantFrom(...COLS), valueArb, { minKeys: 1, maxKeys: 3 }),
    }),
    { selector: (d) => `${d.hlc}/${d.client}`, minLength: 1, maxLength: 25 },
  )
  .map((raw) =>
    raw.map((r) =>
      makeDelta({
        table: 't',
        rowId: r.row,
        op: r.op,
        columns: r.op === 'delete' ? {} : r.cols,
        hlc: BigInt(r.hlc),
        clientId: r.client,
      }),
    ),
  );

function replay(deltas: readonly Delta[]): Map<string, RowState> {
  const rows = new Map<string, RowState>();
  for (const d of deltas) rows.set(d.rowId, applyDelta(rows.get(d.rowId), d));
  return rows;
}

function canonAll(rows: Map<string, RowState>): unknown {
  return ROWS.map((r) => canon(rows.get(r)));
}

/** Fold a subset of deltas into per-row states. */
function stateOf(deltas: readonly Delta[], rowId: string): RowState {
  let s = emptyRow('t', rowId);
  for (const d of deltas) if (d.rowId === rowId) s = applyDelta(s, d);
  return s;
}

describe('merge (column-level LWW with per-column stamps)', () => {
  it('property: N replicas, random order, random duplication, end identical', () => {
    fc.assert(
      fc.property(
        deltasArb,
        fc.array(fc.array(fc.nat(), { maxLength: 40 }), { minLength: 2, maxLength: 5 }),
        (deltas, orders) => {
          const reference = canonAll(replay(deltas));
          for (const picks of orders) {
            // Each replica sees every delta at least once, shuffled, with duplicates.
            const seq = [...deltas, ...picks.map((p) => deltas[p % deltas.length]!)];
            for (let i = seq.length - 1; i > 0; i--) {
              const j = (picks[i % Math.max(picks.length, 1)] ?? i) % (i + 1);
              [seq[i], seq[j]] = [seq[j]!, seq[i]!];
            }
            expect(canonAll(replay(seq))).toEqual(reference);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('property: merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(deltasArb, fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 25, maxLength: 25 }), (deltas, parts) => {
        const groups: Delta[][] = [[], [], []];
        deltas.forEach((d, i) => groups[parts[i]!]!.push(d));
        for (const rowId of ROWS) {
          const [a, b, c] = groups.map((g) => stateOf(g, rowId)) as [RowState, RowState, RowState];
          expect(canon(mergeRows(a, b))).toEqual(canon(mergeRows(b, a)));
          expect(canon(mergeRows(mergeRows(a, b), c))).toEqual(canon(mergeRows(a, mergeRows(b, c))));
          expect(canon(mergeRows(a, a))).toEqual(canon(a));
          // State merge agrees with replaying every delta.
          expect(canon(mergeRows(mergeRows(a, b), c))).toEqual(canon(stateOf(deltas, rowId)));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('property: applying a delta twice changes nothing', () => {
    fc.assert(
      fc.property(deltasArb, (deltas) => {
        const once = replay(deltas);
        const twice = replay([...deltas, ...deltas]);
        expect(canonAll(twice)).toEqual(canonAll(once));
      }),
      { numRuns: 1000 },
    );
  });

  const d = (op: Op, hlc: number, clientId: string, columns: Record<string, ColumnValue> = {}) =>
    makeDelta({ table: 't', rowId: 'r', op, columns: op === 'delete' ? {} : columns, hlc: BigInt(hlc), clientId });

  it('keeps a stamp per column: concurrent edits of different columns both survive', () => {
    const s = replay([d('insert', 1, 'a', { x: 'x0', y: 'y0' }), d('update', 5, 'a', { x: 'xa' }), d('update', 3, 'b', { y: 'yb' })]);
    expect(visibleValues(s.get('r')!)).toEqual({ x: 'xa', y: 'yb' });
  });

  it('breaks HLC ties by client id', () => {
    const s = replay([d('insert', 1, 'a', { x: '0' }), d('update', 7, 'b', { x: 'b' }), d('update', 7, 'a', { x: 'a' })]);
    expect(visibleValues(s.get('r')!)).toEqual({ x: 'b' });
  });

  it('keeps an explicit null distinct from an absent column', () => {
    const s = replay([d('insert', 1, 'a', { x: 'x', y: 'y' }), d('update', 2, 'a', { x: null })]);
    expect(visibleValues(s.get('r')!)).toEqual({ x: null, y: 'y' });
  });

  it('a delete wins over an older or concurrent update; only a newer insert resurrects', () => {
    let s = replay([d('insert', 1, 'a', { x: 'x', y: 'y' }), d('delete', 5, 'b'), d('update', 6, 'a', { x: 'late' })]);
    expect(isLive(s.get('r')!)).toBe(false);
    s = replay([d('insert', 1, 'a', { x: 'x', y: 'y' }), d('delete', 5, 'b'), d('update', 6, 'a', { x: 'late' }), d('insert', 8, 'c', { z: 1n })]);
    // Resurrected: columns written before the delete stay gone; later ones show.
    expect(visibleValues(s.get('r')!)).toEqual({ x: 'late', z: 1n });
  });

  it('an insert older than the delete does not resurrect', () => {
    const s = replay([d('delete', 5, 'b'), d('insert', 3, 'a', { x: 'old' })]);
    expect(isLive(s.get('r')!)).toBe(false);
    expect(visibleValues(s.get('r')!)).toBeNull();
  });
});
