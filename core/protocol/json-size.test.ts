import { describe, expect, it } from 'vitest';
import type { RowState, Stamp } from '../merge.ts';
import { encodePullResponse } from './codec.ts';
import type { ColumnValue } from '../values.ts';
import { jsonSizeBound } from './json-size.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '\n', '\u0001', '\u001f', 'é', '中', '😀', '\u2028', '/', '<'];

describe('jsonSizeBound', () => {
  it('property: never below the JSON a PullResponse of the rows takes', () => {
    const r = rng(7);
    const text = (max: number): string => Array.from({ length: Math.floor(r() * max) }, () => ALPHABET[Math.floor(r() * ALPHABET.length)]).join('');
    const stamp = (): Stamp => ({ hlc: BigInt(Math.floor(r() * 2 ** 51)) * 4096n, clientId: text(40) });
    const value = (): ColumnValue => {
      const k = Math.floor(r() * 7);
      if (k === 0) return null;
      if (k === 1) return text(50);
      if (k === 2) return BigInt(Math.floor((r() - 0.5) * 2 ** 53)) * 1024n;
      if (k === 3) return [NaN, Infinity, -0, 1e-300, -1.7976931348623157e308, r()][Math.floor(r() * 6)] as number;
      if (k === 4) return r() < 0.5;
      return { json: JSON.stringify({ t: text(20) }) };
    };
    for (let i = 0; i < 500; i++) {
      const columns: Record<string, { value: ColumnValue; stamp: Stamp }> = {};
      for (let c = 0; c < Math.floor(r() * 6); c++) columns[`c${c}${text(8)}`] = { value: value(), stamp: stamp() };
      const row: RowState = { table: `t${text(10)}`, rowId: text(30) || 'x', inserted: r() < 0.9 ? stamp() : null, deleted: r() < 0.3 ? stamp() : null, columns };
      const json = (rows: RowState[]): string =>
        new TextDecoder().decode(encodePullResponse('json', { changes: rows.map((r) => ({ kind: 'row', row: r })), nextCursor: '', hasMore: false, serverHlc: 0n }));
      const utf8 = (t: string): number => new TextEncoder().encode(t).length;
      expect(jsonSizeBound(row)).toBeGreaterThanOrEqual(utf8(json([row])) - utf8(json([])));
      // As the string body of a Lambda response (JSON again): within a fifth more.
      expect(jsonSizeBound(row) * 1.2).toBeGreaterThanOrEqual(utf8(JSON.stringify(json([row]))) - utf8(JSON.stringify(json([]))));
      expect(jsonSizeBound(row)).toBeGreaterThanOrEqual(encodePullResponse('proto', { changes: [{ kind: 'row', row }], nextCursor: '', hasMore: false, serverHlc: 0n }).length);
    }
  });
});
