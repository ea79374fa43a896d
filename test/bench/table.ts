/** One line of the benchmark table. Benchmarks never fail: a miss is printed, not thrown. */
export interface BenchRow {
  readonly name: string;
  /** How many deltas or rows one measured run handles. */
  readonly count: number;
  readonly unit: 'deltas' | 'rows' | 'ids';
  /** Seconds of the reported run (median of the measured runs). */
  readonly seconds: number;
  /** ours_rate / baseline_rate, when the row has a baseline. */
  readonly ratio?: number;
  /** Minimum throughput (per second) or, with `ratio`, minimum ratio. */
  readonly target?: number;
  readonly note?: string;
}

export function rate(row: BenchRow): number {
  return row.count / row.seconds;
}

export function status(row: BenchRow): 'PASS' | 'MISS' | '' {
  if (row.target === undefined) return '';
  const value = row.ratio ?? rate(row);
  return value >= row.target ? 'PASS' : 'MISS';
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtTarget(row: BenchRow): string {
  if (row.target === undefined) return '-';
  return row.ratio !== undefined ? `>= ${row.target.toFixed(2)}x` : `>= ${fmtInt(row.target)}/s`;
}

const HEADERS = ['benchmark', 'n', 'unit', 'seconds', 'per second', 'ratio', 'target', 'result', 'note'] as const;

function cells(row: BenchRow): string[] {
  return [
    row.name,
    fmtInt(row.count),
    row.unit,
    row.seconds.toFixed(3),
    fmtInt(rate(row)),
    row.ratio !== undefined ? `${row.ratio.toFixed(2)}x` : '-',
    fmtTarget(row),
    status(row),
    row.note ?? '',
  ];
}

const RIGHT = new Set([1, 3, 4, 5]);

/** A fixed-width table for the terminal. */
export function formatTable(rows: readonly BenchRow[]): string {
  const all = [[...HEADERS], ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (RIGHT.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(all[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

/** The same table as GitHub markdown, for BENCHMARKS.md. */
export function formatMarkdown(rows: readonly BenchRow[]): string {
  const esc = (s: string): string => s.replaceAll('|', '\\|');
  const head = `| ${HEADERS.join(' | ')} |`;
  const sep = `|${HEADERS.map((_, i) => (RIGHT.has(i) ? '---:' : '---')).join('|')}|`;
  return [head, sep, ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`)].join('\n');
}
