import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { encodeHlc } from '../../core/hlc.ts';
import { CHANGE_SYSTEM_FIELDS, evolveSchema, parquetColumns } from '../../core/lake/layout.ts';
import { parquetEncodePool } from '../../core/lake/parquet-encode-pool.ts';
import { buildArrowPieces, encodeArrowPieces, writerSpec, type ParquetColumn } from '../../core/lake/parquet.ts';
import type { TableSchema } from '../../core/schema.ts';
import { PYTHON, ensurePythonEnv } from '../support/python.ts';
import type { BenchRow } from './table.ts';
import { BENCH_SCHEMA, check, median, now } from './support.ts';

/**
 * The lake: flushing N deltas (default 1,000,000) to Parquet + Iceberg
 * commits, in a child process with a 256 MB V8 heap (peak RSS from the
 * kernel), against pyarrow writing the same rows and pyiceberg appending
 * them, in the same run. Plus Parquet encoding alone: Arrow -> Parquet bytes
 * for the change rows, ours (parquet-wasm) against pyarrow.write_table.
 */
const N = Number(process.env['BENCH_LAKE_ROWS'] ?? '1000000');
const here = import.meta.dirname;

interface ChildResult {
  seconds: number;
  /** Of `seconds`, the time inside the synthetic buffer's read and loadRows (building deltas and merged rows). */
  sourceSeconds: number;
  deltas: number;
  snapshots: number;
  files: number;
  maxRssMb: number;
  /** S3 write requests (PUTs, multipart parts) the flush's object writes would cost. */
  s3Requests: number;
  objectBytes: number;
}

function flushOnce(): ChildResult {
  const out = execFileSync(
    process.execPath,
    ['--max-old-space-size=256', '--import', 'tsx', join(here, 'lake-flush-child.ts'), String(N), '50000'],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  return JSON.parse(out.trim().split('\n').at(-1) as string) as ChildResult;
}

interface PyResult {
  pyarrow_changes_s: number;
  pyarrow_both_s: number;
  pyiceberg_both_s: number;
}

function baselineOnce(): PyResult {
  const out = execFileSync(PYTHON, [join(here, 'lake_baseline.py'), String(N)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as PyResult;
}

/** The change table's columns, as the flush writes them (layout.ts). */
const CHANGE_COLUMNS: ParquetColumn[] = parquetColumns(evolveSchema(CHANGE_SYSTEM_FIELDS, BENCH_SCHEMA.tables[0] as TableSchema, undefined, 0).schema);

/** Arrow -> Parquet for N change rows in one file: the part pyarrow.write_table measures. */
async function encodeOnce(): Promise<{ build: number; write: number }> {
  const base = Date.now() - 60_000;
  const cols: unknown[][] = CHANGE_COLUMNS.map(() => new Array(N));
  const set = ['title', 'done', 'position', 'score'];
  for (let i = 0; i < N; i++) {
    const hlc = encodeHlc(base + Math.floor(i / 65536), i % 65536);
    const row = [BigInt(i + 1), i.toString(16).padStart(32, '0'), 'insert', `r${i}`, 'bench', hlc, (base + Math.floor(i / 65536)) * 1000, set, `todo ${i}`, i % 2 === 0, BigInt(i), i * 0.5];
    row.forEach((v, k) => ((cols[k] as unknown[])[i] = v));
  }
  const t0 = now();
  // Arrow batches built from the JS values (one per encoder thread), as the lake's writer builds them.
  const pieces = buildArrowPieces(CHANGE_COLUMNS, cols);
  const t1 = now();
  // Arrow -> Parquet bytes with the lake's writer settings.
  const bytes = await encodeArrowPieces(pieces, writerSpec(CHANGE_COLUMNS));
  const t2 = now();
  check(bytes.length > 1000, 'parquet written');
  return { build: t1 - t0, write: t2 - t1 };
}

export async function benchLake(): Promise<BenchRow[]> {
  ensurePythonEnv();
  // Encoder threads start before timing, as pyarrow is imported before its timing.
  parquetEncodePool()?.warm();
  const runs = 3;
  const ours: ChildResult[] = [];
  const base: PyResult[] = [];
  const enc: { build: number; write: number }[] = [];
  flushOnce(); // warm-up (page cache, tsx compile cache)
  for (let i = 0; i < runs; i++) {
    const r = flushOnce();
    check(r.deltas === N, `flushed ${r.deltas} of ${N}`);
    ours.push(r);
    base.push(baselineOnce());
    enc.push(await encodeOnce());
  }
  const flushS = median(ours.map((r) => r.seconds));
  const ownS = median(ours.map((r) => r.seconds - r.sourceSeconds));
  const rss = Math.max(...ours.map((r) => r.maxRssMb));
  const icebergS = median(base.map((r) => r.pyiceberg_both_s));
  const pyarrowChangesS = median(base.map((r) => r.pyarrow_changes_s));
  const writeS = median(enc.map((e) => e.write)) / 1000;
  const buildS = median(enc.map((e) => e.build)) / 1000;
  const snapshots = ours[0]?.snapshots ?? 0;
  return [
    {
      name: 'lake flush: deltas -> Parquet + commit',
      count: N,
      unit: 'deltas',
      seconds: flushS,
      ratio: icebergS / flushS,
      target: 1,
      note: `change + state tables, ${snapshots} snapshots; ${ownS.toFixed(2)} s (${(icebergS / ownS).toFixed(2)}x) without the time inside the synthetic buffer's read and loadRows; peak RSS ${Math.round(rss)} MB (target < 512); ${ours[0]?.s3Requests ?? 0} object writes (S3 PUTs), ${((ours[0]?.objectBytes ?? 0) / 1e6).toFixed(0)} MB; vs pyiceberg append of both`,
    },
    { name: 'lake flush: pyiceberg append (baseline)', count: N, unit: 'rows', seconds: icebergS, note: 'same change + state rows, 2 appends, SqlCatalog' },
    {
      name: 'parquet encode: Arrow -> Parquet',
      count: N,
      unit: 'rows',
      seconds: writeS,
      ratio: pyarrowChangesS / writeS,
      target: 0.5,
      note: `parquet-wasm, ZSTD, one file of change rows, ${(parquetEncodePool()?.size ?? 0) + 1} encoding threads; building the Arrow batch from JS values adds ${buildS.toFixed(2)} s`,
    },
    { name: 'parquet encode: pyarrow (baseline)', count: N, unit: 'rows', seconds: pyarrowChangesS, note: 'pyarrow.parquet.write_table, ZSTD' },
  ];
}
