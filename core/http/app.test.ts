import { describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../adapters/memory-buffer.ts';
import type { Authenticator } from '../auth/principal.ts';
import { Gateway } from '../engine/gateway.ts';
import { HybridLogicalClock } from '../hlc.ts';
import { createHttpApp } from './app.ts';

describe('createHttpApp', () => {
  const gateway = new Gateway({
    buffer: new MemoryBuffer(),
    schema: { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] },
    rules: null,
    clock: new HybridLogicalClock(),
  });
  let calls = 0;
  const auth: Authenticator = {
    authenticate: () => {
      calls++;
      return Promise.resolve({ clientId: 'c', userId: 'u', claims: { sub: 'u', exp: Date.now() / 1000 + 3600 }, admin: true });
    },
  };

  it('closes the connection after refusing a body it did not read', async () => {
    const app = createHttpApp({ gateway, auth });
    const body = new Uint8Array(gateway.limits.maxBodyBytes + 1);
    const res = await app.fetch(
      new Request('http://x/v1/push', {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': 'application/json', 'content-length': String(body.length) },
        body,
      }),
    );
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    const ok = await app.fetch(new Request('http://x/v1/admin/stats', { headers: { authorization: 'Bearer t' } }));
    expect(ok.headers.get('connection')).toBeNull();
  });

  it('verifies a token once while it is valid, unless told not to cache', async () => {
    for (const [tokenCache, want] of [
      [undefined, 1],
      [false, 3],
    ] as const) {
      calls = 0;
      const app = createHttpApp({ gateway, auth, ...(tokenCache !== undefined ? { tokenCache } : {}) });
      for (let i = 0; i < 3; i++) {
        const res = await app.fetch(new Request('http://x/v1/admin/stats', { headers: { authorization: 'Bearer same' } }));
        expect(res.status).toBe(200);
      }
      expect(calls).toBe(want);
    }
  });

  // CORS lets any origin call the API (tokens are bearer headers, not cookies), but the dev token
  // route needs no token: any web page the developer opened could mint an admin token for the dev
  // server on localhost (a text/plain POST needs no preflight) and read or write all its data.
  it('mints dev tokens for callers without an Origin and for loopback pages only', async () => {
    const app = createHttpApp({ gateway, auth, devTokens: () => Promise.resolve('dev-token-value') });
    const mint = (origin?: string) =>
      app.fetch(
        new Request('http://127.0.0.1:8787/v1/dev/token', {
          method: 'POST',
          headers: { 'content-type': 'text/plain', ...(origin !== undefined ? { origin } : {}) },
          body: '{"sub":"x","clientId":"y","admin":true}',
        }),
      );
    for (const origin of [undefined, 'http://localhost:5173', 'http://127.0.0.1:8787', 'http://[::1]:3000', 'http://app.localhost']) {
      const res = await mint(origin);
      expect(res.status, String(origin)).toBe(200);
      expect(await res.json()).toEqual({ token: 'dev-token-value' });
    }
    for (const origin of ['https://evil.example', 'null', 'http://localhost.evil.example', 'http://127.0.0.1.evil.example', 'garbage']) {
      const res = await mint(origin);
      expect(res.status, origin).toBe(403);
      expect(await res.text()).not.toContain('dev-token-value');
    }
  });

  it('answers paths exactly: a trailing slash is another path, 404 NOT_FOUND', async () => {
    const app = createHttpApp({ gateway, auth });
    for (const path of ['/v1/health/', '/v1/schema/', '/v1/pull/', '/v1/rows/todos/t1/']) {
      const res = await app.fetch(new Request(`http://127.0.0.1:8787${path}`, { headers: { authorization: 'Bearer x' } }));
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
    expect((await app.fetch(new Request('http://127.0.0.1:8787/v1/health'))).status).toBe(200);
  });
});
