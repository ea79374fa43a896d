import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applyDelta, makeDelta, type ColumnType, type ColumnValue, type Delta, type Op, type RowState } from '../../core/index.ts';
import {
  HLC_WIDTH,
  IN_APP_ROW,
  applyNewer,
  clientPart,
  columnMask,
  decodeState,
  encodeState,
  fitsColumn,
  hlcKey,
  makeLayout,
  newerThanAll,
  storedClient,
} from './state-text.ts';

const TYPES: ReadonlyMap<string, ColumnType> = new Map<string, ColumnType>([
  ['title', 'string'],
  ['done', 'boolean'],
  ['n', 'integer'],
  ['score', 'number'],
  ['meta', 'json'],
]);
/** Physical order differs from the schema's; 'legacy' is a column of the table the schema lacks. */
const LAYOUT = makeLayout(['done', 'title', 'legacy', 'n', 'score', 'meta'], TYPES);
/** Known columns plus ones this schema does not have (their values stay inline). */
const COLS = [...TYPES.keys(), 'extra', 'legacy'];

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
    columns[name] = type !== undefined && LAYOUT.index.has(name) && fitsColumn(type, col.value) ? { value: IN_APP_ROW, stamp: col.stamp } : col;
  }
  return { ...row, columns };
}

/** The greatest HLC in a state text. */
function decodeMax(text: string): bigint {
  const row = decodeState('t', 'r', text, LAYOUT);
  const stamps = [row.inserted, row.deleted, ...Object.values(row.columns).map((c) => c.stamp)].filter((s) => s !== null);
  return stamps.reduce((m, s) => (s.hlc > m ? s.hlc : m), -1n);
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
        const text = encodeState(row, LAYOUT);
        expect(decodeState('t', 'r', text, LAYOUT)).toEqual(expectedDecode(row));
        // Canonical: the decoded state (IN_APP_ROW values included) encodes to the same text.
        expect(encodeState(decodeState('t', 'r', text, LAYOUT), LAYOUT)).toBe(text);
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
          const text = encodeState(row, LAYOUT);
          const max = text === '' ? -1n : decodeMax(text); // '': a state without stamps
          fc.pre(max + step < 2n ** 64n);
          const columns: Record<string, ColumnValue> = {};
          for (const n of names) columns[n] = n === 'title' ? 'v' : null; // values in the app row: only stamps matter
          const d = makeDelta({ table: 't', rowId: 'r', op, columns, hlc: max + step, clientId: client });
          const key = hlcKey(d.hlc);
          expect(newerThanAll(key, text)).toBe(text !== '');
          const mask = columnMask(LAYOUT, names);
          const group = `${key}${op === 'insert' ? 'i' : 'u'}${clientPart(storedClient(client), null)}${mask};`;
          expect(applyNewer(text, group, storedClient(client), mask, names, op === 'insert')).toBe(encodeState(applyDelta(row, d), LAYOUT));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('equal states give equal text whatever the column order', () => {
    const stamp = { hlc: 5n, clientId: 'c' };
    const a: RowState = { table: 't', rowId: 'r', inserted: stamp, deleted: null, columns: { title: { value: 'x', stamp }, n: { value: 1n, stamp } } };
    const b: RowState = { ...a, columns: { n: { value: 1n, stamp }, title: { value: 'x', stamp } } };
    expect(encodeState(a, LAYOUT)).toBe(encodeState(b, LAYOUT));
    // title is column 1, n column 3: mask 0b1010.
    expect(encodeState(a, LAYOUT)).toBe(`${hlcKey(5n)}i1:ca;`);
    const c: RowState = { ...a, columns: { ...a.columns, extra: { value: 'e;', stamp }, meta: { value: { json: '[]' }, stamp } } };
    expect(encodeState(c, LAYOUT)).toBe(`${hlcKey(5n)}i1:ca2+extra=s2:e;,;`);
  });

  it('a group by the same client as the one before writes "="', () => {
    const x = { hlc: 9n, clientId: 'bench' };
    const y = { hlc: 5n, clientId: 'bench' };
    const row: RowState = { table: 't', rowId: 'r', inserted: y, deleted: null, columns: { title: { value: 'a', stamp: x }, n: { value: 1n, stamp: y } } };
    expect(encodeState(row, LAYOUT)).toBe(`${hlcKey(9n)}u5:bench2;${hlcKey(5n)}i=8;`);
    expect(decodeState('t', 'r', encodeState(row, LAYOUT), LAYOUT).inserted).toEqual(y);
  });

  it('HLC keys are fixed width and sort like the HLCs', () => {
    const hlcs = [0n, 1n, 63n, 64n, (1n << 24n) - 1n, 1n << 24n, 1n << 48n, 0x0191_2345_6789_abcdn, 2n ** 63n, 2n ** 64n - 1n];
    const keys = hlcs.map(hlcKey);
    for (const k of keys) expect(k).toHaveLength(HLC_WIDTH);
    expect([...keys].sort()).toEqual(keys);
    for (const [i, h] of hlcs.entries()) expect(decodeState('t', 'r', `${keys[i]}i0:;`, LAYOUT).inserted?.hlc).toBe(h);
  });

  it('newerThanAll compares the HLC key at the start of the text', () => {
    expect(newerThanAll(hlcKey(16n), `${hlcKey(15n)}u0:;`)).toBe(true);
    expect(newerThanAll(hlcKey(15n), `${hlcKey(15n)}u0:;`)).toBe(false);
    expect(newerThanAll(hlcKey(2n ** 64n - 1n), `${hlcKey(2n ** 63n)}u0:;`)).toBe(true);
  });

  it('refuses corrupt text', () => {
    const k = hlcKey(5n);
    expect(() => decodeState('t', 'r', `${k}i9:c;`, LAYOUT)).toThrow(RangeError);
    expect(() => decodeState('t', 'r', `${k}x1:c;`, LAYOUT)).toThrow(RangeError);
    expect(() => decodeState('t', 'r', `${k}i1:c+n=s5:ab,;`, LAYOUT)).toThrow(RangeError);
    expect(() => decodeState('t', 'r', `${k}i1:c1`, LAYOUT)).toThrow(RangeError);
    expect(() => decodeState('t', 'r', `${k}i1:c08;`, LAYOUT)).toThrow(RangeError); // column 7 does not exist
    expect(() => decodeState('t', 'r', `*${k.slice(1)}i1:c1;`, LAYOUT)).toThrow(RangeError);
    expect(() => applyNewer(`${k}i1:c1`, '', 'c', '1', [], false)).toThrow(RangeError);
    expect(() => decodeState('t', 'r', `${k}i=1;`, LAYOUT)).toThrow(RangeError); // '=' in the first group
  });
});
