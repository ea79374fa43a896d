import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import {
  Gateway,
  HybridLogicalClock,
  JwtAuthenticator,
  LiveHub,
  createHttpApp,
  signHs256Token,
  type JwtAuthOptions,
} from '../../core/index.ts';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import { CheckpointService } from '../../core/engine/checkpoints.ts';
import type { LocalConfig } from './config.ts';
import { openLocalLake } from './lake.ts';
import { LakeRunner } from './lake-runner.ts';
import { attachLive } from './live.ts';

export interface RunningServer {
  readonly url: string;
  readonly devSecret: string | null;
  /** A dev-mode token (12 h) that passes this server's token checks; null when not in dev mode. */
  devToken(sub: string, clientId: string, admin?: boolean): Promise<string> | null;
  /** Open live-updates connections. */
  liveConnections(): number;
  close(): Promise<void>;
}

function devSecret(dataDir: string): string {
  const path = join(dataDir, 'dev-secret');
  if (existsSync(path)) {
    const kept = readFileSync(path, 'utf8').trim();
    if (kept.length >= 32) return kept;
    // Empty or cut short (a crash while it was written): dev tokens are cheap, make a new one.
  }
  const secret = randomBytes(32).toString('hex');
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, secret, { mode: 0o600 });
  renameSync(tmp, path);
  return secret;
}

/** The embedded default: the engine on a SQLite buffer behind a Node HTTP server. */
export async function startLocalServer(config: LocalConfig, log: (e: object) => void = () => {}): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true });
  const secret = config.jwtSecret ?? (config.dev ? devSecret(config.dataDir) : null);
  const authOptions: JwtAuthOptions = {
    ...(secret !== null ? { hs256Secret: secret } : {}),
    ...(config.jwksUrl !== null ? { jwksUrl: config.jwksUrl } : {}),
    ...config.jwtChecks,
  };
  // Before anything is opened: a bad key fails here without leaving the buffer or the lake worker behind.
  const auth = new JwtAuthenticator(authOptions);
  const buffer = new SqliteBuffer({ path: join(config.dataDir, 'buffer.sqlite'), synchronous: config.synchronous, checkpoint: 'background' });
  // Connected clients are poked after every append that concerns them (docs/protocol.md, "Live updates").
  const gateway = new Gateway({
    onAppend: (appended) => hub.poke(appended),
    buffer,
    schema: config.schema,
    rules: config.rules,
    clock: new HybridLogicalClock({ maxDriftMs: config.maxDriftMs }),
  });
  const hub = new LiveHub({ rules: gateway.rules });
  // The lake's jobs run on a worker thread (lake-runner.ts); this thread only reads checkpoints for clients.
  const local = config.lake === null ? null : openLocalLake(config.dataDir, config.schema);
  const jobs =
    config.lake === null
      ? null
      : new LakeRunner({
          dataDir: config.dataDir,
          schema: config.schema,
          synchronous: config.synchronous,
          checkpointEvery: config.lake.checkpointEvery,
          retainDeltas: config.lake.retainDeltas,
        });
  const timers: NodeJS.Timeout[] = [];
  if (jobs !== null && config.lake !== null) {
    const settings = config.lake;
    const runCycle = async (): Promise<unknown> => {
      const r = await jobs.cycle();
      if (r.flush.deltas > 0 || r.checkpoint !== null) {
        log({ level: 'info', msg: 'lake flush', deltas: r.flush.deltas, to: r.flush.to.toString(), snapshots: r.flush.snapshots, checkpoint: r.checkpoint, floor: r.floor.toString() });
      }
      return r;
    };
    // A tick while the last one's job still runs is skipped: joining it logged its report once per
    // tick, and maintenance requests queued in the worker without end when a run outlasted the interval.
    let cycling = false;
    let maintaining = false;
    // Errors are logged and the next tick retries: flush is exactly-once from any point.
    const tick = (): void => {
      if (cycling) return;
      cycling = true;
      runCycle()
        .catch((err: unknown) => log({ level: 'error', msg: 'lake flush failed', error: String(err) }))
        .finally(() => (cycling = false));
    };
    if (settings.flushIntervalMs > 0) timers.push(setInterval(tick, settings.flushIntervalMs));
    if (settings.maintenanceIntervalMs > 0) {
      timers.push(
        setInterval(() => {
          if (maintaining) return;
          maintaining = true;
          jobs
            .maintain({ snapshotRetentionMs: settings.snapshotRetentionMs, orphanAgeMs: 3_600_000 })
            .then((lines) => log({ level: 'info', msg: 'lake maintenance', tables: lines }))
            .catch((err: unknown) => log({ level: 'error', msg: 'lake maintenance failed', error: String(err) }))
            .finally(() => (maintaining = false));
        }, settings.maintenanceIntervalMs),
      );
    }
    for (const t of timers) t.unref();
  }
  // Dev tokens say what the checks ask for (LAKESYNC_JWT_ISSUER, _AUDIENCE, _CLIENT_ID_CLAIM): each would refuse them.
  const checks = config.jwtChecks ?? {};
  const devToken =
    config.dev && secret !== null
      ? (sub: string, clientId: string, admin = false): Promise<string> =>
          signHs256Token(secret, {
            sub,
            clientId,
            expiresIn: '12h',
            ...(admin ? { role: 'admin' } : {}),
            ...(checks.issuer !== undefined ? { iss: checks.issuer } : {}),
            ...(checks.audience !== undefined ? { aud: checks.audience } : {}),
            ...(checks.clientIdClaim !== undefined ? { [checks.clientIdClaim]: clientId } : {}),
          })
      : null;
  const app = createHttpApp({
    gateway,
    ...(local !== null ? { checkpoints: new CheckpointService(local.checkpoints, gateway.rules) } : {}),
    ...(jobs !== null ? { flushNow: () => jobs.flushNow() } : {}),
    auth,
    log,
    ...(config.rateLimit !== null ? { rateLimit: config.rateLimit } : {}),
    ...(devToken !== null ? { devTokens: ({ sub, clientId, admin }) => devToken(sub, clientId, admin) } : {}),
  });
  const release = async (): Promise<void> => {
    for (const t of timers) clearInterval(t);
    await jobs?.close();
    await buffer.close();
    local?.close();
  };
  let server: ServerType;
  try {
    server = await new Promise<ServerType>((resolveServer, reject) => {
      const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () => {
        s.off('error', reject);
        resolveServer(s);
      });
      s.once('error', reject);
    });
  } catch (err) {
    // Without this, a taken port is an uncaught exception and the lake worker keeps the process alive.
    await release();
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${config.host}:${config.port}`;
    throw new Error(
      code === 'EADDRINUSE'
        ? `${where} is in use: stop the other server or set LAKESYNC_PORT`
        : `cannot listen on ${where}: ${(err as Error).message}`,
    );
  }
  const detachLive = attachLive(server as Server, auth, hub, log, config.liveMaxConnections ?? 10_000);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.host}:${port}`,
    devSecret: config.dev ? secret : null,
    devToken: (sub, clientId, admin) => devToken?.(sub, clientId, admin) ?? null,
    liveConnections: () => hub.size,
    close: () =>
      new Promise<void>((resolveClose, reject) => {
        for (const t of timers) clearInterval(t); // no new flush starts while requests drain
        detachLive();
        server.close((err) => {
          // Let a running flush finish before the buffer and catalog close.
          release().then(() => (err ? reject(err) : resolveClose()), reject);
        });
        // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
        (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      }),
  };
}
