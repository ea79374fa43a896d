import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applyDelta, makeDelta, type ColumnType, type ColumnValue, type Delta, type Op, type RowState } from '../../core/index.ts';
import { IN_APP_ROW, applyNewer, clientPart, decodeState, encodeState, fitsColumn, hlcHex, newerThanAll } from './state-text.ts';

const TYPES: ReadonlyMap<string, ColumnType> = new Map<string, ColumnType>([
  ['title', 'string'],
  ['done', 'boolean'],
  ['n', 'integer'],
  ['score', 'number'],
  ['meta', 'json'],
]);
/** Known columns plus one this schema does not have (its values stay inline). */
const COLS = [...TYPES.keys(), 'extra'];

const valueArb: fc.Arbitrary<ColumnValue> = fc.oneof(
  fc.constant(null),
  fc.string({ maxLength: 4 }),
  fc.constantFrom('a;b', 'x=1,', ':', '3:abc', 'é€😀'),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.integer({ min: -100, max: 100 }).map((i) => i / 4),
  fc.boolean(),
  fc.constantFrom({ json: '{"a":[1,2]}' }, { json: '"x;y,z"' }),
);

const clientArb = fc.constantFrom('a', 'b', 'client;with=odd,chars:', '', 'ü');
const hlcArb = fc.oneof(fc.bigInt({ min: 0n, max: 30n }), fc.constantFrom(2n ** 64n - 1n, 1n << 48n));

const deltaArb: fc.Arbitrary<Delta> = fc
  .record({
    hlc: hlcArb,
    client: clientArb,
    op: fc.constantFrom<Op>('insert', 'update', 'delete', 'insert', 'update'),
    cols: fc.dictionary(fc.constantFrom(...COLS), valueArb, { maxKeys: 4 }),
  })
  .map((r) => makeDelta({ table: 't', rowId: 'r', op: r.op, columns: r.op === 'delete' ? {} : r.cols, hlc: r.hlc, clientId: r.client }));

/** What decodeState gives back for a state: values of known columns that fit stay in the app row. */
function expectedDecode(row: RowState): RowState {
  const columns: Record<string, RowState['columns'][string]> = {};
  for (const [name, col] of Object.entries(row.columns)) {
    const type = TYPES.get(name);
    columns[name] = type !== undefined && fitsColumn(type, col.value) ? { value: IN_APP_ROW, stamp: col.stamp } : col;
  }
  return { ...row, columns };
}

function fold(deltas: readonly Delta[]): RowState | undefined {
  let row: RowState | undefined;
  for (const d of deltas) row = applyDelta(row, d);
  return row;
}

describe('state text', () => {
  it('property: decode(encode(state)) gives the state back, values in the app row replaced by IN_APP_ROW', () => {
    fc.assert(
      fc.property(fc.array(deltaArb, { minLength: 1, maxLength: 12 }), (deltas) => {
        const row = fold(deltas) as RowState;
        const text = encodeState(row, TYPES);
        expect(decodeState('t', 'r', text)).toEqual(expectedDecode(row));
        // Canonical: the decoded state (IN_APP_ROW values included) encodes to the same text.
        expect(encodeState(decodeState('t', 'r', text), TYPES)).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it('property: applyNewer equals encoding the merged state, for a delta newer than every stamp', () => {
    fc.assert(
      fc.property(
        fc.array(deltaArb, { minLength: 1, maxLength: 12 }),
        clientArb,
        fc.constantFrom<Op>('insert', 'update'),
        fc.uniqueArray(fc.constantFrom(...TYPES.keys()), { minLength: 1, maxLength: 5 }),
        fc.bigInt({ min: 1n, max: 5n }),
        (history, client, op, names, step) => {
          const row = fold(history) as RowState;
          const text = encodeState(row, TYPES);
          const max = text === '' ? -1n : BigInt(`0x${text.slice(0, 16)}`); // '': a state without stamps
          fc.pre(max + step < 2n ** 64n);
          const columns: Record<string, ColumnValue> = {};
          for (const n of names) columns[n] = n === 'title' ? 'v' : null; // values in the app row: only stamps matter
          const d = makeDelta({ table: 't', rowId: 'r', op, columns, hlc: max + step, clientId: client });
          const hex = hlcHex(d.hlc);
          expect(newerThanAll(hex, text)).toBe(text !== '');
          const group = `${hex}${op === 'insert' ? 'i' : 'u'}${clientPart(client)}${[...names].sort().map((n) => `${n},`).join('')};`;
          expect(applyNewer(text, group, names, op === 'insert')).toBe(encodeState(applyDelta(row, d), TYPES));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('equal states give equal text whatever the column order', () => {
    const stamp = { hlc: 5n, clientId: 'c' };
    const a: RowState = { table: 't', rowId: 'r', inserted: stamp, deleted: null, columns: { title: { value: 'x', stamp }, n: { value: 1n, stamp } } };
    const b: RowState = { ...a, columns: { n: { value: 1n, stamp }, title: { value: 'x', stamp } } };
    expect(encodeState(a, TYPES)).toBe(encodeState(b, TYPES));
    expect(encodeState(a, TYPES)).toBe('0000000000000005i1:cn,title,;');
  });

  it('newerThanAll compares the first 16 characters as a number', () => {
    expect(newerThanAll(hlcHex(16n), `${hlcHex(15n)}u0:;`)).toBe(true);
    expect(newerThanAll(hlcHex(15n), `${hlcHex(15n)}u0:;`)).toBe(false);
    expect(newerThanAll(hlcHex(2n ** 64n - 1n), `${hlcHex(2n ** 63n)}u0:;`)).toBe(true);
  });

  it('refuses corrupt text', () => {
    expect(() => decodeState('t', 'r', '0000000000000005i9:c;')).toThrow(RangeError);
    expect(() => decodeState('t', 'r', '0000000000000005x1:c;')).toThrow(RangeError);
    expect(() => decodeState('t', 'r', '0000000000000005i1:cn=s5:ab,;')).toThrow(RangeError);
    expect(() => decodeState('t', 'r', '0000000000000005i1:cn,')).toThrow(RangeError);
    expect(() => applyNewer('0000000000000005i1:cn,', '', ['n'], false)).toThrow(RangeError);
  });
});
