import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parquetEncodePool } from '../../core/lake/parquet-encode-pool.ts';
import { joinParquetPieces, roundTripFooter } from '../../core/lake/parquet-encode-merge.ts';
import { buildArrowPieces, columnValues, readParquetTable, writeParquetFile, writeParquetFileParallel, type ParquetColumn } from '../../core/lake/parquet.ts';
import { deltaMaker, makeLakeEnv, pyicebergScan } from '../support/lake.ts';
import { pythonJson } from '../support/python.ts';

const COLUMNS: ParquetColumn[] = [
  { id: 1, name: 'seq', type: 'long', required: true },
  { id: 2, name: 'id', type: 'string', required: true },
  { id: 3, name: 'op', type: 'string', required: true, dictionary: true },
  { id: 4, name: 'tags', type: 'list<string>', required: true, elementId: 9 },
  { id: 5, name: 'title', type: 'string', required: false },
  { id: 6, name: 'done', type: 'boolean', required: false },
  { id: 7, name: 'score', type: 'double', required: false },
  { id: 8, name: 'blob', type: 'binary', required: false },
];

function values(n: number): unknown[][] {
  const cols: unknown[][] = COLUMNS.map(() => new Array(n));
  for (let i = 0; i < n; i++) {
    const row = [
      BigInt(i + 1),
      `id-${i}`,
      i % 7 === 0 ? 'delete' : 'insert',
      i % 3 === 0 ? [] : ['a', `t${i % 5}`],
      i % 5 === 0 ? null : `todo ${i} é`,
      i % 4 === 0 ? null : i % 2 === 0,
      i % 6 === 0 ? null : i * 0.25,
      i % 9 === 0 ? null : new Uint8Array([i & 255, 1, 2]),
    ];
    row.forEach((v, k) => ((cols[k] as unknown[])[i] = v));
  }
  return cols;
}

const PYARROW_PY = `
import json, sys
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
md = f.metadata
t = f.read()
print(json.dumps({
  'rows': md.num_rows,
  'row_groups': [md.row_group(i).num_rows for i in range(md.num_row_groups)],
  'stats': all(md.row_group(g).column(c).is_stats_set for g in range(md.num_row_groups) for c in range(md.num_columns)),
  'codec': md.row_group(0).column(0).compression,
  'field_ids': {f.name: (f.metadata or {}).get(b'PARQUET:field_id', b'').decode() for f in f.schema_arrow},
  'seq_sum': sum(t.column('seq').to_pylist()),
  'title_nulls': t.column('title').null_count,
  'last': {k: (v.hex() if isinstance(v, bytes) else v) for k, v in t.slice(md.num_rows - 1).to_pylist()[0].items()},
  'seq_max': [md.row_group(g).column(0).statistics.max for g in range(md.num_row_groups)],
}))
`;

describe('parquet encoded in pieces on worker threads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lakesync-pq-parallel-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('re-encodes a footer byte for byte', () => {
    const out = writeParquetFile(COLUMNS, [values(100)]);
    const { original, encoded } = roundTripFooter(out.bytes);
    expect(Buffer.from(encoded).equals(Buffer.from(original))).toBe(true);
  });

  it('joins pieces into one file that we, pyarrow and DuckDB read row for row, with statistics per row group', async () => {
    const n = 10_007;
    const vals = values(n);
    const pool = parquetEncodePool();
    expect(pool).not.toBeNull(); // the test machine has more than one CPU
    const before = pool?.encoded ?? 0;
    const parallel = await writeParquetFileParallel(COLUMNS, vals, { minPieceRows: 1000, rowGroupBytes: 64 * 1024 });
    expect(pool?.encoded).toBe(before + (pool?.size ?? 0)); // by the workers (and this thread), not the fallback
    const single = writeParquetFile(COLUMNS, [vals]);
    expect(parallel.recordCount).toBe(n);
    expect(parallel.metrics).toEqual(single.metrics);

    const table = readParquetTable(parallel.bytes);
    expect(table.numRows).toBe(n);
    COLUMNS.forEach((c, i) => expect(columnValues(table, c)).toEqual(vals[i]));

    const path = join(dir, 'parallel.parquet');
    writeFileSync(path, parallel.bytes);
    const info = pythonJson<{
      rows: number;
      row_groups: number[];
      stats: boolean;
      codec: string;
      field_ids: Record<string, string>;
      seq_sum: number;
      title_nulls: number;
      last: Record<string, unknown>;
      seq_max: number[];
    }>(PYARROW_PY, [path]);
    expect(info.rows).toBe(n);
    expect(info.row_groups.length).toBeGreaterThan(1);
    expect(info.row_groups.reduce((a, b) => a + b, 0)).toBe(n);
    expect(info.stats).toBe(true);
    expect(info.codec).toBe('ZSTD');
    expect(info.field_ids).toEqual({ seq: '1', id: '2', op: '3', tags: '4', title: '5', done: '6', score: '7', blob: '8' });
    expect(info.seq_sum).toBe((n * (n + 1)) / 2);
    expect(info.title_nulls).toBe(vals[4]?.filter((v) => v === null).length);
    expect(info.last).toMatchObject({ seq: n, id: `id-${n - 1}`, tags: ['a', `t${(n - 1) % 5}`] });
    // Each row group's statistics describe its own rows.
    let end = 0;
    info.row_groups.forEach((rows, g) => {
      end += rows;
      expect(info.seq_max[g]).toBe(end);
    });

    const duck = await DuckDBInstance.create(':memory:');
    const conn = await duck.connect();
    const r = await conn.runAndReadAll(
      `SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS d, sum(seq)::BIGINT AS s, count(title)::INTEGER AS t FROM read_parquet('${path}')`,
    );
    expect(r.getRowObjects()).toEqual([{ n, d: n, s: BigInt((n * (n + 1)) / 2), t: n - (vals[4]?.filter((v) => v === null).length ?? 0) }]);
    conn.closeSync();
  });

  it('long and timestamp columns take numbers and bigints alike (values and bounds)', () => {
    const cols: ParquetColumn[] = [
      { id: 1, name: 'n', type: 'long', required: false },
      { id: 2, name: 't', type: 'timestamptz', required: false },
    ];
    const n = [1n, 5, null, -3, 2n ** 40n, -(2 ** 40) - 7, 2 ** 53 - 1];
    const t = [1_732_590_000_000_000, null, 1_732_590_000_000_001n, -1];
    const out = writeParquetFile(cols, [[n, [...t, null, null, 0]]]);
    const table = readParquetTable(out.bytes);
    expect(columnValues(table, cols[0] as ParquetColumn)).toEqual(n.map((v) => (v === null ? null : BigInt(v))));
    expect(columnValues(table, cols[1] as ParquetColumn)).toEqual([...t, null, null, 0].map((v) => (v === null ? null : BigInt(v))));
    const view = (b: Uint8Array | undefined): bigint => new DataView((b as Uint8Array).buffer, (b as Uint8Array).byteOffset).getBigInt64(0, true);
    expect(view(out.metrics.lowerBounds.get(1))).toBe(-(2n ** 40n) - 7n);
    expect(view(out.metrics.upperBounds.get(1))).toBe(2n ** 53n - 1n);
    expect(view(out.metrics.lowerBounds.get(2))).toBe(-1n);
    expect(view(out.metrics.upperBounds.get(2))).toBe(1_732_590_000_000_001n);
  });

  it('double bounds order -0.0 before 0.0, as Iceberg (Java) does, within a batch and across batches', () => {
    const cols: ParquetColumn[] = [{ id: 1, name: 'x', type: 'double', required: false }];
    const bound = (b: Uint8Array | undefined): number => new DataView((b as Uint8Array).buffer, (b as Uint8Array).byteOffset).getFloat64(0, true);
    for (const batches of [[[[0, -0]]], [[[-0, 0]]], [[[0]], [[-0]]], [[[-0]], [[0]]]]) {
      const out = writeParquetFile(cols, batches);
      expect(Object.is(bound(out.metrics.lowerBounds.get(1)), -0)).toBe(true);
      expect(Object.is(bound(out.metrics.upperBounds.get(1)), 0)).toBe(true);
    }
  });

  it('refuses a column of the wrong length, as the one-thread writer does', () => {
    const cols = values(10);
    (cols[1] as unknown[]).push('extra', 'more');
    expect(() => buildArrowPieces(COLUMNS, cols, 4)).toThrow(/column id has 12 values, expected 10/);
  });

  it('leaves a single piece alone', () => {
    const one = writeParquetFile(COLUMNS, [values(10)]);
    expect(joinParquetPieces([one.bytes])).toBe(one.bytes);
  });

  it('a flush whose files are encoded in pieces reads back through pyiceberg', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const batch = [];
    for (let i = 0; i < 3000; i++) batch.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, done: i % 3 === 0, position: BigInt(i), score: i * 1.5 }));
    for (let i = 0; i < 500; i++) batch.push(a('todos', `t${i}`, 'update', { score: -i }));
    await env.push('client-a', batch);
    const before = parquetEncodePool()?.encoded ?? 0;
    await env.lake({ chunkDeltas: 2000, parquetPieceRows: 300 }).flush(env.source);
    expect(parquetEncodePool()?.encoded).toBeGreaterThan(before);
    const state = pyicebergScan(env, 'todos').rows;
    expect(new Map(state.map((r) => [r['_row_id'], r['score']]))).toEqual(new Map([...env.expected('todos')].map(([id, v]) => [id, v['score'] ?? null])));
    expect(pyicebergScan(env, 'todos_changes').rows).toHaveLength(3500);
  });
});
