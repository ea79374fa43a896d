import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RuleSet, SchemaRegistry, type Schema, type SyncRules } from '../../core/index.ts';
import { jwtChecksFromEnv } from '../../core/auth/jwt.ts';

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
  /**
   * What a token must say besides its signature: `iss`, `aud` (checked only
   * when set), and the claim naming the client id (default `client_id`).
   * Set issuer and audience whenever the identity provider serves other apps too.
   */
  readonly jwtChecks?: { readonly issuer?: string; readonly audience?: string; readonly clientIdClaim?: string };
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

/** The longest delay setInterval takes; Node runs a longer one every millisecond. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer`);
  if (n > max) throw new ConfigError(`${name} must be at most ${max}`);
  if (n < min) throw new ConfigError(`${name} must be at least ${min}`);
  return n;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The schema and rules of the config file, checked here so a mistake is
 * reported with the file's name instead of as a TypeError deep inside the
 * engine. The engine's own checks (names, types, filter ops) run too.
 */
function checkFile(path: string, file: unknown): { schema: Schema; rules: SyncRules | null } {
  const bad = (what: string): ConfigError => new ConfigError(`${path}: ${what}`);
  if (!isObject(file)) throw new ConfigError(`${path} must hold an object with "schema" (and optionally "rules")`);
  const { schema, rules } = file;
  if (schema === undefined) throw new ConfigError(`${path} has no "schema"`);
  if (!isObject(schema)) throw bad('"schema" must be an object with "version" and "tables"');
  if (!Number.isInteger(schema['version'])) throw bad('"schema" needs an integer "version"');
  if (!Array.isArray(schema['tables'])) throw bad('"schema" needs "tables", a list');
  for (const t of schema['tables'] as unknown[]) {
    if (!isObject(t) || typeof t['name'] !== 'string') throw bad('every table needs a "name"');
    const columns = t['columns'];
    if (!Array.isArray(columns)) throw bad(`table "${t['name']}" needs "columns", a list`);
    for (const c of columns as unknown[]) {
      if (!isObject(c) || typeof c['name'] !== 'string') throw bad(`every column of table "${t['name']}" needs a "name"`);
    }
  }
  if (rules !== undefined && rules !== null) {
    if (!isObject(rules) || !Array.isArray(rules['buckets'])) throw bad('"rules" needs "buckets", a list');
    for (const b of rules['buckets'] as unknown[]) {
      if (!isObject(b) || typeof b['name'] !== 'string') throw bad('every bucket needs a "name"');
      if (!isObject(b['tables'])) throw bad(`bucket "${b['name']}" needs "tables", an object of table name to filters`);
      for (const [table, filters] of Object.entries(b['tables'])) {
        if (!Array.isArray(filters) || !filters.every(isObject)) throw bad(`bucket "${b['name']}", table ${table}: needs a list of filters`);
      }
    }
  }
  try {
    const registry = new SchemaRegistry(schema as unknown as Schema);
    new RuleSet((rules ?? null) as SyncRules | null).checkColumns((table) => registry.table(table));
  } catch (err) {
    throw bad((err as Error).message);
  }
  return { schema: schema as unknown as Schema, rules: (rules ?? null) as SyncRules | null };
}

export function loadConfig(env: NodeJS.ProcessEnv, cwd: string): LocalConfig {
  const rawPort = env['LAKESYNC_PORT'] ?? '';
  const port = rawPort === '' ? 8787 : /^\d+$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`LAKESYNC_PORT: bad port "${rawPort}"`);
  const configPath = resolve(cwd, env['LAKESYNC_CONFIG'] ?? 'lakesync.config.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read ${configPath}: ${(err as Error).message}`);
  }
  const file = checkFile(configPath, parsed);
  const jwtSecret = env['LAKESYNC_JWT_SECRET'] ?? null;
  // The authenticator refuses shorter HS256 secrets too, but only after the server has opened its files.
  if (jwtSecret !== null && new TextEncoder().encode(jwtSecret).length < 32) throw new ConfigError('LAKESYNC_JWT_SECRET must be at least 32 bytes');
  const jwksUrl = env['LAKESYNC_JWKS_URL'] ?? null;
  if (jwksUrl !== null && !/^https?:\/\/[^/]/.test(jwksUrl)) throw new ConfigError(`LAKESYNC_JWKS_URL must be an http(s) URL, not "${jwksUrl}"`);
  const host = env['LAKESYNC_HOST'] ?? '127.0.0.1';
  const devFlag = env['LAKESYNC_DEV'];
  if (devFlag !== undefined && devFlag !== '1' && devFlag !== '0') throw new ConfigError('LAKESYNC_DEV must be "1" or "0"');
  // Dev mode hands out tokens to anyone who asks, signed with its secret: never with a real one.
  if (devFlag === '1' && (jwtSecret !== null || jwksUrl !== null)) {
    throw new ConfigError('LAKESYNC_DEV=1 cannot be combined with LAKESYNC_JWT_SECRET or LAKESYNC_JWKS_URL: dev mode would mint tokens that pass as real ones');
  }
  const dev = devFlag !== undefined ? devFlag === '1' : jwtSecret === null && jwksUrl === null;
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
    if (ratePerSecond <= 0 || (m[2] !== undefined && Number(m[2]) === 0)) throw new ConfigError('LAKESYNC_RATE_LIMIT: the rate and burst must be above 0 (use "off" to turn limiting off)');
    rateLimit = { ratePerSecond, burst: m[2] !== undefined ? Number(m[2]) : Math.ceil(ratePerSecond * 2) };
  }
  const lakeFlag = env['LAKESYNC_LAKE'] ?? 'on';
  if (lakeFlag !== 'on' && lakeFlag !== 'off') throw new ConfigError('LAKESYNC_LAKE must be "on" or "off"');
  const lakeOff = lakeFlag === 'off';
  const lake: LakeSettings | null = lakeOff
    ? null
    : {
        flushIntervalMs: intEnv(env, 'LAKESYNC_FLUSH_INTERVAL_MS', 5000, MAX_TIMER_MS),
        checkpointEvery: intEnv(env, 'LAKESYNC_CHECKPOINT_EVERY', 10_000, Number.MAX_SAFE_INTEGER, 1),
        retainDeltas: intEnv(env, 'LAKESYNC_RETAIN_DELTAS', 100_000),
        maintenanceIntervalMs: intEnv(env, 'LAKESYNC_MAINTENANCE_INTERVAL_MS', 3_600_000, MAX_TIMER_MS),
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
    jwtChecks: jwtChecksFromEnv(env),
    dev,
    // NaN here would silently turn the clock drift check off.
    maxDriftMs: intEnv(env, 'LAKESYNC_MAX_DRIFT_MS', 60_000),
    synchronous: sync,
  };
}

