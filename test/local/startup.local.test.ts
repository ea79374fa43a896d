import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../support/server.ts';

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
});
