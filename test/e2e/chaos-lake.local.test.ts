import { appendFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { watermark } from '../../core/lake/flush.ts';
import { removeOrphans } from '../../core/lake/maintenance.ts';
import { openLocalLake } from '../../functions/local/lake.ts';
import { pyicebergScan } from '../support/lake.ts';
import { ensurePythonEnv } from '../support/python.ts';
import { TODO_SCHEMA, adminFlush, freePort, startChildServer, tempDir, tokenFor, type ChildServer } from '../support/server.ts';
import { mulberry32 } from '../support/prng.ts';

/**
 * Chaos for the embedded default's lake: clients write and sync without
 * pause while the real server process (flush every few ms, maintenance with
 * compaction and expiry, a checkpoint every few dozen deltas, a small buffer
 * window) is SIGKILLed at random moments and restarted on the same data dir.
 * Whatever step the kill hit (Parquet being written, a rename, a catalog
 * commit, the flushed mark, a checkpoint build, a compaction), at the end
 * every acknowledged delta is in the lake's change table exactly once, the
 * state table equals the converged clients, and a new client that starts
 * from a checkpoint equals them too. Only invariants are asserted; the kill
 * points hit are printed. CHAOS_SEED=<n> replays a run's kill schedule and
 * writes (timing still varies).
 */
const KILLS = 8;
const SEED = Number(process.env['CHAOS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const LAKE_ENV = {
  LAKESYNC_FLUSH_INTERVAL_MS: '40',
  LAKESYNC_CHECKPOINT_EVERY: '40',
  LAKESYNC_RETAIN_DELTAS: '30',
  LAKESYNC_MAINTENANCE_INTERVAL_MS: '300',
  LAKESYNC_SNAPSHOT_RETENTION_MS: '0',
  LAKESYNC_SYNCHRONOUS: 'full',
};
const COLUMNS = ['title', 'done', 'owner', 'position', 'score', 'meta'] as const;


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the data dir shows about the step a kill interrupted (read while the server is down). */
interface KillPoint {
  readonly lastLog: string;
  /** Files no snapshot references: what a write killed before its commit (or its rename) leaves. */
  readonly orphans: readonly string[];
  /** Tables whose watermark is past the buffer's flushed mark: killed between a commit and markFlushed. */
  readonly committedUnmarked: string[];
  readonly unpublishedCheckpoints: number;
}

async function probe(dataDir: string, lastLog: string): Promise<KillPoint> {
  const db = new Database(join(dataDir, 'buffer.sqlite'));
  const flushed = BigInt((db.prepare("SELECT value FROM ls_meta WHERE key = 'flushed'").pluck().get() as number | undefined) ?? 0);
  db.close();
  const local = openLocalLake(dataDir, TODO_SCHEMA, { fsync: false });
  const orphans: string[] = [];
  const committedUnmarked: string[] = [];
  try {
    for (const name of ['todos_changes', 'todos']) {
      const t = await local.lake.catalog.loadTable(local.lake.ident(name));
      if (t === null) continue;
      if ((await watermark(t.metadata)) > flushed) committedUnmarked.push(name);
      const r = await removeOrphans(local.lake, name, { olderThanMs: Date.now() + 60_000, dryRun: true });
      orphans.push(...r.orphans);
    }
  } finally {
    local.close();
  }
  const cpDir = join(dataDir, 'lake/warehouse/lakesync/_checkpoints');
  let unpublishedCheckpoints = 0;
  if (existsSync(cpDir)) {
    const pointers = existsSync(join(cpDir, 'latest')) ? readdirSync(join(cpDir, 'latest')).join(' ') : '';
    unpublishedCheckpoints = readdirSync(cpDir).filter((d) => d !== 'latest' && d !== 'latest.json' && !pointers.includes(d)).length;
  }
  return { lastLog, orphans, committedUnmarked, unpublishedCheckpoints };
}

/** A client row or a lake row in one comparable shape. */
function normalize(row: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const c of COLUMNS) {
    let v = row[c] ?? null;
    if (c === 'done' && v !== null) v = v === true || v === 1 || v === '1';
    if (c === 'position' && v !== null) v = String(v);
    if (c === 'score' && v !== null) v = Number(v);
    if (c === 'meta' && typeof v === 'string') v = JSON.stringify(JSON.parse(v));
    out[c] = v;
  }
  return JSON.stringify(out);
}

function clientRows(c: LakeSyncClient): Map<string, string> {
  const rows = c.db.prepare('SELECT * FROM todos ORDER BY id').all() as Record<string, unknown>[];
  return new Map(rows.map((r) => [r['id'] as string, normalize(r)]));
}

describe('chaos: SIGKILL of the server while it writes the lake', () => {
  const cleanup: (() => Promise<void>)[] = [];
  beforeAll(() => {
    ensurePythonEnv();
  });
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  });

  it(`no acknowledged delta is lost or duplicated (seed ${SEED})`, { timeout: 180_000 }, async () => {
    const dataDir = tempDir('lakesync-chaos-');
    // The server's log is kept in the data dir, and acked.json when deltas are missing.
    const why = `CHAOS_SEED=${SEED}, data dir ${dataDir}`;
    const rnd = mulberry32(SEED);
    const port = await freePort();
    let lastLog = '';
    let lakeJobs = 0;
    const start = async (): Promise<ChildServer> => {
      const s = await startChildServer({ dataDir, port, env: LAKE_ENV });
      appendFileSync(join(dataDir, 'server.log'), `--- start ${new Date().toISOString()}\n`);
      s.process.stdout?.on('data', (chunk: Buffer) => {
        appendFileSync(join(dataDir, 'server.log'), chunk);
        // The last lake job that finished before the kill (pushes and pulls log too, every few ms).
        for (const line of chunk.toString().split('\n')) {
          if (!line.includes('"msg":"lake ')) continue;
          lastLog = line;
          lakeJobs++;
        }
      });
      return s;
    };
    let server = await start();
    cleanup.push(() => server.stop());

    const acked = new Map<string, string>();
    let ackedTotal = 0;
    const open = async (clientId: string, database = ':memory:', fetchFn: typeof fetch = fetch): Promise<LakeSyncClient> => {
      const c = await LakeSyncClient.open({
        url: server.url,
        database,
        clientId,
        schema: TODO_SCHEMA,
        getToken: ({ clientId: id }) => tokenFor('user-1', id),
        pushBatch: 20,
        requestTimeoutMs: 5000,
        fetch: fetchFn,
      });
      cleanup.push(() => c.close());
      // Acknowledged = dropped from the outbox after the server answered a push.
      const acknowledge = c.store.acknowledge.bind(c.store);
      c.store.acknowledge = (upto: number): void => {
        for (const item of c.store.outbox(1_000_000)) {
          if (item.seq > upto) break;
          const d = item.delta;
          acked.set(d.deltaId, `${d.clientId} ${d.op} ${d.rowId} ${d.hlc}`);
          ackedTotal++;
        }
        acknowledge(upto);
      };
      return c;
    };
    const writers = [await open('w1', join(tempDir(), 'w1.db')), await open('w2', join(tempDir(), 'w2.db')), await open('w3')];

    let stop = false;
    const work = writers.map(async (c, n) => {
      const r = mulberry32(SEED + n + 1);
      let next = 0;
      while (!stop) {
        c.transaction(() => {
          const ids = c.db.prepare('SELECT id FROM todos').pluck().all() as string[];
          for (let k = 1 + Math.floor(r() * 4); k > 0; k--) {
            const p = r();
            const existing = ids.length > 0 ? (ids[Math.floor(r() * ids.length)] as string) : null;
            if (existing === null || p < 0.45) {
              const i = next++;
              c.insert('todos', `${c.clientId}-${i}`, { title: `t ${i}`, done: false, owner: c.clientId, position: i, score: r(), meta: { n: i } });
            } else if (p < 0.85) {
              c.update('todos', existing, r() < 0.2 ? { title: null, done: true } : { title: `edit ${Math.floor(r() * 1000)}`, score: r() });
            } else {
              c.delete('todos', existing);
            }
          }
        });
        await c.sync().catch(() => sleep(20)); // the server is down: keep writing offline
        await sleep(30 + Math.floor(r() * 40)); // a pace the flush keeps up with, so kills also land after commits
      }
    });

    const points: KillPoint[] = [];
    for (let k = 0; k < KILLS; k++) {
      if (rnd() < 0.35) {
        // While the lake worker boots and runs its first flush of what piled up while the server was down.
        await sleep(100 + Math.floor(rnd() * 1500));
      } else {
        // Once the worker has finished a job: into a later flush, checkpoint or maintenance run.
        const until = Date.now() + 5000;
        while (lakeJobs === 0 && Date.now() < until) await sleep(10);
        await sleep(Math.floor(rnd() * 700));
      }
      await server.kill();
      points.push(await probe(dataDir, lastLog));
      lastLog = '';
      lakeJobs = 0;
      server = await start();
    }
    stop = true;
    await Promise.all(work);

    // Every outbox drains; then every client pulls what the others pushed last.
    for (const c of writers) await c.sync();
    for (const c of writers) await c.sync();
    for (const c of writers) {
      expect(c.store.pendingCount(), why).toBe(0);
      expect(c.db.prepare('SELECT count(*) FROM _lakesync_rejected').pluck().get(), why).toBe(0);
    }
    const expected = clientRows(writers[0] as LakeSyncClient);
    for (const c of writers.slice(1)) expect(clientRows(c), `${why}: ${c.clientId} diverged`).toEqual(expected);
    expect(ackedTotal, `${why}: a delta was acknowledged twice`).toBe(acked.size);

    // The buffer logged each delta once.
    const stats = await fetch(`${server.url}/v1/admin/stats`, {
      headers: { authorization: `Bearer ${await tokenFor('admin', 'admin', { role: 'admin' })}` },
    });
    const head = ((await stats.json()) as { head: string }).head;
    expect(head, why).toBe(String(acked.size));
    const flushed = await adminFlush(server.url);
    expect(flushed.flush.to, `${why}: the admin flush answered before flushing everything acknowledged before it`).toBe(head);
    expect(BigInt(flushed.floor), `${why}: the buffer was never trimmed, so no checkpoint is needed`).toBeGreaterThan(0n);
    await server.stop();

    // Orphan removal with no age cut-off: the files dead attempts left go, the tables stay whole.
    const before = await probe(dataDir, '');
    const local = openLocalLake(dataDir, TODO_SCHEMA, { fsync: false });
    let removed = 0;
    try {
      for (const name of ['todos_changes', 'todos']) removed += (await removeOrphans(local.lake, name, { olderThanMs: Date.now() + 1000 })).orphans.length;
    } finally {
      local.close();
    }
    const lakeEnv = { catalogPath: join(dataDir, 'lake/catalog.db'), warehouse: local.warehouse };
    const changeRows = pyicebergScan(lakeEnv, 'todos_changes').rows;
    const changes = changeRows.map((r) => r['_delta_id'] as string);
    const once = new Set<string>();
    const dupes = changes.filter((id) => once.has(id) || (once.add(id), false));
    expect(dupes, `${why}: deltas twice in todos_changes`).toEqual([]);
    const lost = [...acked.keys()].filter((id) => !once.has(id));
    if (lost.length > 0) {
      writeFileSync(join(dataDir, 'acked.json'), JSON.stringify([...acked]));
      const extra = changeRows.filter((r) => !acked.has(r['_delta_id'] as string));
      console.log(
        `lost ${lost.length}: ${lost.slice(0, 10).map((id) => acked.get(id)).join(' | ')}\nin the lake, not acknowledged ${extra.length}: ${extra
          .slice(0, 10)
          .map((r) => `${r['_client_id']} ${r['_op']} ${r['_row_id']} ${r['_hlc']} seq ${r['_seq']}`)
          .join(' | ')}`,
      );
    }
    expect(lost, `${why}: acknowledged deltas missing from todos_changes`).toEqual([]);
    expect(changes.length, `${why}: todos_changes holds deltas nobody acknowledged`).toBe(acked.size);
    const state = pyicebergScan(lakeEnv, 'todos').rows;
    expect(new Map(state.map((r) => [r['_row_id'] as string, normalize(r)])), `${why}: lake state != clients`).toEqual(expected);

    // The server flushes on top of the cleaned lake, and a new client starts from a checkpoint.
    server = await start();
    let chunks = 0;
    const fresh = await open('fresh', ':memory:', (input, init) => {
      if (/\/v1\/checkpoint\/[^/]+\/\d+/.test(String(input instanceof Request ? input.url : input))) chunks++;
      return fetch(input, init);
    });
    await fresh.sync();
    expect(clientRows(fresh), `${why}: the fresh client differs`).toEqual(expected);
    expect(chunks, `${why}: the fresh client loaded no checkpoint`).toBeGreaterThan(0);
    writers[0]?.insert('todos', 'after-orphans', { title: 'after' });
    await writers[0]?.sync();
    expect((await adminFlush(server.url)).flush.to, why).toBe(String(acked.size));

    // What each kill left that the one before had not: new orphans by kind, a commit without its flushed mark.
    const seen = new Set<string>();
    const summary = points.map((p, i) => {
      const added = p.orphans.filter((o) => !seen.has(o));
      for (const o of added) seen.add(o);
      const kinds = new Map<string, number>();
      for (const o of added) {
        const kind = o.endsWith('.tmp') ? 'tmp' : o.endsWith('.metadata.json') ? 'metadata' : /\/metadata\/.*\.avro$/.test(o) ? 'manifest' : 'parquet';
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      const msg = /"msg":"([^"]+)"/.exec(p.lastLog)?.[1] ?? 'none';
      return `kill ${i + 1}: new orphans {${[...kinds].map(([k, n]) => `${k}: ${n}`).join(', ')}}, committed but not marked flushed [${p.committedUnmarked.join(', ')}], unpublished checkpoints ${p.unpublishedCheckpoints}, last lake job done: ${msg}`;
    });
    console.log(
      `chaos CHAOS_SEED=${SEED}: ${KILLS} kills, ${acked.size} deltas, ${expected.size} rows, ${removed} orphans removed at the end (before: ${before.orphans.length})\n${summary.join('\n')}`,
    );
  });
});
