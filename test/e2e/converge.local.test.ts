import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { TODO_SCHEMA, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

function tableDump(client: LakeSyncClient): unknown[] {
  return client.db.prepare('SELECT * FROM todos ORDER BY id').all();
}

describe('two clients on the local server', () => {
  let server: TestServer | undefined;
  const clients: LakeSyncClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.close();
  });

  async function open(url: string, clientId: string): Promise<LakeSyncClient> {
    const c = await LakeSyncClient.open({
      url,
      database: ':memory:',
      clientId,
      schema: TODO_SCHEMA,
      getToken: ({ clientId: id }) => tokenFor('user-1', id),
    });
    clients.push(c);
    return c;
  }

  it('converge after editing the same rows offline', async () => {
    server = await startTestServer();
    const a = await open(server.url, 'client-a');
    const b = await open(server.url, 'client-b');
    a.insert('todos', 't1', { title: 'from a', done: false, position: 1 });
    await a.sync();
    await b.sync();
    expect(tableDump(b)).toEqual(tableDump(a));
    const { url, dataDir } = server;
    await server.close();
    server = undefined;

    // Offline: both edit the same row, different and same columns.
    a.update('todos', 't1', { title: 'a wins title?', done: true });
    b.update('todos', 't1', { title: 'b wins title?', score: 2.5 });
    b.insert('todos', 't2', { title: 'only b', meta: { tags: ['x'] } });
    a.delete('todos', 't1');
    await expect(a.sync()).rejects.toThrow(/cannot reach/);
    expect(a.getStatus().state).toBe('offline');

    const port = Number(new URL(url).port);
    server = await startTestServer({ port, dataDir });
    await a.sync();
    await b.sync();
    await a.sync();
    expect(tableDump(a)).toEqual(tableDump(b));
    expect(tableDump(a)).toHaveLength(1);
  });
});
