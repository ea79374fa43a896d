import type { Authenticator, Principal } from '../auth/principal.ts';

export interface TokenCacheOptions {
  /** Most tokens remembered; the oldest goes first. */
  readonly maxEntries?: number;
  /** Longest a verification is reused, even if the token lives longer (bounds how long a rotated-out key keeps working). */
  readonly maxAgeMs?: number;
  /** Injected so tests control time. */
  readonly now?: () => number;
}

/**
 * Remembers verified tokens, so a client sending the same token on every
 * request pays the signature check (an async WebCrypto call, about a
 * millisecond) once per minute instead of per request. Only successes are
 * kept, each until the token's own `exp` or `maxAgeMs`, whichever is first;
 * verification is deterministic otherwise, so the answer is the same.
 */
export class CachingAuthenticator implements Authenticator {
  private readonly cache = new Map<string, { principal: Principal; until: number }>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    private readonly inner: Authenticator,
    options: TokenCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  async authenticate(authorization: string | null): Promise<Principal> {
    if (authorization === null) return this.inner.authenticate(authorization);
    const now = this.now();
    const hit = this.cache.get(authorization);
    if (hit !== undefined) {
      if (now < hit.until) return hit.principal;
      this.cache.delete(authorization);
    }
    const principal = await this.inner.authenticate(authorization);
    const exp = principal.claims['exp'];
    // Without a numeric exp there is no safe bound: do not remember the token.
    if (typeof exp === 'number' && Number.isFinite(exp)) {
      const until = Math.min(exp * 1000, now + this.maxAgeMs);
      if (until > now) {
        if (this.cache.size >= this.maxEntries) {
          const oldest = this.cache.keys().next();
          if (oldest.done !== true) this.cache.delete(oldest.value);
        }
        this.cache.set(authorization, { principal, until });
      }
    }
    return principal;
  }
}
