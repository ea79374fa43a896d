import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

describe('POST /v1/admin/flush on the embedded default', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('answers with a cycle that started after the request, not one already running', async () => {
    const server: TestServer = await startTestServer({ lake: {} });
    cleanup.push(() => server.close());
    const c = await LakeSyncClient.open({
      url: server.url,
      database: ':memory:',
      clientId: 'w',
      schema: TODO_SCHEMA,
      getToken: ({ clientId }) => tokenFor('user-1', clientId),
    });
    cleanup.push(() => c.close());
    for (let i = 0; i < 30; i++) c.insert('todos', `t${i}`, { title: `todo ${i}` });
    await c.sync();
    // Two requests at once: the second arrives while the first one's cycle runs. Joining that cycle
    // answered before flushing what was acknowledged in between (the chaos test saw exactly that).
    const answers = await Promise.all([adminFlush(server.url), adminFlush(server.url)]);
    const [first, second] = answers.sort((a, b) => Number(a.flush.from) - Number(b.flush.from));
    expect(first?.flush).toMatchObject({ from: '0', to: '30', deltas: 30 });
    expect(second?.flush).toMatchObject({ from: '30', to: '30', deltas: 0 });
  });
});
