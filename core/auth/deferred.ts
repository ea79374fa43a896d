import { LakeSyncError } from '../errors.ts';
import type { Authenticator, Principal } from './principal.ts';

/**
 * An authenticator whose keys are fetched at first use (an HS256 secret in a
 * secret store): a request is never refused for a key that could not be
 * fetched, it gets AUTH_UNAVAILABLE (503, retry later), and the next request
 * fetches again. Once fetched, the authenticator is kept for the container's
 * life.
 */
export class DeferredAuthenticator implements Authenticator {
  private loaded: Promise<Authenticator> | null = null;

  constructor(private readonly load: () => Promise<Authenticator>) {}

  async authenticate(authorization: string | null): Promise<Principal> {
    const pending = (this.loaded ??= this.load());
    let auth: Authenticator;
    try {
      auth = await pending;
    } catch (err) {
      if (this.loaded === pending) this.loaded = null;
      throw new LakeSyncError('AUTH_UNAVAILABLE', 'token keys are unavailable; retry later', { cause: err });
    }
    return auth.authenticate(authorization);
  }
}
