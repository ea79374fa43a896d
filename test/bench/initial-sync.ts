import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LocalStore } from '../../clients/node/local-store.ts';
import { applyDelta, decodePullResponse, encodePullResponse, type RowState } from '../../core/index.ts';
import type { BenchRow } from './table.ts';
import { BENCH_SCHEMA, buildInserts, check, gc, median, now, scratchDir } from './support.ts';

/**
 * Initial sync: a client loads a checkpoint of N rows (default 1,000,000)
 * into its SQLite: each chunk of 10,000 row states is decoded from protobuf
 * (the bytes the server stores and serves) and applied in one transaction,
 * as LakeSyncClient.loadCheckpoint does (LocalStore.applyCheckpointChunk). Baseline in the same run: a raw
 * better-sqlite3 bulk insert of the same rows in one transaction.
 */
const N = Number(process.env['BENCH_SYNC_ROWS'] ?? '1000000');
const CHUNK = 10_000;
const TARGET = 250_000;

function chunks(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let start = 0; start < N; start += CHUNK) {
    const rows: RowState[] = buildInserts(Math.min(CHUNK, N - start)).map((d, i) => applyDelta(undefined, { ...d, rowId: `r${start + i}` }));
    out.push(encodePullResponse('proto', { changes: rows.map((row) => ({ kind: 'row', row })), nextCursor: String(N), hasMore: false, serverHlc: 0n }));
  }
  return out;
}

function ours(data: readonly Uint8Array[]): number {
  const scratch = scratchDir('initial-sync');
  const db = new Database(join(scratch.dir, 'client.sqlite'));
  try {
    const store = new LocalStore(db, BENCH_SCHEMA);
    gc();
    const t0 = now();
    for (const bytes of data) store.applyCheckpointChunk('proto', bytes);
    const ms = now() - t0;
    const { n } = db.prepare('SELECT count(*) AS n FROM todos').get() as { n: number };
    const expected = data.reduce((k, b) => k + decodePullResponse('proto', b).changes.length, 0);
    check(n === expected, `initial sync: ${n} rows, expected ${expected}`);
    return ms;
  } finally {
    db.close();
    scratch.cleanup();
  }
}

function baseline(): number {
  const scratch = scratchDir('initial-sync-raw');
  const db = new Database(join(scratch.dir, 'plain.sqlite'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE todos (id TEXT PRIMARY KEY NOT NULL, title TEXT, done INTEGER, position INTEGER, score REAL)');
    const insert = db.prepare('INSERT INTO todos (id, title, done, position, score) VALUES (?, ?, ?, ?, ?)');
    const rows = Array.from({ length: N }, (_, i) => [`r${i}`, `todo ${i}`, i % 2 === 0 ? 1 : 0, BigInt(i), i * 0.5] as const);
    gc();
    const t0 = now();
    db.transaction(() => {
      for (const r of rows) insert.run(...r);
    })();
    return now() - t0;
  } finally {
    db.close();
    scratch.cleanup();
  }
}

export function benchInitialSync(): Promise<BenchRow[]> {
  const data = chunks();
  const runs: { ours: number; raw: number }[] = [];
  ours(data.slice(0, 10)); // warm-up
  for (let i = 0; i < 3; i++) runs.push({ ours: ours(data), raw: baseline() });
  const oursMs = median(runs.map((r) => r.ours));
  const rawMs = median(runs.map((r) => r.raw));
  const ratio = median(runs.map((r) => r.raw / r.ours));
  return Promise.resolve([
    {
      name: 'initial sync: checkpoint -> client SQLite',
      count: N,
      unit: 'rows',
      seconds: oursMs / 1000,
      target: TARGET,
      note: `chunks of ${CHUNK.toLocaleString('en-US')} row states, LocalStore.applyCheckpointChunk from protobuf bytes; ${ratio.toFixed(2)}x of raw bulk insert`,
    },
    { name: 'initial sync: raw bulk insert (baseline)', count: N, unit: 'rows', seconds: rawMs / 1000, note: 'better-sqlite3, one transaction, WAL, synchronous=NORMAL' },
  ]);
}
