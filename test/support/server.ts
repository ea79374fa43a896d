import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signHs256Token, type Schema, type SyncRules } from '../../core/index.ts';
import type { LakeSettings } from '../../functions/local/config.ts';
import { startLocalServer } from '../../functions/local/server.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!';

export const TODO_SCHEMA: Schema = {
  version: 1,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'done', type: 'boolean' },
        { name: 'owner', type: 'string' },
        { name: 'position', type: 'integer' },
        { name: 'score', type: 'number' },
        { name: 'meta', type: 'json' },
      ],
    },
  ],
};

export interface TestServer {
  readonly url: string;
  readonly dataDir: string;
  token(sub: string, clientId: string, extra?: Record<string, unknown>): Promise<string>;
  liveConnections(): number;
  close(): Promise<void>;
}

export interface ServerSetup {
  schema?: Schema;
  rules?: SyncRules | null;
  dataDir?: string;
  port?: number;
  maxDriftMs?: number;
  rateLimit?: { ratePerSecond: number; burst: number };
  liveMaxConnections?: number;
  /** The local lake; off unless given (most tests do not need it). Timers off by default: tests flush via POST /v1/admin/flush. */
  lake?: Partial<LakeSettings>;
}

export function tempDir(prefix = 'lakesync-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function tokenFor(sub: string, clientId: string, extra: Record<string, unknown> = {}): Promise<string> {
  return signHs256Token(TEST_SECRET, { sub, clientId, ...extra });
}

/** What POST /v1/admin/flush answers on the local server. */
export interface AdminFlushAnswer {
  readonly flush: { readonly from: string; readonly to: string; readonly deltas: number };
  readonly checkpoint: string | null;
  readonly floor: string;
}

/** POST /v1/admin/flush with an admin token; throws (failing the test) unless it answers 200. */
export async function adminFlush(url: string): Promise<AdminFlushAnswer> {
  const res = await fetch(`${url}/v1/admin/flush`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await tokenFor('admin', 'admin-client', { role: 'admin' })}` },
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`admin flush answered ${res.status}: ${body}`);
  return JSON.parse(body) as AdminFlushAnswer;
}

/** The local server in this process, on a free port, with a fresh data dir. */
export async function startTestServer(setup: ServerSetup = {}): Promise<TestServer> {
  const dataDir = setup.dataDir ?? tempDir();
  const server = await startLocalServer({
    host: '127.0.0.1',
    port: setup.port ?? 0,
    dataDir,
    schema: setup.schema ?? TODO_SCHEMA,
    rules: setup.rules ?? null,
    jwtSecret: TEST_SECRET,
    jwksUrl: null,
    dev: false,
    maxDriftMs: setup.maxDriftMs ?? 60_000,
    synchronous: 'normal',
    rateLimit: setup.rateLimit ?? null,
    ...(setup.liveMaxConnections !== undefined ? { liveMaxConnections: setup.liveMaxConnections } : {}),
    lake:
      setup.lake === undefined
        ? null
        : {
            flushIntervalMs: 0,
            checkpointEvery: 1,
            retainDeltas: 0,
            maintenanceIntervalMs: 0,
            snapshotRetentionMs: 7 * 86_400_000,
            ...setup.lake,
          },
  });
  return { url: server.url, dataDir, token: tokenFor, liveConnections: () => server.liveConnections(), close: () => server.close() };
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
    s.on('error', reject);
  });
}

export interface ChildServer {
  readonly url: string;
  readonly process: ChildProcess;
  /** SIGKILL: no shutdown hooks run. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** The real `npm start` entry point as a child process, for kill -9 tests. */
export async function startChildServer(
  setup: ServerSetup & { dataDir: string; port: number; dev?: boolean; env?: Record<string, string> },
): Promise<ChildServer> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...setup.env, LAKESYNC_PORT: String(setup.port), LAKESYNC_DATA_DIR: setup.dataDir };
  if (setup.dev === true) {
    // Exactly what `npm start` does on a fresh clone: dev mode, the repo's lakesync.config.json.
    delete env['LAKESYNC_JWT_SECRET'];
    delete env['LAKESYNC_CONFIG'];
  } else {
    const configPath = join(setup.dataDir, 'config.json');
    writeFileSync(configPath, JSON.stringify({ schema: setup.schema ?? TODO_SCHEMA, rules: setup.rules ?? null }));
    Object.assign(env, { LAKESYNC_CONFIG: configPath, LAKESYNC_JWT_SECRET: TEST_SECRET, LAKESYNC_SYNCHRONOUS: 'full' });
  }
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'functions/local/main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = `http://127.0.0.1:${setup.port}`;
  await new Promise<void>((resolveReady, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.includes('lakesync listening')) resolveReady();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url,
    process: child,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
