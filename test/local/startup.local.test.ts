import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signHs256Token } from '../../core/auth/jwt.ts';
import { loadConfig } from '../../functions/local/config.ts';
import { startLocalServer } from '../../functions/local/server.ts';
import { TODO_SCHEMA, startTestServer, tempDir } from '../support/server.ts';

describe('local server startup', () => {
  it('reports a port in use as a clear error (and releases what it opened)', async () => {
    const blocker: Server = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      await expect(startTestServer({ port, lake: {} })).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port} is in use.*LAKESYNC_PORT`));
    } finally {
      blocker.close();
    }
  });

  it('replaces a dev secret file left empty by a crash, instead of refusing to start', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'dev-secret'), '');
    const server = await startLocalServer({
      host: '127.0.0.1',
      port: 0,
      dataDir,
      schema: TODO_SCHEMA,
      rules: null,
      jwtSecret: null,
      jwksUrl: null,
      dev: true,
      maxDriftMs: 60_000,
      synchronous: 'normal',
      rateLimit: null,
      lake: null,
    });
    try {
      expect(server.devSecret?.length).toBeGreaterThanOrEqual(32);
      expect(readFileSync(join(dataDir, 'dev-secret'), 'utf8')).toBe(server.devSecret);
    } finally {
      await server.close();
    }
  });

  it('checks the issuer and audience of tokens when LAKESYNC_JWT_ISSUER / LAKESYNC_JWT_AUDIENCE are set (a token of another app of the same identity provider is refused)', async () => {
    const secret = 's'.repeat(32);
    const dir = tempDir();
    writeFileSync(join(dir, 'lakesync.config.json'), JSON.stringify({ schema: TODO_SCHEMA }));
    const config = loadConfig(
      { LAKESYNC_JWT_SECRET: secret, LAKESYNC_JWT_ISSUER: 'https://idp.example.com', LAKESYNC_JWT_AUDIENCE: 'todo-app', LAKESYNC_PORT: '0', LAKESYNC_DATA_DIR: join(dir, 'data'), LAKESYNC_LAKE: 'off' },
      dir,
    );
    const server = await startLocalServer(config);
    try {
      const pull = async (claims: Record<string, unknown>): Promise<number> => {
        const token = await signHs256Token(secret, { sub: 'u1', clientId: 'c1', ...claims });
        return (await fetch(`${server.url}/v1/pull`, { headers: { authorization: `Bearer ${token}` } })).status;
      };
      expect(await pull({ iss: 'https://idp.example.com', aud: 'todo-app' })).toBe(200);
      expect(await pull({ iss: 'https://idp.example.com', aud: 'other-app' })).toBe(401);
      expect(await pull({ iss: 'https://evil.example.com', aud: 'todo-app' })).toBe(401);
      expect(await pull({})).toBe(401);
    } finally {
      await server.close();
    }
  });
  // server.ts devTokens / main.ts: dev tokens carried only client_id, so with LAKESYNC_JWT_ISSUER,
  // _AUDIENCE or _CLIENT_ID_CLAIM set (say in a .env shared with production) every dev token was refused.
  it('dev tokens pass the token checks LAKESYNC_JWT_ISSUER / _AUDIENCE / _CLIENT_ID_CLAIM ask for', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'lakesync.config.json'), JSON.stringify({ schema: TODO_SCHEMA }));
    const config = loadConfig(
      { LAKESYNC_JWT_ISSUER: 'https://idp.example.com', LAKESYNC_JWT_AUDIENCE: 'todo-app', LAKESYNC_JWT_CLIENT_ID_CLAIM: 'device', LAKESYNC_PORT: '0', LAKESYNC_DATA_DIR: join(dir, 'data'), LAKESYNC_LAKE: 'off' },
      dir,
    );
    expect(config.dev).toBe(true);
    const server = await startLocalServer(config);
    try {
      const minted = await fetch(`${server.url}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'u1', clientId: 'c1' }) });
      const { token } = (await minted.json()) as { token: string };
      expect((await fetch(`${server.url}/v1/pull`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await fetch(`${server.url}/v1/pull`, { headers: { authorization: `Bearer ${await server.devToken('dev-user', 'dev-client')}` } })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
