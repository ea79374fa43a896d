import { describe, expect, it } from 'vitest';
import { LakeSyncError } from '../errors.ts';
import { DeferredAuthenticator } from './deferred.ts';
import type { Authenticator, Principal } from './principal.ts';

const principal: Principal = { clientId: 'c', userId: 'u', claims: { sub: 'u' }, admin: false };
const accepting: Authenticator = { authenticate: (h) => (h === 'Bearer ok' ? Promise.resolve(principal) : Promise.reject(new LakeSyncError('TOKEN_INVALID', 'no'))) };

describe('DeferredAuthenticator', () => {
  it('answers AUTH_UNAVAILABLE while its keys cannot be loaded, loads again at the next request, then keeps them', async () => {
    let loads = 0;
    let fail = true;
    const auth = new DeferredAuthenticator(() => {
      loads++;
      return fail ? Promise.reject(new Error('secret store down')) : Promise.resolve(accepting);
    });
    await expect(auth.authenticate('Bearer ok')).rejects.toMatchObject({ code: 'AUTH_UNAVAILABLE' });
    await expect(auth.authenticate('Bearer ok')).rejects.toMatchObject({ code: 'AUTH_UNAVAILABLE' });
    expect(loads).toBe(2);
    fail = false;
    await expect(auth.authenticate('Bearer ok')).resolves.toEqual(principal);
    await expect(auth.authenticate('Bearer bad')).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await auth.authenticate('Bearer ok');
    expect(loads).toBe(3);
  });

  it('loads once for concurrent first requests', async () => {
    let loads = 0;
    const auth = new DeferredAuthenticator(async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return accepting;
    });
    await Promise.all([auth.authenticate('Bearer ok'), auth.authenticate('Bearer ok'), auth.authenticate('Bearer ok')]);
    expect(loads).toBe(1);
  });
});
