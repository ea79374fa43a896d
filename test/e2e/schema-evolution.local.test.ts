import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { Schema } from '../../core/index.ts';
import { TODO_SCHEMA, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

const V2: Schema = {
  version: 2,
  tables: [
    { name: 'todos', columns: [...(TODO_SCHEMA.tables[0]?.columns ?? []), { name: 'priority', type: 'integer' }] },
    { name: 'lists', columns: [{ name: 'name', type: 'string' }] },
  ],
};

describe('schema evolution', () => {
  let server: TestServer | undefined;
  const clients: LakeSyncClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.close();
  });

  it('a client on an older schema keeps syncing, then migrates with ALTER TABLE and backfills', async () => {
    server = await startTestServer({ schema: TODO_SCHEMA });
    const old = await LakeSyncClient.open({
      url: server.url,
      database: ':memory:',
      clientId: 'old',
      schema: TODO_SCHEMA,
      getToken: ({ clientId }) => tokenFor('u', clientId),
    });
    clients.push(old);
    old.insert('todos', 't1', { title: 'first' });
    await old.sync();

    const { dataDir, url } = server;
    await server.close();
    server = await startTestServer({ schema: V2, dataDir, port: Number(new URL(url).port) });

    // A new client gets the v2 schema from the server.
    const fresh = await LakeSyncClient.open({ url, database: ':memory:', clientId: 'new', getToken: ({ clientId }) => tokenFor('u', clientId) });
    clients.push(fresh);
    fresh.update('todos', 't1', { priority: 3 });
    fresh.insert('lists', 'l1', { name: 'groceries' });
    await fresh.sync();

    // The old client pushes v1 deltas happily, pulls v2 data, notices the newer schema and migrates.
    old.update('todos', 't1', { done: true });
    await old.sync();
    expect(old.store.registry.version).toBe(2);
    expect(old.db.prepare('SELECT title, done, priority FROM todos').all()).toEqual([{ title: 'first', done: 1, priority: 3 }]);
    expect(old.db.prepare('SELECT id, name FROM lists').all()).toEqual([{ id: 'l1', name: 'groceries' }]);
    await fresh.sync();
    expect(fresh.db.prepare('SELECT * FROM todos').all()).toEqual(old.db.prepare('SELECT * FROM todos').all());
  });
});
