import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { Schema } from '../../core/index.ts';
import type { SyncRules } from '../../core/rules.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

/**
 * Initial sync through the Node client, in both wire formats: explicit
 * nulls and resurrected rows keep their stamps through a checkpoint (deleted
 * rows are not in checkpoints, by design); a client on an older schema loads
 * a newer checkpoint and migrates; rows that move in and out of a client's
 * rules after the checkpoint's cursor end up as the server shows them.
 */
const V2: Schema = {
  version: 2,
  tables: [
    { name: 'todos', columns: [...(TODO_SCHEMA.tables[0]?.columns ?? []), { name: 'priority', type: 'integer' }] },
    { name: 'lists', columns: [{ name: 'name', type: 'string' }] },
  ],
};

const clients: LakeSyncClient[] = [];
let server: TestServer | undefined;
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

let format: 'proto' | 'json' = 'proto';
async function open(url: string, clientId: string, schema: Schema | undefined, sub = 'user-1', extra: Record<string, unknown> = {}): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({ url, format, database: ':memory:', clientId, ...(schema ? { schema } : {}), getToken: ({ clientId: id }) => tokenFor(sub, id, extra) });
  clients.push(c);
  return c;
}

function all(c: LakeSyncClient, sql = 'SELECT * FROM todos ORDER BY id'): unknown[] {
  return c.db.prepare(sql).all();
}

describe.each(['proto', 'json'] as const)('initial sync edges (%s)', (f) => {
  beforeEach(() => {
    format = f;
  });
  it('explicit nulls and tombstones survive a checkpoint', async () => {
    server = await startTestServer({ lake: {} });
    const a = await open(server.url, 'a', TODO_SCHEMA);
    a.insert('todos', 't1', { title: 'x', owner: 'user-1', position: 3 });
    a.insert('todos', 't2', { title: 'gone', owner: 'user-1' });
    a.insert('todos', 't3', { title: 'back', owner: 'user-1' });
    await a.sync();
    a.update('todos', 't1', { title: null });
    a.delete('todos', 't2');
    a.delete('todos', 't3');
    await a.sync();
    a.insert('todos', 't3', { title: 'again' });
    await a.sync();
    expect((await adminFlush(server.url)).checkpoint).not.toBeNull();
    const b = await open(server.url, 'b', TODO_SCHEMA);
    await b.sync();
    expect(all(b)).toEqual(all(a));
    expect(b.store.loadRow('todos', 't2')).toBeUndefined(); // checkpoints hold no deleted rows (docs/protocol.md)
    for (const id of ['t1', 't3']) expect(b.store.loadRow('todos', id)).toEqual(a.store.loadRow('todos', id));
  });

  it('an old-schema client loading a newer checkpoint migrates and has the new columns', async () => {
    server = await startTestServer({ schema: V2, lake: {} });
    const w = await open(server.url, 'w', V2);
    w.insert('todos', 't1', { title: 'x', priority: 7 });
    w.insert('lists', 'l1', { name: 'groceries' });
    await w.sync();
    expect((await adminFlush(server.url)).checkpoint).not.toBeNull();
    const old = await open(server.url, 'old', TODO_SCHEMA);
    await old.sync();
    expect(old.store.registry.version).toBe(2);
    expect(all(old, 'SELECT id, title, priority FROM todos')).toEqual([{ id: 't1', title: 'x', priority: 7 }]);
    expect(all(old, 'SELECT id, name FROM lists')).toEqual([{ id: 'l1', name: 'groceries' }]);
  });

  it('rules: rows moving in and out between checkpoint and catch-up', async () => {
    const rules: SyncRules = { buckets: [{ name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }] };
    server = await startTestServer({ lake: {}, rules });
    const admin = await open(server.url, 'adm', TODO_SCHEMA, 'admin', { role: 'admin' });
    const alice = await open(server.url, 'alice-1', TODO_SCHEMA, 'alice');
    const bob = await open(server.url, 'bob-1', TODO_SCHEMA, 'bob');
    for (let i = 0; i < 4; i++) alice.insert('todos', `a${i}`, { title: `a${i}`, owner: 'alice' });
    for (let i = 0; i < 4; i++) bob.insert('todos', `b${i}`, { title: `b${i}`, owner: 'bob' });
    await alice.sync();
    await bob.sync();
    await adminFlush(server.url);
    await admin.sync();
    admin.update('todos', 'a0', { owner: 'bob' });
    admin.delete('todos', 'a1');
    admin.update('todos', 'b0', { owner: 'alice' });
    await admin.sync();
    const alice2 = await open(server.url, 'alice-2', TODO_SCHEMA, 'alice');
    await alice2.sync();
    await alice.sync();
    expect(all(alice2, 'SELECT id, title, owner FROM todos ORDER BY id')).toEqual(all(alice, 'SELECT id, title, owner FROM todos ORDER BY id'));
    expect((all(alice2, 'SELECT id FROM todos ORDER BY id') as { id: string }[]).map((r) => r.id)).toEqual(['a2', 'a3', 'b0']);
  });
});
