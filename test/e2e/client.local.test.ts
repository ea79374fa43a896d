import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient, type ClientEvent, type ClientOptions } from '../../clients/node/index.ts';
import { signHs256Token } from '../../core/index.ts';
import { TEST_SECRET, TODO_SCHEMA, startTestServer, tempDir, tokenFor, type TestServer } from '../support/server.ts';

describe('Node client', () => {
  let server: TestServer | undefined;
  const clients: LakeSyncClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
    await server?.close();
    server = undefined;
  });

  async function open(options: Partial<ClientOptions> & { url: string }): Promise<LakeSyncClient> {
    const c = await LakeSyncClient.open({
      database: ':memory:',
      schema: TODO_SCHEMA,
      getToken: ({ clientId }) => tokenFor('u1', clientId),
      ...options,
    });
    clients.push(c);
    return c;
  }

  it('keeps the outbox, the cursor and the clock across a restart of the app', async () => {
    server = await startTestServer();
    const database = join(tempDir(), 'app.db');
    let a = await open({ url: server.url, database, clientId: 'a' });
    a.insert('todos', 't1', { title: 'one' });
    await a.sync();
    a.insert('todos', 't2', { title: 'two (offline)' });
    const cursor = a.cursor;
    const hlc = a.store.getMeta('hlc');
    await a.close();
    clients.splice(0);

    a = await open({ url: server.url, database });
    expect(a.clientId).toBe('a');
    expect(a.cursor).toBe(cursor);
    expect(a.store.pendingCount()).toBe(1);
    a.insert('todos', 't3', { title: 'three' });
    expect(BigInt(a.store.getMeta('hlc')!)).toBeGreaterThan(BigInt(hlc!));
    await a.sync();
    const b = await open({ url: server.url, clientId: 'b' });
    await b.sync();
    expect(b.db.prepare('SELECT id FROM todos ORDER BY id').pluck().all()).toEqual(['t1', 't2', 't3']);
  });

  it('records the delta in the same transaction as the write', async () => {
    server = await startTestServer();
    const a = await open({ url: server.url, clientId: 'a' });
    expect(() =>
      a.transaction(() => {
        a.insert('todos', 't1', { title: 'rolled back' });
        throw new Error('app fails half way');
      }),
    ).toThrow('app fails half way');
    expect(a.db.prepare('SELECT count(*) FROM todos').pluck().get()).toBe(0);
    expect(a.store.pendingCount()).toBe(0);
    expect(() => a.insert('todos', 't1', { nope: 1 })).toThrowError(expect.objectContaining({ code: 'UNKNOWN_COLUMN' }) as Error);
    expect(() => a.insert('todos', 't1', { done: 'yes' })).toThrowError(expect.objectContaining({ code: 'INVALID_VALUE' }) as Error);
    expect(a.store.pendingCount()).toBe(0);
    a.insert('todos', 't1', { title: 'kept', meta: { tags: ['a'] }, position: 2 ** 40 });
    expect(a.store.pendingCount()).toBe(1);
    expect(a.db.prepare('SELECT title, meta, position FROM todos').get()).toEqual({ title: 'kept', meta: '{"tags":["a"]}', position: 2 ** 40 });
  });

  // client.ts transaction: write() counts each write into status.pending as it goes; a
  // transaction the app aborts rolls the outbox back but left the count up (until the next round).
  it('a rolled-back transaction leaves status.pending equal to the outbox', async () => {
    server = await startTestServer();
    const a = await open({ url: server.url, clientId: 'a' });
    expect(() =>
      a.transaction(() => {
        a.insert('todos', 't1', { title: 'rolled back' });
        a.insert('todos', 't2', { title: 'rolled back too' });
        throw new Error('app fails half way');
      }),
    ).toThrow('app fails half way');
    expect(a.getStatus().pending).toBe(a.store.pendingCount());
  });

  it('refreshes the token after a 401 through the token provider', async () => {
    server = await startTestServer();
    const calls: boolean[] = [];
    const a = await open({
      url: server.url,
      clientId: 'a',
      getToken: async ({ clientId, forceRefresh }) => {
        calls.push(forceRefresh);
        // The first token is already expired; the refreshed one is good.
        return forceRefresh
          ? tokenFor('u1', clientId)
          : signHs256Token(TEST_SECRET, { sub: 'u1', clientId, expiresIn: '-1m' } as never);
      },
    });
    a.insert('todos', 't1', { title: 'x' });
    await a.sync();
    expect(calls).toEqual([false, true]);
    expect(a.store.pendingCount()).toBe(0);
  });

  it('sets aside a delta the server refuses and syncs the rest', async () => {
    server = await startTestServer({
      rules: { buckets: [{ name: 'mine', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }] },
    });
    const a = await open({ url: server.url, clientId: 'a' });
    const events: ClientEvent[] = [];
    a.on((e) => events.push(e));
    a.insert('todos', 'mine', { title: 'ok', owner: 'u1' });
    a.insert('todos', 'theirs', { title: 'escape', owner: 'u2' });
    a.insert('todos', 'mine2', { title: 'ok too', owner: 'u1' });
    const report = await a.sync();
    expect(report).toMatchObject({ pushed: 2, rejected: 1 });
    expect(events).toContainEqual({ type: 'rejected', table: 'todos', rowId: 'theirs', code: 'RULE_VIOLATION' });
    expect(a.db.prepare("SELECT code FROM _lakesync_rejected").pluck().all()).toEqual(['RULE_VIOLATION']);
    const b = await open({ url: server.url, clientId: 'b' });
    await b.sync();
    expect(b.db.prepare('SELECT id FROM todos ORDER BY id').pluck().all()).toEqual(['mine', 'mine2']);
  });

  it('syncs in the background, goes offline with backoff, and recovers', async () => {
    server = await startTestServer();
    const { url, dataDir } = server;
    await server.close();
    server = undefined;
    const a = await open({ url, clientId: 'a', intervalMs: 20, backoff: { baseMs: 10, maxMs: 40 } });
    const states: string[] = [];
    a.on((e) => {
      if (e.type === 'status') states.push(e.status.state);
    });
    a.insert('todos', 't1', { title: 'written offline' });
    a.start();
    await waitFor(() => states.includes('offline'));
    server = await startTestServer({ dataDir, port: Number(new URL(url).port) });
    await waitFor(() => a.getStatus().state === 'idle' && a.getStatus().pending === 0);
    await a.stop();
    expect(a.getStatus().state).toBe('stopped');
    const b = await open({ url, clientId: 'b' });
    await b.sync();
    expect(b.db.prepare('SELECT title FROM todos').pluck().all()).toEqual(['written offline']);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
