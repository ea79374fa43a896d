import {
  SignJWT,
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { LakeSyncError } from '../errors.ts';
import type { Authenticator, Principal } from './principal.ts';

export interface JwtAuthOptions {
  /** Shared secret for HS256 tokens. */
  readonly hs256Secret?: string;
  /** Public keys for RS256/ES256 tokens, as a JWKS document. */
  readonly jwks?: JSONWebKeySet;
  /** A JWKS URL for RS256/ES256 tokens; keys are refetched when an unknown `kid` appears (rotation). */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Claim holding the client id the token is bound to. */
  readonly clientIdClaim?: string;
  /** A token whose `role` claim (or `roles` array) holds this value may call admin routes. */
  readonly adminRole?: string;
  readonly clockToleranceSeconds?: number;
}

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Fewest ms between two JWKS fetches: after a fetch (jose's cooldown), and after a failed one. */
const JWKS_COOLDOWN_MS = 10_000;

/**
 * fetch for the JWKS that, after a failure (no answer, or not 200), refuses
 * to fetch again for `pauseMs`: jose remembers only successful fetches, so
 * while the endpoint failed every request naming a signing algorithm (anyone
 * can send one) fetched it again. The refusal is a TypeError, which
 * keysUnavailable reports as AUTH_UNAVAILABLE like the failure itself.
 */
function pausingAfterFailure(pauseMs: number): typeof fetch {
  let failedAt = Number.NEGATIVE_INFINITY;
  return async (input, init) => {
    if (Date.now() < failedAt + pauseMs) throw new TypeError('the JWKS fetch failed moments ago; not retried yet');
    try {
      const res = await fetch(input, init);
      failedAt = res.status === 200 ? Number.NEGATIVE_INFINITY : Date.now();
      return res;
    } catch (err) {
      failedAt = Date.now();
      throw err;
    }
  };
}
const ASYMMETRIC = ['RS256', 'ES256'] as const;

/** JWT auth through jose: HS256 with a secret, RS256/ES256 with a JWKS (inline or by URL). */
export class JwtAuthenticator implements Authenticator {
  private readonly secret: Uint8Array | null;
  private readonly keySet: JWTVerifyGetKey | null;
  private readonly remote: ReturnType<typeof createRemoteJWKSet> | null;
  private readonly clientIdClaim: string;
  private readonly adminRole: string;

  constructor(private readonly options: JwtAuthOptions) {
    this.secret = options.hs256Secret !== undefined ? new TextEncoder().encode(options.hs256Secret) : null;
    if (this.secret !== null && this.secret.length < 32) throw new Error('hs256Secret must be at least 32 bytes');
    this.remote =
      options.jwksUrl !== undefined
        ? createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration: JWKS_COOLDOWN_MS, [customFetch]: pausingAfterFailure(JWKS_COOLDOWN_MS) })
        : null;
    this.keySet = this.remote ?? (options.jwks !== undefined ? createLocalJWKSet(options.jwks) : null);
    if (this.secret === null && this.keySet === null) throw new Error('configure hs256Secret, jwks or jwksUrl');
    this.clientIdClaim = options.clientIdClaim ?? 'client_id';
    this.adminRole = options.adminRole ?? 'admin';
  }

  async authenticate(authorization: string | null): Promise<Principal> {
    if (authorization === null || authorization === '') {
      throw new LakeSyncError('UNAUTHENTICATED', 'missing Authorization header');
    }
    const match = /^Bearer ([A-Za-z0-9_\-.]+)$/i.exec(authorization); // schemes are case-insensitive (RFC 9110)
    if (match === null) throw new LakeSyncError('UNAUTHENTICATED', 'Authorization must be "Bearer <jwt>"');
    const token = match[1] as string;
    const payload = await this.verify(token);
    const clientId = payload[this.clientIdClaim];
    if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) {
      throw new LakeSyncError('TOKEN_INVALID', `token has no valid "${this.clientIdClaim}" claim`);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new LakeSyncError('TOKEN_INVALID', 'token has no "sub" claim');
    }
    const roles = Array.isArray(payload['roles']) ? (payload['roles'] as unknown[]) : [payload['role']];
    return { clientId, userId: payload.sub, claims: payload, admin: roles.includes(this.adminRole) };
  }

  /**
   * A JWKS endpoint that is down, slow or answers non-200, or an unknown key
   * id while a fresh fetch is still cooling down (a key rotated moments ago).
   */
  private keysUnavailable(err: unknown, coolingBefore: boolean): boolean {
    if (this.remote === null) return false;
    // No refetch happened for this token (cooldown): the key may be brand new.
    // If jose did refetch and still found no key, the token is at fault.
    if (err instanceof joseErrors.JWKSNoMatchingKey) return coolingBefore;
    if (err instanceof joseErrors.JWKSTimeout || err instanceof TypeError) return true;
    // jose reports a non-200 JWKS response as a plain JOSEError.
    return err instanceof joseErrors.JOSEError && err.constructor === joseErrors.JOSEError;
  }

  private async verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch (err) {
      throw new LakeSyncError('TOKEN_INVALID', 'token is not a JWT', { cause: err });
    }
    const common = {
      ...(this.options.issuer !== undefined ? { issuer: this.options.issuer } : {}),
      ...(this.options.audience !== undefined ? { audience: this.options.audience } : {}),
      clockTolerance: this.options.clockToleranceSeconds ?? 5,
      requiredClaims: ['exp'],
    };
    const coolingBefore = this.remote?.coolingDown ?? false;
    try {
      if (alg === 'HS256' && this.secret !== null) {
        return (await jwtVerify(token, this.secret, { ...common, algorithms: ['HS256'] })).payload;
      }
      if ((alg === 'RS256' || alg === 'ES256') && this.keySet !== null) {
        return (await jwtVerify(token, this.keySet, { ...common, algorithms: [...ASYMMETRIC] })).payload;
      }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new LakeSyncError('TOKEN_EXPIRED', 'token has expired', { cause: err });
      if (this.keysUnavailable(err, coolingBefore)) {
        // Our key source failed, not the token: answer 503 so clients retry.
        throw new LakeSyncError('AUTH_UNAVAILABLE', 'signing keys are unavailable; retry later', { cause: err });
      }
      throw new LakeSyncError('TOKEN_INVALID', 'token failed verification', { cause: err });
    }
    throw new LakeSyncError('TOKEN_INVALID', `token algorithm "${alg ?? 'none'}" is not accepted`);
  }
}

/** Sign an HS256 token (dev mode, tests, and server-side token issuers). */
export async function signHs256Token(
  secret: string,
  claims: { sub: string; clientId: string; role?: string; expiresIn?: string; [claim: string]: unknown },
): Promise<string> {
  const { sub, clientId, expiresIn, ...rest } = claims;
  return new SignJWT({ ...rest, client_id: clientId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn ?? '1h')
    .sign(new TextEncoder().encode(secret));
}

/** LAKESYNC_JWT_ISSUER, LAKESYNC_JWT_AUDIENCE, LAKESYNC_JWT_CLIENT_ID_CLAIM (each optional; empty = unset). */
export function jwtChecksFromEnv(env: Readonly<Record<string, string | undefined>>): Pick<JwtAuthOptions, 'issuer' | 'audience' | 'clientIdClaim'> {
  const issuer = env['LAKESYNC_JWT_ISSUER'] || undefined;
  const audience = env['LAKESYNC_JWT_AUDIENCE'] || undefined;
  const clientIdClaim = env['LAKESYNC_JWT_CLIENT_ID_CLAIM'] || undefined;
  return { ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}), ...(clientIdClaim ? { clientIdClaim } : {}) };
}
