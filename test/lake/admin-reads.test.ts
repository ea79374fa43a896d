import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { SyncRules } from '../../core/rules.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

/**
 * an admin token is exempt from sync rules when it loads checkpoint
 * chunks (CheckpointService.chunk), but not when it pulls (Gateway.pull uses
 * the rules on the admin's claims). An admin client (a backend service) that
 * starts from a checkpoint therefore holds rows whose later deletes and
 * updates its pulls never carry.
 */
const clients: LakeSyncClient[] = [];
let server: TestServer | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

async function open(url: string, clientId: string, sub: string, extra: Record<string, unknown> = {}): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({ url, database: ':memory:', clientId, schema: TODO_SCHEMA, getToken: ({ clientId: id }) => tokenFor(sub, id, extra) });
  clients.push(c);
  return c;
}

function ids(c: LakeSyncClient): string[] {
  return (c.db.prepare('SELECT id FROM todos ORDER BY id').all() as { id: string }[]).map((r) => r.id);
}

describe('admin clients and checkpoints', () => {
  it('an admin client that started from a checkpoint sees a later delete (checkpoint and pull agree on what it may see)', async () => {
    const rules: SyncRules = { buckets: [{ name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }] };
    const s = (server = await startTestServer({ lake: {}, rules }));
    const alice = await open(s.url, 'alice-1', 'alice');
    alice.insert('todos', 'a1', { title: 'one', owner: 'alice' });
    alice.insert('todos', 'a2', { title: 'two', owner: 'alice' });
    await alice.sync();
    await adminFlush(s.url);

    const admin = await open(s.url, 'backend-1', 'ops', { role: 'admin' });
    await admin.sync();
    const afterCheckpoint = ids(admin);
    expect(afterCheckpoint).toEqual(['a1', 'a2']); // admin tokens see every row, in checkpoints and pulls
    alice.delete('todos', 'a1');
    alice.update('todos', 'a2', { title: 'edited' });
    await alice.sync();
    await admin.sync();
    // Either the admin sees alice's rows and their changes, or it sees none of them.
    const adminRows = admin.db.prepare('SELECT id, title FROM todos ORDER BY id').all();
    const expected = afterCheckpoint.length === 0 ? [] : [{ id: 'a2', title: 'edited' }];
    expect(adminRows).toEqual(expected); // was [a1 'one', a2 'two']: checkpoint rows whose changes pulls never carried
  });
});
