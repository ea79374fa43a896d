import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
});
