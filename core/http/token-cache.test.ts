import { describe, expect, it } from 'vitest';
import type { Authenticator, Principal } from '../auth/principal.ts';
import { LakeSyncError } from '../errors.ts';
import { CachingAuthenticator } from './token-cache.ts';

/** Tokens are "<sub>:<exp seconds>"; "bad" fails. Counts its calls. */
class FakeAuth implements Authenticator {
  calls = 0;
  authenticate(authorization: string | null): Promise<Principal> {
    this.calls++;
    if (authorization === null || authorization.startsWith('bad')) return Promise.reject(new LakeSyncError('TOKEN_INVALID', 'bad'));
    const [sub, exp] = authorization.split(':');
    const claims: Record<string, unknown> = { sub };
    if (exp !== undefined) claims['exp'] = Number(exp);
    return Promise.resolve({ clientId: `c-${sub}`, userId: sub ?? '', claims, admin: false });
  }
}

describe('CachingAuthenticator', () => {
  it('verifies a token once, until its exp or the max age, whichever is first', async () => {
    let now = 1_000_000;
    const inner = new FakeAuth();
    const auth = new CachingAuthenticator(inner, { now: () => now, maxAgeMs: 60_000 });
    const a = await auth.authenticate('a:1030'); // exp 30 s ahead
    expect(await auth.authenticate('a:1030')).toBe(a);
    expect(inner.calls).toBe(1);
    now += 29_999;
    await auth.authenticate('a:1030');
    expect(inner.calls).toBe(1);
    now += 1; // at exp: verified again (and the real authenticator would refuse it)
    await auth.authenticate('a:1030');
    expect(inner.calls).toBe(2);

    await auth.authenticate('b:999999'); // long-lived: capped at max age
    now += 59_999;
    await auth.authenticate('b:999999');
    expect(inner.calls).toBe(3);
    now += 1;
    await auth.authenticate('b:999999');
    expect(inner.calls).toBe(4);
  });

  it('never caches failures, tokens without exp, or a missing header', async () => {
    const inner = new FakeAuth();
    const auth = new CachingAuthenticator(inner, { now: () => 0 });
    for (let i = 0; i < 2; i++) {
      await expect(auth.authenticate('bad:99')).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
      await expect(auth.authenticate(null)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
      await auth.authenticate('noexp');
    }
    expect(inner.calls).toBe(6);
  });

  it('forgets the oldest token beyond maxEntries', async () => {
    const inner = new FakeAuth();
    const auth = new CachingAuthenticator(inner, { now: () => 0, maxEntries: 2 });
    await auth.authenticate('a:99');
    await auth.authenticate('b:99');
    await auth.authenticate('c:99'); // evicts a
    await auth.authenticate('b:99');
    await auth.authenticate('c:99');
    expect(inner.calls).toBe(3);
    await auth.authenticate('a:99');
    expect(inner.calls).toBe(4);
  });
});
