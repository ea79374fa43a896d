import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Schema, SyncRules } from '../../core/index.ts';

/** The local server's configuration, parsed once from the environment. */
export interface LocalConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly schema: Schema;
  readonly rules: SyncRules | null;
  /** HS256 secret; in dev mode one is generated and kept in dataDir. */
  readonly jwtSecret: string | null;
  readonly jwksUrl: string | null;
  readonly dev: boolean;
  readonly maxDriftMs: number;
  readonly synchronous: 'full' | 'normal';
  /** Requests per second and burst per client; null turns limiting off. */
  readonly rateLimit: { ratePerSecond: number; burst: number } | null;
  /** The local lake (Parquet + Iceberg under dataDir/lake); null when LAKESYNC_LAKE=off. */
  readonly lake: LakeSettings | null;
  /** Open live-updates WebSockets at most (LAKESYNC_LIVE_MAX_CONNECTIONS, default 10,000); 0 turns /v1/live off. */
  readonly liveMaxConnections?: number;
}

export interface LakeSettings {
  /** How often buffered deltas are flushed to the lake. */
  readonly flushIntervalMs: number;
  /** A new checkpoint after this many flushed deltas. */
  readonly checkpointEvery: number;
  /** Deltas the buffer keeps past the newest checkpoint, for clients that were briefly offline. */
  readonly retainDeltas: number;
  /** Compaction, snapshot expiry and orphan removal; 0 turns it off. */
  readonly maintenanceIntervalMs: number;
  readonly snapshotRetentionMs: number;
}

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer`);
  return n;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv, cwd: string): LocalConfig {
  const port = Number(env['LAKESYNC_PORT'] ?? '8787');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`LAKESYNC_PORT: bad port "${env['LAKESYNC_PORT']}"`);
  const configPath = resolve(cwd, env['LAKESYNC_CONFIG'] ?? 'lakesync.config.json');
  let file: { schema?: Schema; rules?: SyncRules | null };
  try {
    file = JSON.parse(readFileSync(configPath, 'utf8')) as typeof file;
  } catch (err) {
    throw new ConfigError(`cannot read ${configPath}: ${(err as Error).message}`);
  }
  if (file.schema === undefined) throw new ConfigError(`${configPath} has no "schema"`);
  const jwtSecret = env['LAKESYNC_JWT_SECRET'] ?? null;
  const jwksUrl = env['LAKESYNC_JWKS_URL'] ?? null;
  const host = env['LAKESYNC_HOST'] ?? '127.0.0.1';
  const dev = env['LAKESYNC_DEV'] !== undefined ? env['LAKESYNC_DEV'] === '1' : jwtSecret === null && jwksUrl === null;
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost';
  if (dev && !loopback && env['LAKESYNC_DEV'] !== '1') {
    // Dev mode mints tokens for anyone who asks: never expose it by accident.
    throw new ConfigError(`refusing dev mode on ${host}: set LAKESYNC_JWT_SECRET or LAKESYNC_JWKS_URL (or LAKESYNC_DEV=1 if you mean it)`);
  }
  if (!dev && jwtSecret === null && jwksUrl === null) throw new ConfigError('dev mode is off: set LAKESYNC_JWT_SECRET or LAKESYNC_JWKS_URL');
  const sync = env['LAKESYNC_SYNCHRONOUS'] ?? 'full';
  if (sync !== 'full' && sync !== 'normal') throw new ConfigError('LAKESYNC_SYNCHRONOUS must be "full" or "normal"');
  const rate = env['LAKESYNC_RATE_LIMIT'];
  let rateLimit: LocalConfig['rateLimit'] = null;
  if (rate !== undefined && rate !== '' && rate !== 'off') {
    const m = /^(\d+(?:\.\d+)?)\/s(?:,burst=(\d+))?$/.exec(rate);
    if (m === null) throw new ConfigError('LAKESYNC_RATE_LIMIT must look like "50/s" or "50/s,burst=100"');
    const ratePerSecond = Number(m[1]);
    rateLimit = { ratePerSecond, burst: m[2] !== undefined ? Number(m[2]) : Math.ceil(ratePerSecond * 2) };
  }
  const lakeOff = (env['LAKESYNC_LAKE'] ?? 'on') === 'off';
  const lake: LakeSettings | null = lakeOff
    ? null
    : {
        flushIntervalMs: intEnv(env, 'LAKESYNC_FLUSH_INTERVAL_MS', 5000),
        checkpointEvery: intEnv(env, 'LAKESYNC_CHECKPOINT_EVERY', 10_000),
        retainDeltas: intEnv(env, 'LAKESYNC_RETAIN_DELTAS', 100_000),
        maintenanceIntervalMs: intEnv(env, 'LAKESYNC_MAINTENANCE_INTERVAL_MS', 3_600_000),
        snapshotRetentionMs: intEnv(env, 'LAKESYNC_SNAPSHOT_RETENTION_MS', 7 * 86_400_000),
      };
  return {
    lake,
    rateLimit,
    liveMaxConnections: intEnv(env, 'LAKESYNC_LIVE_MAX_CONNECTIONS', 10_000),
    host,
    port,
    dataDir: resolve(cwd, env['LAKESYNC_DATA_DIR'] ?? '.lakesync'),
    schema: file.schema,
    rules: file.rules ?? null,
    jwtSecret,
    jwksUrl,
    dev,
    maxDriftMs: Number(env['LAKESYNC_MAX_DRIFT_MS'] ?? '60000'),
    synchronous: sync,
  };
}
