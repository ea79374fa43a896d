import { join } from 'node:path';
import { Gateway, HybridLogicalClock, MemoryBuffer, type DeltaBuffer, type Delta } from '../../core/index.ts';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import type { BenchRow } from './table.ts';
import { BENCH_SCHEMA, CLIENT_ID, PRINCIPAL, buildInserts, check, chunk, measure, now, scratchDir } from './support.ts';

export const ENGINE_DELTAS = 200_000;
const PUSH_BATCH = 1_000;
const PULL_LIMIT = 5_000;
/** The warm-up pushes this many batches: enough for the JIT, cheaper than a full run. */
const WARMUP_BATCHES = 50;
export const ENGINE_TARGET = 300_000;

interface BufferKind {
  readonly name: 'memory' | 'sqlite';
  open(): { buffer: DeltaBuffer; cleanup: () => void };
}

const KINDS: readonly BufferKind[] = [
  { name: 'memory', open: () => ({ buffer: new MemoryBuffer(), cleanup: () => {} }) },
  {
    name: 'sqlite',
    open: () => {
      const scratch = scratchDir('engine');
      // As the local server opens it (functions/local/server.ts).
      const buffer = new SqliteBuffer({ path: join(scratch.dir, 'buffer.sqlite'), synchronous: 'normal', checkpoint: 'background' });
      return { buffer, cleanup: scratch.cleanup };
    },
  },
];

/** Push every batch, then pull everything; a fresh gateway and buffer per run. */
async function runOnce(kind: BufferKind, batches: readonly (readonly Delta[])[], total: number): Promise<Record<string, number>> {
  const { buffer, cleanup } = kind.open();
  try {
    const gateway = new Gateway({ buffer, schema: BENCH_SCHEMA, rules: null, clock: new HybridLogicalClock() });
    const t0 = now();
    for (const deltas of batches) {
      const r = await gateway.push(PRINCIPAL, { clientId: CLIENT_ID, schemaVersion: 1, deltas });
      check(r.accepted === deltas.length, `push accepted ${r.accepted} of ${deltas.length}`);
    }
    const t1 = now();
    let cursor = '';
    let pulled = 0;
    for (;;) {
      const page = await gateway.pull(PRINCIPAL, { cursor, limit: PULL_LIMIT });
      pulled += page.changes.length;
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    const t2 = now();
    check(pulled === total, `pulled ${pulled} of ${total}`);
    return { push: t1 - t0, pull: t2 - t1, total: t2 - t0 };
  } finally {
    await buffer.close();
    cleanup();
  }
}

export async function benchEngine(kinds: readonly string[] = ['memory', 'sqlite']): Promise<BenchRow[]> {
  const deltas = buildInserts(ENGINE_DELTAS);
  const batches = chunk(deltas, PUSH_BATCH);
  const rows: BenchRow[] = [];
  for (const kind of KINDS.filter((k) => kinds.includes(k.name))) {
    const warm = batches.slice(0, WARMUP_BATCHES);
    const m = await measure(
      (i) => (i < 0 ? runOnce(kind, warm, warm.length * PUSH_BATCH) : runOnce(kind, batches, deltas.length)),
      { label: `engine ${kind.name}` },
    );
    const n = deltas.length;
    const target = kind.name === 'memory' ? ENGINE_TARGET : undefined;
    rows.push(
      {
        name: `engine ${kind.name}: push+pull`,
        count: n,
        unit: 'deltas',
        seconds: (m['total'] as number) / 1000,
        ...(target !== undefined ? { target } : {}),
        note: kind.name === 'memory' ? 'MemoryBuffer, in process' : 'SqliteBuffer temp file, synchronous=normal, background checkpoints',
      },
      { name: `engine ${kind.name}: push only`, count: n, unit: 'deltas', seconds: (m['push'] as number) / 1000, note: `batches of ${PUSH_BATCH}` },
      { name: `engine ${kind.name}: pull only`, count: n, unit: 'deltas', seconds: (m['pull'] as number) / 1000, note: `limit ${PULL_LIMIT}` },
    );
  }
  return rows;
}
