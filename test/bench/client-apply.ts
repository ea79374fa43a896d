import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Change, ColumnValue, Delta } from '../../core/index.ts';
import { LocalStore } from '../../clients/node/local-store.ts';
import type { BenchRow } from './table.ts';
import { BENCH_SCHEMA, buildInserts, buildUpdates, check, chunk, hlcClock, measure, now, scratchDir, type Splits } from './support.ts';

export const APPLY_DELTAS = 100_000;
const UPDATE_ROWS = 20_000;
const PAGE = 1_000;
export const APPLY_RATIO_TARGET = 0.5;

const COLUMNS = ['title', 'done', 'position', 'score'] as const;

/** How LocalStore stores values: booleans as 0/1. */
function sqlValue(v: ColumnValue | undefined): string | number | bigint | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'object') return v.json;
  return v;
}

interface Variant {
  readonly name: string;
  /** Applied before timing (both sides). */
  readonly seed: readonly Delta[];
  /** The timed deltas. */
  readonly deltas: readonly Delta[];
  /** Columns the timed deltas set (the baseline upserts exactly these). */
  readonly columns: readonly (typeof COLUMNS)[number][];
  readonly note: string;
}

/** A digest of the app-visible rows, to check both sides did the same work (outside the timing). */
function contentDigest(db: Database.Database): string {
  const hash = createHash('sha256');
  const rows = db.prepare(`SELECT id, ${COLUMNS.join(', ')} FROM todos ORDER BY id`).raw().safeIntegers().iterate();
  for (const row of rows) hash.update(`${JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}\n`);
  return hash.digest('hex');
}

function pagesOf(deltas: readonly Delta[]): Change[][] {
  return chunk(
    deltas.map((delta): Change => ({ kind: 'delta', delta })),
    PAGE,
  );
}

/** LocalStore.applyRemote, one transaction per page of 1,000, as LakeSyncClient.pullAll does. */
function runOurs(variant: Variant, pages: readonly Change[][], seedPages: readonly Change[][]): { ms: number; digest: string } {
  const scratch = scratchDir('apply');
  const db = new Database(join(scratch.dir, 'client.sqlite'));
  try {
    const store = new LocalStore(db, BENCH_SCHEMA);
    let cursor = 0;
    for (const page of seedPages) store.applyRemote(page, String((cursor += page.length)));
    const t0 = now();
    for (const page of pages) store.applyRemote(page, String((cursor += page.length)));
    const elapsed = now() - t0;
    const expected = variant.seed.length > 0 ? UPDATE_ROWS : variant.deltas.length;
    const { n } = db.prepare('SELECT count(*) AS n FROM todos').get() as { n: number };
    check(n === expected, `${variant.name}: ${n} rows in todos, expected ${expected}`);
    return { ms: elapsed, digest: contentDigest(db) };
  } finally {
    db.close();
    scratch.cleanup();
  }
}

/** Plain upserts of the same rows into a plain table, one transaction, same pragmas. */
function runBaseline(variant: Variant): { ms: number; digest: string } {
  const scratch = scratchDir('baseline');
  const db = new Database(join(scratch.dir, 'plain.sqlite'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE todos (id TEXT PRIMARY KEY NOT NULL, title TEXT, done INTEGER, position INTEGER, score REAL)');
    const upsertSql = (cols: readonly string[]): string =>
      `INSERT INTO todos (id, ${cols.join(', ')}) VALUES (?${', ?'.repeat(cols.length)}) ` +
      `ON CONFLICT(id) DO UPDATE SET ${cols.map((c) => `${c} = excluded.${c}`).join(', ')}`;
    const apply = (deltas: readonly Delta[], cols: readonly (typeof COLUMNS)[number][]): void => {
      const stmt = db.prepare(upsertSql(cols));
      db.transaction(() => {
        for (const d of deltas) stmt.run(d.rowId, ...cols.map((c) => sqlValue(d.columns[c])));
      })();
    };
    apply(variant.seed, COLUMNS);
    const t0 = now();
    apply(variant.deltas, variant.columns);
    const ms = now() - t0;
    return { ms, digest: contentDigest(db) };
  } finally {
    db.close();
    scratch.cleanup();
  }
}

export type ApplyVariant = 'inserts' | 'updates';

export async function benchClientApply(which: readonly ApplyVariant[] = ['inserts', 'updates']): Promise<BenchRow[]> {
  const hlcAt = hlcClock();
  const inserts = buildInserts(APPLY_DELTAS, hlcAt);
  const seed = inserts.slice(0, UPDATE_ROWS);
  const all: Variant[] = [
    { name: 'inserts', seed: [], deltas: inserts, columns: COLUMNS, note: `${APPLY_DELTAS / 1000}k new rows, 4 columns` },
    {
      name: 'updates',
      seed,
      deltas: buildUpdates(APPLY_DELTAS, UPDATE_ROWS, hlcAt, APPLY_DELTAS),
      columns: ['title', 'score'],
      note: `${UPDATE_ROWS / 1000}k existing rows x5, 2 columns each`,
    },
  ];
  const variants = all.filter((v) => (which as readonly string[]).includes(v.name));
  const rows: BenchRow[] = [];
  for (const variant of variants) {
    const pages = pagesOf(variant.deltas);
    const seedPages = pagesOf(variant.seed);
    const m = await measure(
      (i): Splits => {
        const part = i < 0 ? { ...variant, deltas: variant.deltas.slice(0, APPLY_DELTAS / 10) } : variant; // warm-up: a tenth, both sides
        // Both sides back to back, so the ratio of one run shares the machine's state; its median is reported.
        const ours = runOurs(part, i < 0 ? pages.slice(0, APPLY_DELTAS / PAGE / 10) : pages, seedPages);
        const baseline = runBaseline(part);
        check(ours.digest === baseline.digest, `${variant.name}: LocalStore's app table differs from the baseline's`);
        return i < 0 ? { ours: ours.ms, baseline: baseline.ms, ratio: 0 } : { ours: ours.ms, baseline: baseline.ms, ratio: baseline.ms / ours.ms };
      },
      { label: `apply ${variant.name}` },
    );
    const ours = (m['ours'] as number) / 1000;
    const baseline = (m['baseline'] as number) / 1000;
    const n = variant.deltas.length;
    rows.push(
      {
        name: `client apply ${variant.name}: LocalStore`,
        count: n,
        unit: 'deltas',
        seconds: ours,
        ratio: m['ratio'] as number, // ours_rate / baseline_rate = baseline_time / ours_time, per run
        target: APPLY_RATIO_TARGET,
        note: `applyRemote pages of ${PAGE}; ${variant.note}`,
      },
      {
        name: `client apply ${variant.name}: raw upsert`,
        count: n,
        unit: 'rows',
        seconds: baseline,
        note: 'baseline: better-sqlite3 upsert, 1 transaction',
      },
    );
  }
  return rows;
}
