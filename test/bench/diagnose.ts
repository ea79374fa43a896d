/**
 * Where push time goes, for diagnosis (not part of `npm run bench`):
 *
 *   node --import tsx test/bench/diagnose.ts [memory|sqlite|http|apply]...
 *
 * Engine: wraps the buffer to time every port call and times the per-delta
 * validation steps the gateway runs (deltaIdMatches, schema validation) on
 * the same deltas; garbage collection is timed with a PerformanceObserver.
 * HTTP: the protobuf path on the local server and on the same app over a
 * MemoryBuffer, with the client's codec time split out.
 * Client apply: times LocalStore.applyRemote against its SQL statements.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { PerformanceObserver } from 'node:perf_hooks';
import {
  Gateway,
  HybridLogicalClock,
  JwtAuthenticator,
  applyDelta,
  createHttpApp,
  rowKey,
  visibleValues,
  MemoryBuffer,
  SchemaRegistry,
  type AppendResult,
  type Change,
  type Delta,
  type DeltaBuffer,
  type LogEntryDraft,
  type Hlc,
  type ReadResult,
  type RowRef,
  type RowState,
  type RowWrite,
  type StoredRow,
} from '../../core/index.ts';
import Database from 'better-sqlite3';
import { LAYOUT, SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import { encodeRow, Packer, packRow, packSegment } from '../../core/codec/storage.ts';
import { packStamps } from '../../core/codec/stamps.ts';
import { deltaIdMatches } from '../../core/engine/delta-id.ts';
import { LocalStore } from '../../clients/node/local-store.ts';
import { TEST_SECRET } from '../support/server.ts';
import { runHttpOnce, startBenchServer, startChildBenchServer, type BenchServer } from './http.ts';
import { BENCH_SCHEMA, CLIENT_ID, PRINCIPAL, buildInserts, chunk, gc, now, scratchDir } from './support.ts';

/** A DeltaBuffer that adds up the time spent in each call of the one it wraps. */
class TimingBuffer implements DeltaBuffer {
  readonly ms: Record<string, number> = { existing: 0, loadRows: 0, append: 0, read: 0 };
  constructor(private readonly inner: DeltaBuffer) {}
  private async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = now();
    try {
      return await fn();
    } finally {
      this.ms[name] = (this.ms[name] ?? 0) + now() - t0;
    }
  }
  existing(clientId: string, hlcs: readonly Hlc[]): Promise<(string | null)[]> {
    return this.time('existing', () => this.inner.existing(clientId, hlcs));
  }
  loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    return this.time('loadRows', () => this.inner.loadRows(keys));
  }
  append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    return this.time('append', () => this.inner.append(entries, rows));
  }
  read(after: bigint, limit: number): Promise<ReadResult> {
    return this.time('read', () => this.inner.read(after, limit));
  }
  head(): Promise<bigint> {
    return this.inner.head();
  }
  flushedThrough(): Promise<bigint> {
    return this.inner.flushedThrough();
  }
  markFlushed(seq: bigint): Promise<void> {
    return this.inner.markFlushed(seq);
  }
  trim(upTo: bigint): Promise<void> {
    return this.inner.trim(upTo);
  }
  floor(): Promise<bigint> {
    return this.inner.floor();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function gcTimer(): { stop: () => Promise<number> } {
  let total = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) total += e.duration;
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 50)); // entries are delivered asynchronously
      obs.disconnect();
      return total;
    },
  };
}

const APPLY = 100_000;

const fmt = (ms: number, of: number): string => `${ms.toFixed(0).padStart(6)} ms ${((100 * ms) / of).toFixed(0).padStart(3)}%`;

async function engine(kind: 'memory' | 'sqlite', deltas: readonly Delta[]): Promise<void> {
  const batches = chunk(deltas, 1000);
  for (let rep = 0; rep < 2; rep++) {
    // First pass warms up; the second is reported.
    const scratch = scratchDir('diag');
    const inner =
      kind === 'memory'
        ? new MemoryBuffer()
        : new SqliteBuffer({ path: join(scratch.dir, 'b.sqlite'), synchronous: 'normal', checkpoint: 'background' });
    const buffer = new TimingBuffer(inner);
    const gateway = new Gateway({ buffer, schema: BENCH_SCHEMA, rules: null, clock: new HybridLogicalClock() });
    gc();
    const gcs = gcTimer();
    const t0 = now();
    for (const b of batches) await gateway.push(PRINCIPAL, { clientId: CLIENT_ID, schemaVersion: 1, deltas: b });
    const push = now() - t0;
    const gcMs = await gcs.stop();
    await buffer.close();
    scratch.cleanup();
    if (rep === 0) continue;

    // The gateway's per-delta validation, on its own, over the same deltas.
    const registry = new SchemaRegistry(BENCH_SCHEMA);
    const t1 = now();
    let bad = 0;
    for (const d of deltas) if (!deltaIdMatches(d)) bad++;
    const ids = now() - t1;
    const t2 = now();
    deltas.forEach((d, i) => registry.validate(d, i));
    const validate = now() - t2;
    // What plan() does per fresh row: merge, the visible values, the rule snapshot.
    const t3 = now();
    for (const d of deltas) {
      const next = applyDelta(undefined, d);
      if (visibleValues(next) === null || rowKey(d.table, d.rowId) === '') bad++;
    }
    const merge = now() - t3;

    const bufferMs = buffer.ms['existing']! + buffer.ms['loadRows']! + buffer.ms['append']!;
    console.log(`engine ${kind}: push of ${deltas.length} deltas took ${push.toFixed(0)} ms (${Math.round(deltas.length / (push / 1000)).toLocaleString('en-US')}/s)`);
    console.log(`  deltaIdMatches (standalone)  ${fmt(ids, push)}${bad > 0 ? ` (${bad} mismatches!)` : ''}`);
    console.log(`  schema validate (standalone) ${fmt(validate, push)}`);
    for (const name of ['existing', 'loadRows', 'append'] as const) console.log(`  buffer.${name.padEnd(22)}${fmt(buffer.ms[name]!, push)}`);
    console.log(`  applyDelta+visibleValues (standalone) ${fmt(merge, push)}`);
    console.log(`  rest of gateway (bookkeeping, GC) ${fmt(push - bufferMs - ids - validate - merge, push)}`);
    console.log(`  garbage collection (overlaps the above) ${fmt(gcMs, push)}`);
  }
}

/**
 * Client apply as a ladder: from the baseline's plain upserts, add one thing
 * LocalStore.applyRemote does at a time (the same SQL as
 * clients/node/local-store.ts), ending with applyRemote itself.
 */
function applyLadder(deltas: readonly Delta[]): void {
  const states = deltas.map((d) => applyDelta(undefined, d));
  const blobs = states.map((st) => encodeRow(st));
  const pages = chunk(deltas, 1000);
  const params = (d: Delta): unknown[] => {
    const c = d.columns;
    return [d.rowId, c['title'] ?? null, c['done'] === undefined || c['done'] === null ? null : c['done'] ? 1 : 0, c['position'] ?? null, c['score'] ?? null];
  };
  type Step = (db: Database.Database) => void;
  const setup = (db: Database.Database): Record<string, Database.Statement<unknown[]>> => {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`CREATE TABLE todos (id TEXT PRIMARY KEY NOT NULL, title TEXT, done INTEGER, position INTEGER, score REAL);
      CREATE TABLE _lakesync_rows (tbl TEXT NOT NULL, row_id TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tbl, row_id)) WITHOUT ROWID;
      CREATE TABLE _lakesync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`);
    return {
      upsert: db.prepare(
        'INSERT INTO todos (id, title, done, position, score) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title, done = excluded.done, position = excluded.position, score = excluded.score',
      ),
      putRow: db.prepare(
        'INSERT INTO _lakesync_rows (tbl, row_id, state) VALUES (?, ?, ?) ON CONFLICT (tbl, row_id) DO UPDATE SET state = excluded.state',
      ),
      getRows: db.prepare('SELECT row_id, state FROM _lakesync_rows WHERE tbl = ? AND row_id IN (SELECT value FROM json_each(?))'),
      setMeta: db.prepare('INSERT INTO _lakesync_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  };
  const steps: [string, Step][] = [
    [
      'A baseline: app-table upserts, 1 transaction',
      (db) => {
        const st = setup(db);
        db.transaction(() => deltas.forEach((d) => st['upsert']!.run(...params(d))))();
      },
    ],
    [
      'B  A in 100 transactions of 1,000 (+ cursor meta)',
      (db) => {
        const st = setup(db);
        pages.forEach((p, i) =>
          db.transaction(() => {
            p.forEach((d) => st['upsert']!.run(...params(d)));
            st['setMeta']!.run('cursor', String(i));
          })(),
        );
      },
    ],
    [
      'C  B + _lakesync_rows upsert of the state blob (pre-encoded)',
      (db) => {
        const st = setup(db);
        let k = 0;
        pages.forEach((p, i) =>
          db.transaction(() => {
            for (const d of p) {
              st['putRow']!.run(d.table, d.rowId, blobs[k++]);
              st['upsert']!.run(...params(d));
            }
            st['setMeta']!.run('cursor', String(i));
          })(),
        );
      },
    ],
    [
      'D  C + preload query per page (json_each IN)',
      (db) => {
        const st = setup(db);
        let k = 0;
        pages.forEach((p, i) =>
          db.transaction(() => {
            st['getRows']!.all('todos', JSON.stringify(p.map((d) => d.rowId)));
            for (const d of p) {
              st['putRow']!.run(d.table, d.rowId, blobs[k++]);
              st['upsert']!.run(...params(d));
            }
            st['setMeta']!.run('cursor', String(i));
          })(),
        );
      },
    ],
    [
      'E  LocalStore.applyRemote (adds merge, encodeRow, visibleValues)',
      (db) => {
        const store = new LocalStore(db, BENCH_SCHEMA);
        pages.forEach((p, i) => store.applyRemote(p.map((delta): Change => ({ kind: 'delta', delta })), String(i)));
      },
    ],
  ];
  for (let rep = 0; rep < 2; rep++) {
    for (const [name, step] of steps) {
      const scratch = scratchDir('ladder');
      const db = new Database(join(scratch.dir, 'x.sqlite'));
      gc();
      const t0 = now();
      step(db);
      const ms = now() - t0;
      db.close();
      scratch.cleanup();
      if (rep === 1) console.log(`  ${name.padEnd(66)} ${ms.toFixed(0).padStart(5)} ms`);
    }
  }
}

/**
 * SqliteBuffer.append taken apart: the storage encodings on their own, then
 * the same statements as core/adapters/sqlite-buffer.ts (multi-row, 64 rows
 * each) with constant blobs: rows, the log segment, the stamp index.
 */
function sqliteAppendParts(deltas: readonly Delta[]): void {
  const states = deltas.map((d) => applyDelta(undefined, d));
  const entries = deltas.map((d) => ({ delta: d, before: null, after: {}, fresh: true }));
  const packer = new Packer();
  const encodes: [string, (i: number) => unknown][] = [
    ['packRow (core/codec/storage.ts)', (i) => (packer.reset(), packRow(packer, states[i] as RowState))],
    ['packSegment, per entry (core/codec/storage.ts)', (i) => (i % 1000 === 0 ? (packer.reset(), packSegment(packer, entries.slice(i, i + 1000))) : 0)],
  ];
  const CHUNK = 64;
  const sql = (parts: { rows: boolean; stamps: boolean }): number => {
    const scratch = scratchDir('append');
    const db = new Database(join(scratch.dir, 'x.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(LAYOUT);
    const many = (sql: string, tuple: string): Database.Statement<unknown[]> => db.prepare(sql + Array.from({ length: CHUNK }, () => tuple).join(', '));
    const insertRows = many('INSERT INTO ls_rows (tbl, row_id, version, state) VALUES ', '(?, ?, 1, ?)');
    const insertRun = db.prepare('INSERT INTO ls_stamp_runs (client_id, max_hlc, min_hlc, stamps) VALUES (?, ?, ?, ?)');
    const insertSegment = db.prepare('INSERT INTO ls_log (first_seq, count, body) VALUES (?, ?, ?)');
    const row = new Uint8Array(80);
    const segment = new Uint8Array(120 * 1000);
    const tx = db.transaction((lo: number, hi: number) => {
      for (let i = lo; i + CHUNK <= hi; i += CHUNK) {
        const p: unknown[] = [];
        for (let j = i; j < i + CHUNK; j++) p.push('todos', (deltas[j] as Delta).rowId, row);
        if (parts.rows) insertRows.run(p);
      }
      insertSegment.run(lo + 1, hi - lo, segment);
      if (parts.stamps) {
        const hlcs = Array.from({ length: hi - lo }, (_, k) => BigInt(lo + k));
        insertRun.run(CLIENT_ID, BigInt(hi - 1), BigInt(lo), packStamps({ hlcs, seqs: hlcs.map((h) => Number(h) + 1) }));
      }
    });
    gc();
    const t0 = now();
    for (let i = 0; i < deltas.length; i += 1000) tx.immediate(i, Math.min(deltas.length, i + 1000));
    const ms = now() - t0;
    db.close();
    scratch.cleanup();
    return ms;
  };
  console.log(`SqliteBuffer.append parts, ${deltas.length} deltas in batches of 1,000:`);
  for (let rep = 0; rep < 2; rep++) {
    for (const [name, fn] of encodes) {
      const t0 = now();
      for (let i = 0; i < deltas.length; i++) fn(i);
      if (rep === 1) console.log(`  ${name.padEnd(58)} ${(now() - t0).toFixed(0).padStart(5)} ms`);
    }
  }
  sql({ rows: true, stamps: true }); // warm-up
  for (const [name, parts] of [
    ['SQL as SqliteBuffer: rows, segment, stamps (constant blobs)', { rows: true, stamps: true }],
    ['  segment and stamps only', { rows: false, stamps: true }],
    ['  segment only', { rows: false, stamps: false }],
  ] as const) {
    console.log(`  ${name.padEnd(58)} ${sql(parts).toFixed(0).padStart(5)} ms`);
  }
}

/** The HTTP path with the same app and auth as the local server, but on a MemoryBuffer: the codec and HTTP ceiling. */
async function startMemoryServer(): Promise<BenchServer> {
  const gateway = new Gateway({ buffer: new MemoryBuffer(), schema: BENCH_SCHEMA, rules: null, clock: new HybridLogicalClock() });
  const app = createHttpApp({ gateway, auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }) });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      }),
  };
}

async function http(deltas: readonly Delta[]): Promise<void> {
  const batches = chunk(deltas, 1000);
  for (const [name, start] of [
    ['SqliteBuffer, server in a child process (npm start)', () => startChildBenchServer()],
    ['SqliteBuffer, server in this process (startTestServer)', startBenchServer],
    ['MemoryBuffer, server in this process (same app, same auth)', startMemoryServer],
  ] as const) {
    await runHttpOnce('proto', [batches.slice(0, 20)], start); // warm-up
    gc();
    const m = await runHttpOnce('proto', [batches], start);
    const rate = Math.round(deltas.length / ((m['total'] as number) / 1000)).toLocaleString('en-US');
    console.log(`http proto, ${name}: ${(m['total'] as number).toFixed(0)} ms (${rate}/s)`);
    console.log(`  push ${(m['push'] as number).toFixed(0)} ms, of which client encodePushRequest ${(m['clientEncode'] as number).toFixed(0)} ms`);
    console.log(`  pull ${(m['pull'] as number).toFixed(0)} ms, of which client decodePullResponse ${(m['clientDecode'] as number).toFixed(0)} ms`);
    if (Number.isFinite(m['serverCpu'])) {
      console.log(`  cpu: server process ${(m['serverCpu'] as number).toFixed(0)} ms, this process ${(m['clientCpu'] as number).toFixed(0)} ms`);
    }
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const all = wanted.length === 0;
  const deltas = buildInserts(200_000);
  if (all || wanted.includes('memory')) await engine('memory', deltas);
  if (all || wanted.includes('sqlite')) {
    await engine('sqlite', deltas);
    sqliteAppendParts(deltas);
  }
  if (all || wanted.includes('http')) await http(deltas.slice(0, 100_000));
  if (all || wanted.includes('apply')) {
    console.log(`client apply, ${APPLY} inserts (one run after a warm-up)`);
    applyLadder(deltas.slice(0, APPLY));
  }
}

await main();
