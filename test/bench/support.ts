import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeHlc, makeDelta, type Columns, type Delta, type Hlc, type Op, type Principal, type Schema } from '../../core/index.ts';

/** The table every benchmark writes. */
export const BENCH_SCHEMA: Schema = {
  version: 1,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'done', type: 'boolean' },
        { name: 'position', type: 'integer' },
        { name: 'score', type: 'number' },
      ],
    },
  ],
};

export const CLIENT_ID = 'bench';
export const PRINCIPAL: Principal = { clientId: CLIENT_ID, userId: 'u', claims: { sub: 'u' }, admin: false };

/**
 * HLCs a little in the past, strictly increasing: the 16-bit counter carries
 * into the wall milliseconds, so 200,000 deltas span ~3 ms and stay far
 * inside the server's drift window.
 */
export function hlcClock(baseMs = Date.now() - 1000): (k: number) => Hlc {
  return (k) => encodeHlc(baseMs + Math.floor(k / 65536), k % 65536);
}

export function insertColumns(i: number): Columns {
  return { title: `todo ${i}`, done: i % 2 === 0, position: BigInt(i), score: i * 0.5 };
}

/** n inserts of distinct rows r<first>..r<first+n-1>, written by `clientId`. */
export function buildInserts(n: number, hlcAt = hlcClock(), clientId = CLIENT_ID, first = 0): Delta[] {
  const out = new Array<Delta>(n);
  for (let k = 0; k < n; k++) {
    const i = first + k;
    out[k] = makeDelta({ table: 'todos', rowId: `r${i}`, op: 'insert', columns: insertColumns(i), hlc: hlcAt(k), clientId });
  }
  return out;
}

/** n updates (title and score) cycling over rows r0..r(rows-1), with HLCs after `firstK`. */
export function buildUpdates(n: number, rows: number, hlcAt: (k: number) => Hlc, firstK: number): Delta[] {
  const out = new Array<Delta>(n);
  const op: Op = 'update';
  for (let j = 0; j < n; j++) {
    const i = j % rows;
    out[j] = makeDelta({
      table: 'todos',
      rowId: `r${i}`,
      op,
      columns: { title: `todo ${i} v${Math.floor(j / rows) + 1}`, score: j * 0.25 },
      hlc: hlcAt(firstK + j),
      clientId: CLIENT_ID,
    });
  }
  return out;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export const now = (): number => performance.now();

/** Milliseconds of named phases in one run. */
export type Splits = Record<string, number>;

export interface MeasureOptions {
  /** Measured runs after the warm-up. */
  readonly runs?: number;
  readonly label?: string;
}

/**
 * Warm up once, then run `runs` times and return the median of every phase,
 * computed phase by phase. Each run does its own untimed setup and reports
 * its timed phases.
 */
export async function measure(run: (iteration: number) => Promise<Splits> | Splits, options: MeasureOptions = {}): Promise<Splits> {
  const runs = options.runs ?? 3;
  await run(-1); // warm-up: JIT, SQLite page cache, sockets
  const results: Splits[] = [];
  for (let i = 0; i < runs; i++) {
    gc();
    results.push(await run(i));
  }
  const out: Splits = {};
  for (const key of Object.keys(results[0] ?? {})) out[key] = median(results.map((r) => r[key] ?? NaN));
  if (process.env['BENCH_VERBOSE'] === '1') {
    const show = (s: Splits): string => Object.entries(s).map(([k, v]) => `${k}=${v.toFixed(1)}ms`).join(' ');
    for (const r of results) console.error(`  ${options.label ?? ''} run: ${show(r)}`);
  }
  return out;
}

// Expose a full GC without a node flag, so every measured run starts from a
// clean heap instead of paying for the previous run's garbage.
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as (() => void) | undefined;

/** A full garbage collection (between runs, never inside a timed section). */
export function gc(): void {
  fullGc?.();
}

/** A temp directory removed by `cleanup()`. */
export function scratchDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `lakesync-bench-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`benchmark sanity check failed: ${message}`);
}
