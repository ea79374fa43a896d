import { describe, expect, it } from 'vitest';
import { AwsConfigError, settingsFromEnv } from './env.ts';

describe('settingsFromEnv', () => {
  it('takes the defaults when a number is unset or empty, and the value when it is digits', () => {
    expect(settingsFromEnv({}).flushMaxDeltas).toBe(10_000);
    expect(settingsFromEnv({ LAKESYNC_FLUSH_MAX_DELTAS: '' }).flushMaxDeltas).toBe(10_000);
    expect(settingsFromEnv({ LAKESYNC_FLUSH_MAX_DELTAS: '250' }).flushMaxDeltas).toBe(250);
    expect(settingsFromEnv({ LAKESYNC_ORPHAN_AGE_MS: '0' }).orphanAgeMs).toBe(0);
  });

  it('refuses a number that is not plain digits instead of reading it as something else', () => {
    // Number(' ') is 0, Number('0x10') is 16, Number('1e3') is 1000: none of them is what was meant.
    for (const raw of [' ', '\t', '-5', '1.5', 'NaN', 'Infinity', '0x10', '1e3', '12abc', '9007199254740993']) {
      expect(() => settingsFromEnv({ LAKESYNC_ORPHAN_AGE_MS: raw }), JSON.stringify(raw)).toThrow(AwsConfigError);
    }
  });

  it('reads the token checks: issuer, audience, client id claim (unset or empty: not checked / the default)', () => {
    const base = { LAKESYNC_JWKS_URL: 'https://idp.example.com/jwks.json' };
    expect(settingsFromEnv(base).auth).toEqual({ jwksUrl: base.LAKESYNC_JWKS_URL });
    expect(
      settingsFromEnv({ ...base, LAKESYNC_JWT_ISSUER: 'https://idp.example.com', LAKESYNC_JWT_AUDIENCE: 'todo-app', LAKESYNC_JWT_CLIENT_ID_CLAIM: '' }).auth,
    ).toEqual({ jwksUrl: base.LAKESYNC_JWKS_URL, issuer: 'https://idp.example.com', audience: 'todo-app' });
  });

  it('refuses a shard count outside 1 to 64', () => {
    for (const raw of ['0', '65', ' ']) expect(() => settingsFromEnv({ LAKESYNC_SHARDS: raw }), raw).toThrow(/LAKESYNC_SHARDS/);
  });
});
