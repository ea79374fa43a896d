import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CONTENT_TYPES,
  decodePullResponse,
  decodePushResponse,
  encodePushRequest,
  makeDelta,
  type Delta,
  type WireFormat,
} from '../../core/index.ts';
import { ROOT, TEST_SECRET, freePort, startTestServer, tokenFor } from '../support/server.ts';
import type { BenchRow } from './table.ts';
import { BENCH_SCHEMA, CLIENT_ID, buildInserts, check, chunk, hlcClock, insertColumns, measure, now, scratchDir, type Splits } from './support.ts';

export const HTTP_DELTAS = 100_000;
const PUSH_BATCH = 1_000;
const PULL_LIMIT = 5_000;
const WARMUP_BATCHES = 20;
export const HTTP_PROTO_TARGET = 100_000;

export interface HttpOptions {
  readonly formats?: readonly WireFormat[];
  /** Concurrent pushing clients (each its own client id and token, its own rows, batches in order). */
  readonly streams?: number;
  /** Where the server runs: a child process like `npm start` (default), or this process. */
  readonly server?: 'child' | 'in-process';
}

async function post(url: string, token: string, format: WireFormat, body: Uint8Array): Promise<number> {
  const res = await fetch(`${url}/v1/push`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPES[format], accept: CONTENT_TYPES[format] },
    body: body as Uint8Array<ArrayBuffer>,
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  check(res.ok, `push answered ${res.status}: ${new TextDecoder().decode(bytes).slice(0, 200)}`);
  return decodePushResponse(format, bytes).accepted;
}

export interface BenchServer {
  readonly url: string;
  /** Where the timed pull starts: the head after any untimed warm-up of this server. */
  readonly cursor?: string;
  /** CPU time the server process has used so far, in ms, when it runs in its own process. */
  cpuMs?(): number;
  close(): Promise<void>;
}

/** The local server as tests start it: SqliteBuffer (synchronous=normal) in a fresh data dir, in this process. */
export async function startBenchServer(): Promise<BenchServer> {
  const scratch = scratchDir('http');
  const server = await startTestServer({ schema: BENCH_SCHEMA, dataDir: scratch.dir });
  return {
    url: server.url,
    close: async () => {
      await server.close();
      scratch.cleanup();
    },
  };
}

/**
 * The real `npm start` entry point (functions/local/main.ts) in a child
 * process, so server and client each get a core, as in a deployment:
 * SqliteBuffer with synchronous=normal in a fresh data dir. A new process
 * starts cold, so before timing it serves an untimed warm-up from another
 * client (its own rows); the timed pull starts after those entries.
 */
export async function startChildBenchServer(warmupBatches = WARMUP_BATCHES): Promise<BenchServer> {
  const scratch = scratchDir('http-child');
  const port = await freePort();
  const config = join(scratch.dir, 'config.json');
  writeFileSync(config, JSON.stringify({ schema: BENCH_SCHEMA, rules: null }));
  // BENCH_SERVER_NODE_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof-server".
  const nodeArgs = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(ROOT, 'functions/local/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      LAKESYNC_PORT: String(port),
      LAKESYNC_DATA_DIR: scratch.dir,
      LAKESYNC_CONFIG: config,
      LAKESYNC_JWT_SECRET: TEST_SECRET,
      LAKESYNC_SYNCHRONOUS: 'normal',
      // Push and pull only: the lake's background flush would compete for the CPU mid-run.
      LAKESYNC_LAKE: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  await new Promise<void>((resolveReady, reject) => {
    let out = '';
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (out.includes('lakesync listening')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // one log line per push: keep the pipe drained
        resolveReady();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}: ${out}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const close = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
    scratch.cleanup();
  };
  try {
    const cursor = await warmUp(url, warmupBatches);
    const pid = child.pid;
    return { url, cursor, close, ...(pid !== undefined ? { cpuMs: () => processCpuMs(pid) } : {}) };
  } catch (err) {
    await close();
    throw err;
  }
}

/** User plus system CPU time of a process (Linux /proc; NaN elsewhere). */
function processCpuMs(pid: number): number {
  try {
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Push and pull `batches` batches of client `warm` (rows w0, w1, ...); returns the cursor after them. */
async function warmUp(url: string, batches: number): Promise<string> {
  const token = await tokenFor('u', 'warm');
  const hlcAt = hlcClock();
  let i = 0;
  for (const format of ['proto', 'json'] as const) {
    for (let b = 0; b < batches; b++) {
      const deltas = Array.from({ length: PUSH_BATCH }, () => {
        i++;
        return makeDelta({ table: 'todos', rowId: `w${i}`, op: 'insert', columns: insertColumns(i), hlc: hlcAt(i), clientId: 'warm' });
      });
      const body = encodePushRequest(format, { clientId: 'warm', schemaVersion: 1, deltas });
      check((await post(url, token, format, body)) === PUSH_BATCH, 'warm-up push');
    }
  }
  let cursor = '';
  for (const format of ['proto', 'json'] as const) {
    cursor = '';
    for (;;) {
      const page = await pull(url, token, format, cursor);
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
  }
  return cursor;
}

async function pull(url: string, token: string, format: WireFormat, cursor: string): Promise<ReturnType<typeof decodePullResponse>> {
  const res = await fetch(`${url}/v1/pull?limit=${PULL_LIMIT}&cursor=${cursor}`, {
    headers: { authorization: `Bearer ${token}`, accept: CONTENT_TYPES[format] },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  check(res.ok, `pull answered ${res.status}`);
  return decodePullResponse(format, bytes);
}

/**
 * One run against a fresh server: encode and POST every batch, then GET and
 * decode every pull page. Client encoding and decoding are inside the timed
 * sections (and also reported on their own as clientEncode/clientDecode).
 */
export async function runHttpOnce(
  format: WireFormat,
  clients: readonly (readonly (readonly Delta[])[])[],
  start: () => Promise<BenchServer> = startBenchServer,
): Promise<Splits> {
  const server = await start();
  try {
    const tokens = await Promise.all(clients.map((batches) => tokenFor('u', (batches[0]?.[0] as Delta).clientId)));
    const token = tokens[0] as string;
    const total = clients.reduce((n, batches) => n + batches.reduce((m, b) => m + b.length, 0), 0);
    let accepted = 0;
    let clientEncode = 0;
    let clientDecode = 0;
    const s0 = server.cpuMs?.() ?? NaN;
    const c0 = cpuNow();
    const t0 = now();
    await Promise.all(
      clients.map(async (batches, s) => {
        for (const deltas of batches) {
          const e0 = now();
          const body = encodePushRequest(format, { clientId: (deltas[0] as Delta).clientId, schemaVersion: 1, deltas });
          clientEncode += now() - e0;
          const n = await post(server.url, tokens[s] as string, format, body); // not `accepted += await`: clients interleave
          accepted += n;
        }
      }),
    );
    const t1 = now();
    let cursor = server.cursor ?? '';
    let pulled = 0;
    for (;;) {
      const res = await fetch(`${server.url}/v1/pull?limit=${PULL_LIMIT}&cursor=${cursor}`, {
        headers: { authorization: `Bearer ${token}`, accept: CONTENT_TYPES[format] },
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      check(res.ok, `pull answered ${res.status}`);
      const d0 = now();
      const page = decodePullResponse(format, bytes);
      clientDecode += now() - d0;
      pulled += page.changes.length;
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    const t2 = now();
    const serverCpu = (server.cpuMs?.() ?? NaN) - s0;
    const clientCpu = cpuNow() - c0;
    check(accepted === total, `accepted ${accepted} of ${total}`);
    check(pulled === total, `pulled ${pulled} of ${total}`);
    return { push: t1 - t0, pull: t2 - t1, total: t2 - t0, clientEncode, clientDecode, serverCpu, clientCpu };
  } finally {
    await server.close();
  }
}

export async function benchHttp(options: HttpOptions = {}): Promise<BenchRow[]> {
  const formats = options.formats ?? ['proto', 'json'];
  // BENCH_HTTP_SERVER=in-process and BENCH_HTTP_STREAMS=n vary the setup from the command line.
  const streams = options.streams ?? Number(process.env['BENCH_HTTP_STREAMS'] ?? '1');
  const child = (options.server ?? process.env['BENCH_HTTP_SERVER'] ?? 'child') !== 'in-process';
  // Each pushing client writes its own rows under its own client id.
  const share = HTTP_DELTAS / streams;
  const clients = Array.from({ length: streams }, (_, s) =>
    chunk(buildInserts(share, hlcClock(), streams === 1 ? CLIENT_ID : `${CLIENT_ID}-${s}`, s * share), PUSH_BATCH),
  );
  const warmup = clients.map((batches) => batches.slice(0, Math.ceil(WARMUP_BATCHES / streams)));
  const rows: BenchRow[] = [];
  const where = child ? 'server in a child process' : 'server shares this process';
  const shared = `${where}${streams > 1 ? `, ${streams} clients pushing at once` : ''}`;
  const start = child ? () => startChildBenchServer() : startBenchServer;
  for (const format of formats) {
    const m = await measure((i) => runHttpOnce(format, i < 0 ? warmup : clients, start), {
      label: `http ${format}${streams > 1 ? ` x${streams}` : ''}`,
    });
    const target = format === 'proto' ? HTTP_PROTO_TARGET : undefined;
    rows.push(
      {
        name: `http ${format}: push+pull${streams > 1 ? `, ${streams} clients` : ''}`,
        count: HTTP_DELTAS,
        unit: 'deltas',
        seconds: (m['total'] as number) / 1000,
        ...(target !== undefined ? { target } : {}),
        note: `SqliteBuffer; ${shared}; client codec ${(((m['clientEncode'] as number) + (m['clientDecode'] as number)) / 1000).toFixed(2)} s${
          child ? `; cpu: server ${((m['serverCpu'] as number) / 1000).toFixed(2)} s, client ${((m['clientCpu'] as number) / 1000).toFixed(2)} s` : ''
        }`,
      },
      { name: `http ${format}: push only${streams > 1 ? `, ${streams} clients` : ''}`, count: HTTP_DELTAS, unit: 'deltas', seconds: (m['push'] as number) / 1000, note: `batches of ${PUSH_BATCH}` },
      { name: `http ${format}: pull only${streams > 1 ? ` (after ${streams} clients)` : ''}`, count: HTTP_DELTAS, unit: 'deltas', seconds: (m['pull'] as number) / 1000, note: `limit ${PULL_LIMIT}` },
    );
  }
  return rows;
}
