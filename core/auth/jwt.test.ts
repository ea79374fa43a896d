import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, LakeSyncError, type ErrorCode } from '../errors.ts';
import { JwtAuthenticator, signHs256Token } from './jwt.ts';

const SECRET = 'unit-test-secret-that-is-at-least-32-bytes';
const secretKey = new TextEncoder().encode(SECRET);
const now = (): number => Math.floor(Date.now() / 1000);

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<LakeSyncError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a LakeSyncError ${code}`).toBeInstanceOf(LakeSyncError);
  const e = err as LakeSyncError;
  expect(e.code).toBe(code);
  expect(e.status).toBe(ErrorCodes[code]);
  return e;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Change one character in the middle of the signature (the last one may only hold padding bits). */
function tamperSignature(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const i = Math.floor(s.length / 2);
  return `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
}

interface Signer {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function makeSigner(alg: 'RS256' | 'ES256', kid: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk };
}

function sign(
  signer: Signer,
  claims: JWTPayload = { client_id: 'client-1' },
  opts: { sub?: string; exp?: number | string; kid?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: signer.alg, kid: opts.kid ?? signer.kid, typ: 'JWT' })
    .setSubject(opts.sub ?? 'user-1')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '1h')
    .sign(signer.privateKey);
}

function jwks(...signers: Signer[]): JSONWebKeySet {
  return { keys: signers.map((s) => s.jwk) };
}

// ---------- HS256 ----------

describe('JwtAuthenticator, HS256', () => {
  const auth = new JwtAuthenticator({ hs256Secret: SECRET });

  it('turns a valid token into a principal', async () => {
    const token = await signHs256Token(SECRET, { sub: 'user-1', clientId: 'client-1', team: 'red' });
    const p = await auth.authenticate(`Bearer ${token}`);
    expect(p.clientId).toBe('client-1');
    expect(p.userId).toBe('user-1');
    expect(p.admin).toBe(false);
    expect(p.claims).toMatchObject({ sub: 'user-1', client_id: 'client-1', team: 'red' });
    expect(typeof p.claims['exp']).toBe('number');
  });

  it('role "admin" makes an admin principal', async () => {
    const token = await signHs256Token(SECRET, { sub: 'ops', clientId: 'c', role: 'admin' });
    expect((await auth.authenticate(`Bearer ${token}`)).admin).toBe(true);
  });

  it.each([
    [['user', 'admin'], true],
    [['admin'], true],
    [['user'], false],
    [[], false],
  ] as [string[], boolean][])('roles %j -> admin %s', async (roles, admin) => {
    const token = await signHs256Token(SECRET, { sub: 'ops', clientId: 'c', roles });
    expect((await auth.authenticate(`Bearer ${token}`)).admin).toBe(admin);
  });

  it('role "user" is not admin', async () => {
    const token = await signHs256Token(SECRET, { sub: 'u', clientId: 'c', role: 'user' });
    expect((await auth.authenticate(`Bearer ${token}`)).admin).toBe(false);
  });

  it('honours adminRole and clientIdClaim options', async () => {
    const custom = new JwtAuthenticator({ hs256Secret: SECRET, adminRole: 'ops', clientIdClaim: 'device_id' });
    const token = await new SignJWT({ device_id: 'dev-9', role: 'ops' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime('1h')
      .sign(secretKey);
    const p = await custom.authenticate(`Bearer ${token}`);
    expect(p).toMatchObject({ clientId: 'dev-9', userId: 'u', admin: true });
    // the default claim name is not consulted any more
    const plain = await signHs256Token(SECRET, { sub: 'u', clientId: 'c', role: 'admin' });
    await rejectsWith(custom.authenticate(`Bearer ${plain}`), 'TOKEN_INVALID');
  });

  it('checks issuer and audience when configured', async () => {
    const strict = new JwtAuthenticator({ hs256Secret: SECRET, issuer: 'https://idp', audience: 'lakesync' });
    const base = () =>
      new SignJWT({ client_id: 'c' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime('1h');
    const good = await base().setIssuer('https://idp').setAudience('lakesync').sign(secretKey);
    expect((await strict.authenticate(`Bearer ${good}`)).userId).toBe('u');
    const wrongIss = await base().setIssuer('https://evil').setAudience('lakesync').sign(secretKey);
    await rejectsWith(strict.authenticate(`Bearer ${wrongIss}`), 'TOKEN_INVALID');
    const wrongAud = await base().setIssuer('https://idp').setAudience('other').sign(secretKey);
    await rejectsWith(strict.authenticate(`Bearer ${wrongAud}`), 'TOKEN_INVALID');
    const none = await base().sign(secretKey);
    await rejectsWith(strict.authenticate(`Bearer ${none}`), 'TOKEN_INVALID');
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    const token = await new SignJWT({ client_id: 'c' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setIssuedAt(now() - 7200)
      .setExpirationTime(now() - 3600)
      .sign(secretKey);
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_EXPIRED');
  });

  it('allows the configured clock tolerance, and no more', async () => {
    const token = await new SignJWT({ client_id: 'c' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime(now() - 2)
      .sign(secretKey);
    expect((await auth.authenticate(`Bearer ${token}`)).userId).toBe('u'); // default tolerance 5 s
    const exact = new JwtAuthenticator({ hs256Secret: SECRET, clockToleranceSeconds: 0 });
    await rejectsWith(exact.authenticate(`Bearer ${token}`), 'TOKEN_EXPIRED');
  });

  it('refuses a token that is not valid yet (nbf in the future)', async () => {
    const token = await new SignJWT({ client_id: 'c' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setNotBefore(now() + 600)
      .setExpirationTime('1h')
      .sign(secretKey);
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it('refuses a tampered signature', async () => {
    const token = await signHs256Token(SECRET, { sub: 'u', clientId: 'c' });
    await rejectsWith(auth.authenticate(`Bearer ${tamperSignature(token)}`), 'TOKEN_INVALID');
  });

  it('refuses a tampered payload under the old signature', async () => {
    const [h, , s] = (await signHs256Token(SECRET, { sub: 'u', clientId: 'c' })).split('.') as [string, string, string];
    const forged = `${h}.${b64url({ sub: 'u', client_id: 'c', role: 'admin', exp: now() + 3600 })}.${s}`;
    await rejectsWith(auth.authenticate(`Bearer ${forged}`), 'TOKEN_INVALID');
  });

  it('refuses a token signed with another secret', async () => {
    const token = await signHs256Token('some-other-secret-also-at-least-32-bytes', { sub: 'u', clientId: 'c' });
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it.each([
    ['with an empty signature', ''],
    ['with a bogus signature', 'c2ln'],
  ])('refuses alg none %s', async (_name, sig) => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'u', client_id: 'c', exp: now() + 3600 })}.${sig}`;
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it.each([
    ['HS384', 'HS384'],
    ['HS512', 'HS512'],
  ])('refuses other HMAC algorithms (%s)', async (_name, alg) => {
    const token = await new SignJWT({ client_id: 'c' }).setProtectedHeader({ alg }).setSubject('u').setExpirationTime('1h').sign(secretKey);
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it('refuses an RS256 token when only a secret is configured', async () => {
    const signer = await makeSigner('RS256', 'k1');
    await rejectsWith(auth.authenticate(`Bearer ${await sign(signer)}`), 'TOKEN_INVALID');
  });

  it.each([
    ['no client_id claim', {}],
    ['client_id is a number', { client_id: 42 }],
    ['client_id is empty', { client_id: '' }],
    ['client_id has spaces', { client_id: 'client 1' }],
    ['client_id is too long', { client_id: 'c'.repeat(129) }],
  ] as [string, JWTPayload][])('refuses a token with %s (TOKEN_INVALID)', async (_name, claims) => {
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime('1h').sign(secretKey);
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it('refuses a token with no sub', async () => {
    const token = await new SignJWT({ client_id: 'c' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secretKey);
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it('refuses a token with no exp', async () => {
    const token = await new SignJWT({ client_id: 'c' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u').sign(secretKey);
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it.each(['not-a-jwt', 'a.b.c', 'e30.e30.'])('refuses garbage %j (TOKEN_INVALID)', async (token) => {
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it.each([
    ['missing header', null],
    ['empty header', ''],
    ['Basic scheme', 'Basic dXNlcjpwdw=='],
    ['bare token', 'eyJhbGciOiJIUzI1NiJ9.e30.sig'],
    ['Bearer without token', 'Bearer'],
    ['Bearer with a space only', 'Bearer '],
    ['two spaces', 'Bearer  abc.def.ghi'],
    ['trailing junk', 'Bearer abc.def.ghi extra'],
  ] as [string, string | null][])('%s -> UNAUTHENTICATED', async (_name, header) => {
    await rejectsWith(auth.authenticate(header), 'UNAUTHENTICATED');
  });

  it('accepts a lowercase "bearer" scheme', async () => {
    const token = await signHs256Token(SECRET, { sub: 'u', clientId: 'c' });
    expect((await auth.authenticate(`bearer ${token}`)).userId).toBe('u');
  });

  it('refuses a secret shorter than 32 bytes, and a config with no key at all', () => {
    expect(() => new JwtAuthenticator({ hs256Secret: 'short' })).toThrow(/32 bytes/);
    expect(() => new JwtAuthenticator({})).toThrow(/hs256Secret, jwks or jwksUrl/);
  });
});

// ---------- RS256 / ES256, inline JWKS ----------

describe('JwtAuthenticator, inline JWKS', () => {
  let rsa: Signer;
  let ec: Signer;
  let auth: JwtAuthenticator;

  beforeAll(async () => {
    rsa = await makeSigner('RS256', 'rsa-1');
    ec = await makeSigner('ES256', 'ec-1');
    auth = new JwtAuthenticator({ jwks: jwks(rsa, ec) });
  });

  it.each(['RS256', 'ES256'] as const)('accepts a valid %s token', async (alg) => {
    const signer = alg === 'RS256' ? rsa : ec;
    const token = await sign(signer, { client_id: 'client-7', roles: ['admin'] }, { sub: 'user-7' });
    const p = await auth.authenticate(`Bearer ${token}`);
    expect(p).toMatchObject({ clientId: 'client-7', userId: 'user-7', admin: true });
    expect(p.claims['roles']).toEqual(['admin']);
  });

  it.each(['RS256', 'ES256'] as const)('refuses an expired %s token with TOKEN_EXPIRED', async (alg) => {
    const token = await sign(alg === 'RS256' ? rsa : ec, { client_id: 'c' }, { exp: now() - 600 });
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_EXPIRED');
  });

  it.each(['RS256', 'ES256'] as const)('refuses a tampered %s signature', async (alg) => {
    const token = await sign(alg === 'RS256' ? rsa : ec);
    await rejectsWith(auth.authenticate(`Bearer ${tamperSignature(token)}`), 'TOKEN_INVALID');
  });

  it('refuses a token signed by an unpublished key that claims a published kid', async () => {
    const impostor = await makeSigner('RS256', 'rsa-1');
    await rejectsWith(auth.authenticate(`Bearer ${await sign(impostor)}`), 'TOKEN_INVALID');
  });

  it('refuses a token whose kid is not in the set', async () => {
    const stranger = await makeSigner('ES256', 'ec-unknown');
    await rejectsWith(auth.authenticate(`Bearer ${await sign(stranger)}`), 'TOKEN_INVALID');
  });

  it('refuses an HS256 token when only a JWKS is configured', async () => {
    const token = await signHs256Token(SECRET, { sub: 'u', clientId: 'c' });
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it('refuses alg none', async () => {
    const token = `${b64url({ alg: 'none', kid: 'rsa-1' })}.${b64url({ sub: 'u', client_id: 'c', exp: now() + 3600 })}.`;
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'TOKEN_INVALID');
  });

  it('refuses a token without client_id', async () => {
    await rejectsWith(auth.authenticate(`Bearer ${await sign(ec, {})}`), 'TOKEN_INVALID');
  });

  it('accepts both kinds side by side when a secret and a JWKS are configured', async () => {
    const both = new JwtAuthenticator({ hs256Secret: SECRET, jwks: jwks(rsa) });
    expect((await both.authenticate(`Bearer ${await sign(rsa)}`)).clientId).toBe('client-1');
    const hs = await signHs256Token(SECRET, { sub: 'u', clientId: 'c-hs' });
    expect((await both.authenticate(`Bearer ${hs}`)).clientId).toBe('c-hs');
  });
});

// ---------- JWKS by URL ----------

describe('JwtAuthenticator, JWKS URL', () => {
  let server: Server;
  let url: string;
  /** What the JWKS endpoint serves right now. */
  let published: JSONWebKeySet = { keys: [] };
  let status = 200;
  let fetches = 0;
  let oldKey: Signer;
  let newKey: Signer;

  beforeAll(async () => {
    oldKey = await makeSigner('RS256', 'key-2024');
    newKey = await makeSigner('ES256', 'key-2025');
    server = createServer((req, res) => {
      fetches += 1;
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(published));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });

  afterEach(() => {
    vi.useRealTimers();
    published = { keys: [oldKey.jwk] };
    status = 200;
    fetches = 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  });

  it('verifies tokens against the fetched set and caches it', async () => {
    published = { keys: [oldKey.jwk] };
    fetches = 0;
    const auth = new JwtAuthenticator({ jwksUrl: url });
    const token = await sign(oldKey, { client_id: 'client-1', role: 'admin' });
    expect(await auth.authenticate(`Bearer ${token}`)).toMatchObject({ clientId: 'client-1', admin: true });
    expect(await auth.authenticate(`Bearer ${token}`)).toMatchObject({ clientId: 'client-1' });
    expect(fetches).toBe(1);
  });

  it('refuses an expired and a tampered token (fetched key)', async () => {
    published = { keys: [oldKey.jwk] };
    const auth = new JwtAuthenticator({ jwksUrl: url });
    await rejectsWith(auth.authenticate(`Bearer ${await sign(oldKey, { client_id: 'c' }, { exp: now() - 600 })}`), 'TOKEN_EXPIRED');
    await rejectsWith(auth.authenticate(`Bearer ${tamperSignature(await sign(oldKey))}`), 'TOKEN_INVALID');
  });

  it('key rotation: a token with a new kid is accepted once the set is refetched (after the cooldown)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now());
    published = { keys: [oldKey.jwk] };
    fetches = 0;
    const auth = new JwtAuthenticator({ jwksUrl: url });
    expect((await auth.authenticate(`Bearer ${await sign(oldKey)}`)).clientId).toBe('client-1');
    expect(fetches).toBe(1);

    // The IdP rotates: the new key is published and tokens are signed with it.
    published = { keys: [newKey.jwk] };
    vi.setSystemTime(Date.now() + 31_000);
    const fresh = await sign(newKey, { client_id: 'client-2' }, { sub: 'user-2' });
    expect(await auth.authenticate(`Bearer ${fresh}`)).toMatchObject({ clientId: 'client-2', userId: 'user-2' });
    expect(fetches).toBe(2);

    // The retired key is gone from the refetched set. Right after a fetch an
    // unknown kid is "retry later" (it may be brand new); once the cooldown
    // has passed and a refetch still lacks it, the token is invalid.
    await rejectsWith(auth.authenticate(`Bearer ${await sign(oldKey)}`), 'AUTH_UNAVAILABLE');
    vi.setSystemTime(Date.now() + 11_000);
    await rejectsWith(auth.authenticate(`Bearer ${await sign(oldKey)}`), 'TOKEN_INVALID');
  });

  it('key rotation right after a fetch (inside the cooldown) is not refused as an invalid token', async () => {
    published = { keys: [oldKey.jwk] };
    const auth = new JwtAuthenticator({ jwksUrl: url });
    expect((await auth.authenticate(`Bearer ${await sign(oldKey)}`)).clientId).toBe('client-1');
    published = { keys: [oldKey.jwk, newKey.jwk] };
    const fresh = await sign(newKey);
    const outcome = await auth.authenticate(`Bearer ${fresh}`).then(
      (p) => p.clientId,
      (e: unknown) => e,
    );
    // Either accepted, or refused as retryable (not a 401 that blames the token).
    if (outcome instanceof LakeSyncError) expect(outcome.status === 429 || outcome.status >= 500).toBe(true);
    else expect(outcome).toBe('client-1');
  });

  it('an unknown kid after the cooldown triggers one refetch and is then refused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now());
    published = { keys: [oldKey.jwk] };
    fetches = 0;
    const auth = new JwtAuthenticator({ jwksUrl: url });
    await auth.authenticate(`Bearer ${await sign(oldKey)}`);
    vi.setSystemTime(Date.now() + 31_000);
    const stranger = await makeSigner('ES256', 'nobody-knows-me');
    await rejectsWith(auth.authenticate(`Bearer ${await sign(stranger)}`), 'TOKEN_INVALID');
    expect(fetches).toBe(2);
  });

  // jose records only successful fetches, so while the JWKS endpoint failed every request with
  // an RS256/ES256 header (anyone can send one, no valid token needed) fetched it again.
  it('a failed JWKS fetch is not retried by every request, only after a pause', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now());
    status = 500;
    fetches = 0;
    const auth = new JwtAuthenticator({ jwksUrl: url });
    const token = await sign(oldKey);
    for (let i = 0; i < 5; i++) await rejectsWith(auth.authenticate(`Bearer ${token}`), 'AUTH_UNAVAILABLE');
    expect(fetches).toBe(1);
    status = 200;
    await rejectsWith(auth.authenticate(`Bearer ${token}`), 'AUTH_UNAVAILABLE');
    vi.setSystemTime(Date.now() + 11_000);
    expect((await auth.authenticate(`Bearer ${token}`)).clientId).toBe('client-1');
    expect(fetches).toBe(2);
  });

  it('a JWKS endpoint that answers 500 is reported as a server-side (5xx) failure', async () => {
    status = 500;
    const auth = new JwtAuthenticator({ jwksUrl: url });
    const err = await auth.authenticate(`Bearer ${await sign(oldKey)}`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LakeSyncError);
    expect((err as LakeSyncError).status).toBeGreaterThanOrEqual(500);
  });

});
