import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { SyncRules } from '../../core/rules.ts';
import { pythonJson } from '../support/python.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tokenFor, type AdminFlushAnswer, type TestServer } from '../support/server.ts';

/**
 * Initial sync end to end on the local server with its lake: flush, a
 * checkpoint, the buffer trimmed behind it; a new client loads the
 * checkpoint and catches up by pull; a client offline past the buffer's
 * floor gets CURSOR_EXPIRED, reloads, keeps its unpushed writes, and
 * converges; the lake equals the clients (read by pyiceberg).
 */
const clients: LakeSyncClient[] = [];
let server: TestServer | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

async function client(url: string, clientId: string, sub = 'user-1'): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({ url, database: ':memory:', clientId, schema: TODO_SCHEMA, getToken: ({ clientId: id }) => tokenFor(sub, id) });
  clients.push(c);
  return c;
}

const flush = (s: TestServer): Promise<AdminFlushAnswer> => adminFlush(s.url);

function rows(c: LakeSyncClient): unknown[] {
  return c.db.prepare('SELECT id, title, done, owner FROM todos ORDER BY id').all();
}

describe('initial sync from checkpoints', () => {
  it('a new client loads the checkpoint and pulls the rest; an expired cursor reloads and keeps unpushed writes', async () => {
    server = await startTestServer({ lake: {} });
    const a = await client(server.url, 'client-a');
    for (let i = 0; i < 40; i++) a.insert('todos', `t${i}`, { title: `todo ${i}`, done: false, owner: 'user-1' });
    await a.sync();
    const c = await client(server.url, 'client-c'); // synced early, then offline
    await c.sync();
    const cCursor = BigInt(c.cursor);
    for (let i = 0; i < 10; i++) a.update('todos', `t${i}`, { done: true });
    for (let i = 10; i < 15; i++) a.delete('todos', `t${i}`);
    await a.sync();

    const first = await flush(server);
    expect(first.flush.deltas).toBe(55);
    expect(first.checkpoint).not.toBeNull();
    expect(BigInt(first.floor)).toBeGreaterThan(cCursor); // the buffer forgot what the lake and checkpoint hold

    // Writes after the checkpoint: the new client must get them by pull.
    a.insert('todos', 'late', { title: 'after the checkpoint', owner: 'user-1' });
    a.update('todos', 't20', { title: 'edited after the checkpoint' });
    await a.sync();

    const b = await client(server.url, 'client-b');
    const report = await b.sync();
    expect(report.pulled).toBeGreaterThanOrEqual(35);
    expect(rows(b)).toEqual(rows(a));

    // C was offline past the floor: it writes locally, then syncs.
    c.insert('todos', 'from-c', { title: 'written offline', owner: 'user-1' });
    await c.sync();
    await a.sync();
    expect(rows(c)).toEqual(rows(a));
    expect(rows(c)).toContainEqual({ id: 'from-c', title: 'written offline', done: null, owner: 'user-1' });

    // The lake (state table) equals the clients once flushed.
    await flush(server);
    const lake = pythonJson<Record<string, unknown>[]>(
      `
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
cat = SqlCatalog('lakesync', uri='sqlite:///' + sys.argv[1])
print(json.dumps([{k: r[k] for k in ('_row_id', 'title', 'done', 'owner')} for r in cat.load_table('lakesync.todos').scan().to_arrow().to_pylist()]))
`,
      [join(server.dataDir, 'lake', 'catalog.db')],
    );
    const fromLake = lake
      .map((r) => ({ id: r['_row_id'], title: r['title'], done: r['done'] === null ? null : r['done'] ? 1 : 0, owner: r['owner'] }))
      .sort((x, y) => String(x.id).localeCompare(String(y.id)));
    const fromClient = (rows(a) as { id: string }[]).slice().sort((x, y) => x.id.localeCompare(y.id));
    expect(fromLake).toEqual(fromClient);
  });

  it('serves each client only the checkpoint rows its sync rules allow', async () => {
    const rules: SyncRules = { buckets: [{ name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }] };
    server = await startTestServer({ lake: {}, rules });
    const alice = await client(server.url, 'alice-1', 'alice');
    const bob = await client(server.url, 'bob-1', 'bob');
    for (let i = 0; i < 5; i++) alice.insert('todos', `a${i}`, { title: `alice ${i}`, owner: 'alice' });
    for (let i = 0; i < 3; i++) bob.insert('todos', `b${i}`, { title: `bob ${i}`, owner: 'bob' });
    await alice.sync();
    await bob.sync();
    await flush(server);
    const alice2 = await client(server.url, 'alice-2', 'alice');
    await alice2.sync();
    expect((rows(alice2) as { id: string }[]).map((r) => r.id)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    const bob2 = await client(server.url, 'bob-2', 'bob');
    await bob2.sync();
    expect((rows(bob2) as { id: string }[]).map((r) => r.id)).toEqual(['b0', 'b1', 'b2']);
  });
});
