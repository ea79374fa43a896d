import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tokenFor, type TestServer } from '../support/server.ts';

describe('rate limiting', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ rateLimit: { ratePerSecond: 1, burst: 3 } });
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers 429 RATE_LIMITED with retry-after once a client exhausts its bucket', async () => {
    const pull = async (clientId: string) =>
      fetch(`${server.url}/v1/pull`, { headers: { authorization: `Bearer ${await tokenFor('u', clientId)}` } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await pull('greedy')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await pull('greedy');
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    // Other clients have their own bucket.
    expect((await pull('polite')).status).toBe(200);
  });
});
