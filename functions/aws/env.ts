import { AwsFetch, awsFetchOptionsFromEnv } from '../../core/adapters/aws-fetch.ts';
import { jwtChecksFromEnv, type JwtAuthOptions } from '../../core/auth/jwt.ts';
import type { Schema } from '../../core/schema.ts';
import type { SyncRules } from '../../core/rules.ts';

/**
 * The functions' settings, read once per container from the environment
 * (names in docs/aws.md). Every function reads the same variables; each
 * uses what it needs, and a missing one fails at the first invocation
 * with the variable's name.
 */
export interface AwsSettings {
  /** The DynamoDB buffer table. */
  readonly table: string;
  readonly bucket: string;
  /** Table roots live under `<warehouse>/<namespace>/<table>`. */
  readonly warehouse: string;
  /** The Glue database = the Iceberg namespace. */
  readonly namespace: string;
  readonly flushQueueUrl: string;
  readonly jobsQueueUrl: string;
  readonly schema: Schema;
  readonly rules: SyncRules | null;
  /** Token verification; without the HS256 secret when it is read from Secrets Manager (jwtSecretArn). */
  readonly auth: JwtAuthOptions;
  /** The Secrets Manager secret (ARN or name) holding the HS256 secret, read at the first request (LAKESYNC_JWT_SECRET_ARN). */
  readonly jwtSecretArn?: string | undefined;
  readonly maxDriftMs: number;
  /** The stream consumer asks for a flush once this many deltas arrived... */
  readonly flushMaxDeltas: number;
  /** ...or once the oldest unflushed one it saw is this old. */
  readonly flushMaxAgeMs: number;
  readonly checkpointEvery: number;
  readonly retainDeltas: number;
  readonly snapshotRetentionMs: number;
  readonly orphanAgeMs: number;
  /**
   * Log items expire (DynamoDB TTL on `ttl`) this many days after their
   * append, so trimming flushed items costs no write units; 0 turns TTL off
   * (trim then rewrites each item as a stub). Far above any flush delay.
   */
  readonly logTtlDays?: number;
  /**
   * Buffer shards (LAKESYNC_SHARDS, default 1): tables are spread over this
   * many logs, each its own serialization point. Fixed for the life of a
   * deployment (see docs/dynamodb.md#sharding).
   */
  readonly shards?: number;
}

export class AwsConfigError extends Error {
  override name = 'AwsConfigError';
}

/** At most 64 shards: a pull reads every shard, so more only adds read cost. */
function shardCount(n: number): number {
  if (n < 1 || n > 64) throw new AwsConfigError('LAKESYNC_SHARDS must be 1 to 64');
  return n;
}

type Env = Readonly<Record<string, string | undefined>>;

function required(env: Env, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new AwsConfigError(`${name} is not set`);
  return v;
}

function int(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Digits only: Number() reads ' ' as 0 (an orphan age of 0 deletes a flush's files in flight), '0x10' as 16.
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new AwsConfigError(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
  return n;
}

/** Settings from the environment; a variable is only required once a function reads it. */
export function settingsFromEnv(env: Env): AwsSettings {
  const once = <T>(read: () => T): { get(): T } => {
    let v: { value: T } | null = null;
    return { get: () => (v ??= { value: read() }).value };
  };
  const config = once(() => {
    let file: { schema?: Schema; rules?: SyncRules | null };
    try {
      file = JSON.parse(required(env, 'LAKESYNC_CONFIG_JSON')) as typeof file;
    } catch (e) {
      if (e instanceof AwsConfigError) throw e;
      throw new AwsConfigError(`LAKESYNC_CONFIG_JSON is not JSON: ${(e as Error).message}`);
    }
    if (file.schema === undefined) throw new AwsConfigError('LAKESYNC_CONFIG_JSON has no "schema"');
    return { schema: file.schema, rules: file.rules ?? null };
  });
  const bucket = (): string => required(env, 'LAKESYNC_BUCKET');
  return {
    get table() {
      return required(env, 'LAKESYNC_DDB_TABLE');
    },
    get bucket() {
      return bucket();
    },
    get warehouse() {
      return env['LAKESYNC_WAREHOUSE'] || `s3://${bucket()}/warehouse`;
    },
    get namespace() {
      return required(env, 'LAKESYNC_GLUE_DATABASE');
    },
    get flushQueueUrl() {
      return required(env, 'LAKESYNC_FLUSH_QUEUE_URL');
    },
    get jobsQueueUrl() {
      return required(env, 'LAKESYNC_JOBS_QUEUE_URL');
    },
    get schema() {
      return config.get().schema;
    },
    get rules() {
      return config.get().rules;
    },
    get auth(): JwtAuthOptions {
      const secret = env['LAKESYNC_JWT_SECRET'];
      const jwksUrl = env['LAKESYNC_JWKS_URL'];
      if (!secret && !jwksUrl && !env['LAKESYNC_JWT_SECRET_ARN']) {
        throw new AwsConfigError('set LAKESYNC_JWT_SECRET_ARN, LAKESYNC_JWT_SECRET or LAKESYNC_JWKS_URL');
      }
      return { ...(secret ? { hs256Secret: secret } : {}), ...(jwksUrl ? { jwksUrl } : {}), ...jwtChecksFromEnv(env) };
    },
    get jwtSecretArn() {
      return env['LAKESYNC_JWT_SECRET_ARN'] || undefined;
    },
    maxDriftMs: int(env, 'LAKESYNC_MAX_DRIFT_MS', 60_000),
    flushMaxDeltas: int(env, 'LAKESYNC_FLUSH_MAX_DELTAS', 10_000),
    flushMaxAgeMs: int(env, 'LAKESYNC_FLUSH_MAX_AGE_MS', 60_000),
    checkpointEvery: int(env, 'LAKESYNC_CHECKPOINT_EVERY', 100_000),
    retainDeltas: int(env, 'LAKESYNC_RETAIN_DELTAS', 100_000),
    snapshotRetentionMs: int(env, 'LAKESYNC_SNAPSHOT_RETENTION_MS', 7 * 86_400_000),
    orphanAgeMs: int(env, 'LAKESYNC_ORPHAN_AGE_MS', 3_600_000),
    logTtlDays: int(env, 'LAKESYNC_LOG_TTL_DAYS', 30),
    shards: shardCount(int(env, 'LAKESYNC_SHARDS', 1)),
  };
}

/**
 * A fetch client of one AWS service (core/adapters/aws-fetch.ts), set up
 * from the Lambda environment as the SDK would be: AWS_REGION, the
 * execution role's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, AWS_ENDPOINT_URL(_<SERVICE>) and AWS_MAX_ATTEMPTS.
 * Read at the first request, so a missing variable fails that request.
 */
export function awsFetchFromEnv(env: Env, service: string): AwsFetch {
  return new AwsFetch(Promise.resolve().then(() => awsFetchOptionsFromEnv(env, service)));
}
