import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const SCHEMA = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] };

/** loadConfig on a config file with this content, in dev mode unless env says otherwise. */
function load(file: unknown, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'lakesync-config-'));
  writeFileSync(join(dir, 'lakesync.config.json'), typeof file === 'string' ? file : JSON.stringify(file));
  return loadConfig(env, dir);
}

describe('loadConfig', () => {
  it('reads the defaults', () => {
    const c = load({ schema: SCHEMA });
    expect(c.port).toBe(8787);
    expect(c.maxDriftMs).toBe(60_000);
    expect(c.dev).toBe(true);
    expect(c.lake?.flushIntervalMs).toBe(5000);
  });

  it.each([
    ['not JSON', '{bad', /cannot read .*lakesync\.config\.json/],
    ['null', 'null', /lakesync\.config\.json must hold an object/],
    ['an array', '[]', /lakesync\.config\.json must hold an object/],
    ['no schema', {}, /has no "schema"/],
    ['a schema without tables', { schema: { version: 1 } }, /"schema".*"tables"/],
    ['a schema without a version', { schema: { tables: [] } }, /"schema".*"version"/],
    ['a table without columns', { schema: { version: 1, tables: [{ name: 't' }] } }, /table "t".*"columns"/],
    ['an unknown column type', { schema: { version: 1, tables: [{ name: 't', columns: [{ name: 'a', type: 'wat' }] }] } }, /invalid type "wat" for t\.a/],
    ['rules without buckets', { schema: SCHEMA, rules: { buckets: 'x' } }, /"rules".*"buckets"/],
    ['a bucket without tables', { schema: SCHEMA, rules: { buckets: [{ name: 'b' }] } }, /bucket "b".*"tables"/],
    ['filters that are not a list', { schema: SCHEMA, rules: { buckets: [{ name: 'b', tables: { todos: {} } }] } }, /bucket "b".*todos.*list of filters/],
    ['an unknown filter op', { schema: SCHEMA, rules: { buckets: [{ name: 'b', tables: { todos: [{ column: 'title', op: 'like', value: 'x' }] } }] } }, /unknown filter op "like"/],
    ['a filter on a column the table lacks', { schema: SCHEMA, rules: { buckets: [{ name: 'b', tables: { todos: [{ column: 'Title', op: 'neq', value: 'x' }] } }] } }, /table "todos" has no column "Title"/],
  ])('refuses a config file with %s, naming the problem', (_what, file, message) => {
    expect(() => load(file)).toThrow(ConfigError);
    expect(() => load(file)).toThrow(message);
  });

  it.each([
    ['LAKESYNC_MAX_DRIFT_MS', 'abc', /LAKESYNC_MAX_DRIFT_MS must be a non-negative integer/],
    ['LAKESYNC_MAX_DRIFT_MS', '-5', /LAKESYNC_MAX_DRIFT_MS must be a non-negative integer/],
    ['LAKESYNC_PORT', 'http', /LAKESYNC_PORT: bad port "http"/],
    ['LAKESYNC_PORT', '1e3', /LAKESYNC_PORT: bad port "1e3"/],
    ['LAKESYNC_LAKE', 'no', /LAKESYNC_LAKE must be "on" or "off"/],
    ['LAKESYNC_DEV', 'yes', /LAKESYNC_DEV must be "1" or "0"/],
    ['LAKESYNC_JWT_SECRET', 'short', /LAKESYNC_JWT_SECRET must be at least 32 bytes/],
    ['LAKESYNC_RATE_LIMIT', '0/s', /LAKESYNC_RATE_LIMIT/],
    ['LAKESYNC_RATE_LIMIT', '5/s,burst=00', /LAKESYNC_RATE_LIMIT/],
    ['LAKESYNC_FLUSH_INTERVAL_MS', '1.5', /LAKESYNC_FLUSH_INTERVAL_MS must be a non-negative integer/],
    // 0 would rebuild a full checkpoint every flush interval, even with nothing new.
    ['LAKESYNC_CHECKPOINT_EVERY', '0', /LAKESYNC_CHECKPOINT_EVERY must be at least 1/],
    ['LAKESYNC_JWKS_URL', 'idp.example.com/jwks', /LAKESYNC_JWKS_URL must be an http\(s\) URL/],
    ['LAKESYNC_JWKS_URL', 'file:///etc/jwks.json', /LAKESYNC_JWKS_URL must be an http\(s\) URL/],
  ])('refuses %s=%s with a clear error', (name, value, message) => {
    expect(() => load({ schema: SCHEMA }, { [name]: value })).toThrow(ConfigError);
    expect(() => load({ schema: SCHEMA }, { [name]: value })).toThrow(message);
  });

  it.each(['LAKESYNC_FLUSH_INTERVAL_MS', 'LAKESYNC_MAINTENANCE_INTERVAL_MS'])(
    'refuses a %s that a timer cannot hold (Node would fire it every millisecond)',
    (name) => {
      expect(() => load({ schema: SCHEMA }, { [name]: '3000000000' })).toThrow(new RegExp(`${name} must be at most 2147483647`));
      expect(load({ schema: SCHEMA }, { [name]: '2147483647' }).lake).not.toBeNull();
    },
  );

  it('refuses LAKESYNC_DEV=1 with a real JWT secret or JWKS URL (dev tokens would be signed with the real secret, or accepted beside real ones)', () => {
    const secret = 'x'.repeat(32);
    expect(() => load({ schema: SCHEMA }, { LAKESYNC_DEV: '1', LAKESYNC_JWT_SECRET: secret })).toThrow(/LAKESYNC_DEV=1 cannot be combined/);
    expect(() => load({ schema: SCHEMA }, { LAKESYNC_DEV: '1', LAKESYNC_JWKS_URL: 'https://idp.example.com/jwks' })).toThrow(/LAKESYNC_DEV=1 cannot be combined/);
    expect(load({ schema: SCHEMA }, { LAKESYNC_DEV: '0', LAKESYNC_JWT_SECRET: secret }).dev).toBe(false);
    expect(load({ schema: SCHEMA }, { LAKESYNC_DEV: '1' }).dev).toBe(true);
  });

  it('takes an empty LAKESYNC_PORT as unset, like the other variables', () => {
    expect(load({ schema: SCHEMA }, { LAKESYNC_PORT: '' }).port).toBe(8787);
  });
});
