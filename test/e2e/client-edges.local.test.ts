/**
 * The Node client at the edges of the protocol: refused writes, oversize
 * batches, reused stamps, clocks, a server that lost its data, schema
 * downgrades, writes during a checkpoint load. Found by an independent
 * review; each test failed before its fix (the comments say what happened).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient, type ClientOptions } from '../../clients/node/index.ts';
import { adminFlush, startTestServer, tempDir, tokenFor, TODO_SCHEMA, type TestServer } from '../support/server.ts';

const OWN = { buckets: [{ name: 'mine', tables: { todos: [{ column: 'owner', op: 'eq' as const, value: { claim: 'sub' } }] } }] };

describe('Node client edges', () => {
  let server: TestServer | undefined;
  const clients: LakeSyncClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
    await server?.close();
    server = undefined;
  });

  async function open(options: Partial<ClientOptions> & { url: string }, sub = 'u1'): Promise<LakeSyncClient> {
    const c = await LakeSyncClient.open({
      database: ':memory:',
      schema: TODO_SCHEMA,
      getToken: ({ clientId }) => tokenFor(sub, clientId),
      ...options,
    });
    clients.push(c);
    return c;
  }

  const row = (c: LakeSyncClient, id: string): unknown => c.db.prepare('SELECT id, title, owner FROM todos WHERE id = ?').get(id);

  // client.ts pushAll / local-store.ts reject: a refused delta leaves the outbox, but its
  // effect stays merged into the local row (with a stamp newer than the server's), so the
  // client shows a value the server never accepted, and no later pull corrects it.
  it('a delta the server refuses does not stay applied locally: the client ends equal to the server', async () => {
    server = await startTestServer({ rules: OWN });
    const a = await open({ url: server.url, clientId: 'a' });
    a.insert('todos', 'mine', { title: 'ok', owner: 'u1' });
    await a.sync();
    // Moving the row out of one's own view is refused (RULE_VIOLATION) ...
    a.update('todos', 'mine', { owner: 'u2' });
    // ... and so is creating a row for someone else.
    a.insert('todos', 'theirs', { title: 'escape', owner: 'u2' });
    const report = await a.sync();
    expect(report.rejected).toBe(2);
    await a.sync();
    const b = await open({ url: server.url, clientId: 'b' });
    await b.sync();
    expect(row(b, 'mine')).toEqual({ id: 'mine', title: 'ok', owner: 'u1' });
    expect(row(a, 'mine')).toEqual(row(b, 'mine')); // a shows owner u2
    expect(row(a, 'theirs')).toBeUndefined();
  });

  // client.ts pushAll: a batch over the server's body limit answers 413 BODY_TOO_LARGE
  // (deltaIndex -1). It is not a delta fault, so pushAll rethrows, and the next round sends
  // the very same batch: the outbox is blocked forever. docs/protocol.md: "split the batch".
  it('an outbox batch larger than the 4 MiB body limit is split, not retried unchanged forever', async () => {
    server = await startTestServer();
    const a = await open({ url: server.url, clientId: 'a' });
    const title = 'x'.repeat(10_000);
    a.transaction(() => {
      for (let i = 0; i < 450; i++) a.insert('todos', `big-${i}`, { title, owner: 'u1' });
    });
    for (let round = 0; round < 3; round++) await a.sync().catch(() => undefined);
    expect(a.getStatus().lastError ?? '').not.toContain('BODY_TOO_LARGE');
    expect(a.store.pendingCount()).toBe(0);
  }, 60_000);

  // Behind API Gateway and Lambda a push body is base64 in a JSON event that Lambda takes up to
  // 6 MB: a larger batch never reaches the server, and API Gateway answers 413 with its own body
  // ({"message":"Request Entity Too Large"}), not a LakeSync error. The client only split on the
  // code BODY_TOO_LARGE, so such a batch was sent again, unchanged, forever.
  it('a batch refused with a bare 413 by a proxy in front of the server is split too', async () => {
    server = await startTestServer();
    const limit = 1_000_000;
    let refused = 0;
    const proxyFetch: typeof fetch = async (input, init) => {
      const body = init?.body;
      const size = body instanceof Uint8Array ? body.byteLength : typeof body === 'string' ? Buffer.byteLength(body) : 0;
      if (size > limit) {
        refused++;
        return new Response('{"message":"Request Entity Too Large"}', { status: 413, headers: { 'content-type': 'application/json' } });
      }
      return fetch(input, init);
    };
    const a = await open({ url: server.url, clientId: 'a', fetch: proxyFetch });
    const title = 'x'.repeat(10_000);
    a.transaction(() => {
      for (let i = 0; i < 300; i++) a.insert('todos', `big-${i}`, { title, owner: 'u1' });
    });
    for (let round = 0; round < 3 && a.store.pendingCount() > 0; round++) await a.sync().catch(() => undefined);
    expect(refused).toBeGreaterThan(0);
    expect(a.store.pendingCount()).toBe(0);
  }, 60_000);

  // Whether API Gateway answers an over-6 MB event with 413 or 500 is not documented: with a 500
  // the client would retry the same batch for ever. So it never sends a body over maxPushBytes.
  it('push bodies stay under maxPushBytes: batches are split before they are sent, and a delta too large alone is set aside', async () => {
    server = await startTestServer();
    const limit = 200_000;
    const sizes: number[] = [];
    const proxyFetch: typeof fetch = async (input, init) => {
      const body = init?.body;
      const size = body instanceof Uint8Array ? body.byteLength : 0;
      if (String(input instanceof Request ? input.url : input).includes('/v1/push')) sizes.push(size);
      if (size > limit) return new Response('Internal Server Error', { status: 500 });
      return fetch(input, init);
    };
    const a = await open({ url: server.url, clientId: 'a', fetch: proxyFetch, maxPushBytes: limit });
    a.transaction(() => {
      for (let i = 0; i < 100; i++) a.insert('todos', `big-${i}`, { title: 'x'.repeat(10_000), owner: 'u1' });
      a.insert('todos', 'huge', { title: 'y'.repeat(300_000), owner: 'u1' });
    });
    const report = await a.sync();
    expect(Math.max(...sizes)).toBeLessThanOrEqual(limit);
    expect(report.pushed).toBe(100);
    expect(report.rejected).toBe(1);
    expect(a.store.pendingCount()).toBe(0);
    const b = await open({ url: server.url, clientId: 'b' });
    await b.sync();
    expect((b.db.prepare("SELECT count(*) FROM todos WHERE id LIKE 'big-%'").pluck().get() as number)).toBe(100);
  }, 60_000);

  // A device whose clock runs minutes fast has its writes refused with CLOCK_DRIFT until real time
  // catches up with their stamps. The round stopped there, so it did not even pull: it saw nobody's writes.
  it('a push refused with CLOCK_DRIFT still pulls, then reports the error; the writes wait in the outbox', async () => {
    server = await startTestServer();
    const other = await open({ url: server.url, clientId: 'other' });
    other.insert('todos', 'theirs', { title: 'from other', owner: 'u1' });
    await other.sync();
    const fast = await open({ url: server.url, clientId: 'fast', wallClock: () => Date.now() + 10 * 60_000 });
    fast.insert('todos', 'mine', { title: 'from the future', owner: 'u1' });
    await expect(fast.sync()).rejects.toThrow(/CLOCK_DRIFT/);
    expect(row(fast, 'theirs')).toEqual({ id: 'theirs', title: 'from other', owner: 'u1' });
    expect(fast.store.pendingCount()).toBe(1);
    expect(fast.getStatus().state).toBe('error');
  });

  it('a push refused with SCHEMA_VERSION_MISMATCH (an app updated before its server) still pulls, then reports the error', async () => {
    server = await startTestServer();
    const other = await open({ url: server.url, clientId: 'other' });
    other.insert('todos', 'theirs', { title: 'from other', owner: 'u1' });
    await other.sync();
    const newer = {
      version: TODO_SCHEMA.version + 1,
      tables: TODO_SCHEMA.tables.map((t) => (t.name === 'todos' ? { ...t, columns: [...t.columns, { name: 'due', type: 'string' as const }] } : t)),
    };
    const ahead = await open({ url: server.url, clientId: 'ahead', schema: newer });
    ahead.insert('todos', 'mine', { title: 'new app', owner: 'u1', due: 'friday' });
    await expect(ahead.sync()).rejects.toThrow(/SCHEMA_VERSION_MISMATCH/);
    expect(row(ahead, 'theirs')).toEqual({ id: 'theirs', title: 'from other', owner: 'u1' });
    expect(ahead.store.pendingCount()).toBe(1);
  });

  // close() waited for the round under way: a request hanging on a dead link held it for the whole
  // request timeout (30 s by default), and a long initial load until it finished.
  it('close() aborts the requests under way instead of waiting for them', async () => {
    server = await startTestServer();
    let hung = false;
    const hanging: typeof fetch = (input, init) => {
      if (!String(input instanceof Request ? input.url : input).includes('/v1/pull')) return fetch(input, init);
      hung = true;
      return new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error)));
    };
    const a = await open({ url: server.url, clientId: 'a', fetch: hanging, requestTimeoutMs: 600_000, initialSync: 'pull' });
    a.insert('todos', 'kept', { title: 'offline write', owner: 'u1' });
    const round = a.sync().catch((e: unknown) => e);
    while (!hung) await new Promise((r) => setTimeout(r, 5));
    await a.close(); // within the test's timeout, far below the request timeout
    expect(String(await round)).toMatch(/closing|abort/i);
  }, 20_000);

  // client.ts DELTA_FAULTS: STAMP_REUSED is treated like a bad delta (set aside, never
  // sent again). docs/protocol.md (Push, 5.): the client "must advance its clock past every
  // hlc it has used and the serverHlc it has seen, re-stamp the delta and push it again".
  // Here a reinstall keeps its client id and its clock reads the same millisecond: the
  // user's write is lost, and the local row stays different from the server's.
  it('a write refused with STAMP_REUSED is re-stamped and pushed again, not dropped', async () => {
    server = await startTestServer();
    const t = Date.now();
    const wallClock = (): number => t;
    const first = await open({ url: server.url, clientId: 'device', database: join(tempDir(), 'first.db'), wallClock });
    first.insert('todos', 'r1', { title: 'before the reinstall', owner: 'u1' });
    await first.sync();
    const again = await open({ url: server.url, clientId: 'device', database: join(tempDir(), 'reinstalled.db'), wallClock });
    again.insert('todos', 'r2', { title: 'after the reinstall', owner: 'u1' });
    await again.sync().catch(() => undefined);
    await again.sync().catch(() => undefined);
    expect(again.db.prepare('SELECT code FROM _lakesync_rejected').pluck().all()).toEqual([]); // was: ['STAMP_REUSED']
    const reader = await open({ url: server.url, clientId: 'reader' });
    await reader.sync();
    expect(row(reader, 'r2')).toEqual({ id: 'r2', title: 'after the reinstall', owner: 'u1' });
  });

  // client.ts syncOnce reset the synced state after a refusal only when pushAll returned: if a
  // later push of the same round failed (its answer lost, offline), or the app stopped in
  // between, the refused write had left the outbox but stayed applied locally, for good.
  it('a refusal followed by a failed push still resets the rows the refused write touched', async () => {
    server = await startTestServer({ rules: OWN });
    const owner = await open({ url: server.url, clientId: 'owner' }, 'u1');
    owner.insert('todos', 'x', { title: 'mine', owner: 'u1' });
    await owner.sync();
    let lose = -1;
    const flaky: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (lose !== -1 && lose-- === 0) throw new TypeError('connection lost before the answer');
      return res;
    };
    const other = await open({ url: server.url, clientId: 'other', fetch: flaky, pushBatch: 1 }, 'u2');
    other.insert('todos', 'x', { title: 'taken over', owner: 'u2' }); // refused: x is u1's
    other.insert('todos', 'y', { title: 'fine', owner: 'u2' });
    lose = 1; // the second push (of y) is stored, but its answer is lost
    await expect(other.sync()).rejects.toThrow(/cannot reach|lost/);
    lose = -1;
    await other.sync();
    expect(other.db.prepare('SELECT code FROM _lakesync_rejected').pluck().all()).toEqual(['RULE_VIOLATION']);
    expect(other.db.prepare('SELECT id, title, owner FROM todos ORDER BY id').all()).toEqual([{ id: 'y', title: 'fine', owner: 'u2' }]);
  });

  // client.ts pushAll re-stamped only the refused delta: it then ordered after the later
  // writes of the outbox, so an older edit of the same row won over the user's last one; and
  // after 3 re-stamps in a round, further reused stamps were set aside (the writes lost).
  it('re-stamping keeps the outbox order and covers every reused stamp of the outbox', async () => {
    server = await startTestServer();
    const t = Date.now();
    const wallClock = (): number => t;
    const first = await open({ url: server.url, clientId: 'device', database: join(tempDir(), 'first.db'), wallClock });
    for (let i = 0; i < 5; i++) first.insert('todos', `old-${i}`, { title: 'before the reinstall', owner: 'u1' });
    await first.sync();
    const again = await open({ url: server.url, clientId: 'device', database: join(tempDir(), 'reinstalled.db'), wallClock });
    again.insert('todos', 'r', { title: 'one', owner: 'u1' }); // stamps (t, 0), (t, 1): reused
    again.update('todos', 'r', { title: 'two' });
    for (let i = 0; i < 5; i++) again.insert('todos', `new-${i}`, { title: 'after', owner: 'u1' }); // (t, 2..6): 2..4 reused
    again.update('todos', 'r', { title: 'three' }); // (t, 7): not reused, yet older than re-stamps of the others
    await again.sync().catch(() => undefined);
    await again.sync().catch(() => undefined);
    expect(again.db.prepare('SELECT code FROM _lakesync_rejected').pluck().all()).toEqual([]);
    expect(again.store.pendingCount()).toBe(0);
    const reader = await open({ url: server.url, clientId: 'reader' });
    await reader.sync();
    expect(row(reader, 'r')).toEqual({ id: 'r', title: 'three', owner: 'u1' });
    expect(row(again, 'r')).toEqual({ id: 'r', title: 'three', owner: 'u1' });
    expect(reader.db.prepare("SELECT count(*) FROM todos WHERE id LIKE 'new-%'").pluck().get()).toBe(5);
  });

  // client.ts loadCheckpoint: the rows of a checkpoint carry stamps, but the client's clock
  // never receives them (chunks carry serverHlc 0, and no stamp is fed to clock.receive). A
  // client that goes offline right after loading it stamps its edits below the values it
  // shows, when the writer's clock was ahead (within the server's drift limit): the edit loses
  // to the value the user just saw, locally and on the server. docs/protocol.md (HLC):
  // clients MUST receive() "the hlc of every received delta", so later writes order after
  // what they have seen.
  it('an edit made after loading a checkpoint (then offline) wins over the value it replaced', async () => {
    server = await startTestServer({ lake: {} });
    const ahead = await open({ url: server.url, clientId: 'ahead', wallClock: () => Date.now() + 30_000 });
    ahead.insert('todos', 't1', { title: 'seen', owner: 'u1' });
    await ahead.sync();
    expect((await adminFlush(server.url)).checkpoint).not.toBeNull();

    let offline = false;
    const flaky: typeof fetch = (input, init) => {
      if (offline || String(input instanceof Request ? input.url : input).includes('/v1/pull')) {
        offline = true; // the connection drops right after the checkpoint loaded
        return Promise.reject(new TypeError('fetch failed'));
      }
      return fetch(input, init);
    };
    const b = await open({ url: server.url, clientId: 'b', fetch: flaky });
    await expect(b.sync()).rejects.toThrow();
    expect(row(b, 't1')).toEqual({ id: 't1', title: 'seen', owner: 'u1' });
    b.update('todos', 't1', { title: 'edited after seeing it' });
    expect(row(b, 't1')).toEqual({ id: 't1', title: 'edited after seeing it', owner: 'u1' });
  }, 60_000);

  // client.ts pullAll: only CURSOR_EXPIRED restarts the pull. docs/protocol.md (Cursors): a
  // cursor ahead of the server (its data was reset) answers INVALID_CURSOR, and "the client
  // then starts over: it discards its synced state and pulls from the empty cursor". The
  // client instead fails every sync round from then on, and never converges again.
  it('after the server lost its data (INVALID_CURSOR), the client starts over and converges', async () => {
    server = await startTestServer();
    const url = server.url;
    const a = await open({ url, clientId: 'a' });
    for (let i = 0; i < 3; i++) a.insert('todos', `old-${i}`, { title: 'before the reset', owner: 'u1' });
    await a.sync();
    await server.close();
    server = await startTestServer({ port: Number(new URL(url).port) }); // a fresh data dir
    const b = await open({ url, clientId: 'b' });
    b.insert('todos', 'new', { title: 'after the reset', owner: 'u1' });
    await b.sync();
    await a.sync().catch(() => undefined);
    await expect(a.sync()).resolves.toBeDefined(); // was: rejects with INVALID_CURSOR, every round
    expect(a.db.prepare('SELECT id FROM todos ORDER BY id').pluck().all()).toEqual(['new']);
  });

  // local-store.ts migrate/backfill: an app that passes its bundled (older) schema on every
  // open migrates the database *down* (registry and stored schema go back to v1). Pulled
  // values of the v2 column then land inline in the state text only (the app column is not
  // in the v1 AppTable), and the automatic refreshSchema that follows finds every column
  // already there (moved = false), so backfill never runs: the app column keeps its old
  // value for good, and the next local merge even takes the stale app value as the truth.
  it('reopening with an older bundled schema does not leave an app column stale after the next migration', async () => {
    const V2 = {
      version: 2,
      tables: [{ name: 'todos', columns: [...(TODO_SCHEMA.tables[0]?.columns ?? []), { name: 'priority', type: 'integer' as const }] }],
    };
    server = await startTestServer({ schema: V2 });
    const database = join(tempDir(), 'bundled.db');
    let a = await open({ url: server.url, clientId: 'a', database, schema: TODO_SCHEMA });
    const w = await open({ url: server.url, clientId: 'w', schema: V2 });
    w.insert('todos', 't1', { title: 'x', priority: 1 });
    await w.sync();
    await a.sync(); // pulls t1, notices v2, migrates
    expect(a.db.prepare('SELECT priority FROM todos').pluck().get()).toBe(1);
    await a.close();
    clients.splice(clients.indexOf(a), 1);

    a = await open({ url: server.url, clientId: 'a', database, schema: TODO_SCHEMA }); // the app's bundled schema
    w.update('todos', 't1', { priority: 2 });
    await w.sync();
    await a.sync();
    expect(a.store.registry.version).toBe(2);
    expect(a.db.prepare('SELECT priority FROM todos').pluck().get()).toBe(2);
  });

  // core/engine/checkpoints.ts chunk: with sync rules, rows that are not live are left out of
  // the chunk (visibleValues === null), so a client loading a checkpoint never learns a
  // row's tombstone. A pull from the start would have sent the delete (was && !is && delete).
  // A write the user makes while the checkpoint loads (it is in the outbox, so resetSynced
  // applies it again) then merges against nothing: here a re-insert older than the delete
  // shows the row live on this client for good, while the server and every other client
  // hold it deleted (the server accepts the insert, which stays dead, and pull sends nothing).
  it('a write made while a checkpoint loads does not revive a row the server holds deleted', async () => {
    const rules = { buckets: [{ name: 'own', tables: { todos: [{ column: 'owner', op: 'eq' as const, value: { claim: 'sub' } }] } }] };
    server = await startTestServer({ lake: {}, rules });
    const a = await open({ url: server.url, clientId: 'a' }, 'alice');
    a.insert('todos', 'r', { title: 'first', owner: 'alice' });
    await a.sync();
    // Another device of alice's, its clock 30 s ahead: deletes the row, then edits it (values after the delete).
    const d = await open({ url: server.url, clientId: 'd', wallClock: () => Date.now() + 30_000 }, 'alice');
    await d.sync();
    d.delete('todos', 'r');
    d.update('todos', 'r', { title: 'edited after the delete', owner: 'alice' });
    await d.sync();
    expect((await adminFlush(server.url)).checkpoint).not.toBeNull();

    const user: { client?: LakeSyncClient } = {};
    let typed = false;
    const userTypesDuringSync: typeof fetch = (input, init) => {
      if (!typed && String(input).endsWith('/v1/checkpoint')) {
        typed = true;
        user.client?.insert('todos', 'r', { title: 'again', owner: 'alice' });
      }
      return fetch(input, init);
    };
    const c = (user.client = await open({ url: server.url, clientId: 'c', fetch: userTypesDuringSync }, 'alice'));
    await c.sync();
    await c.sync();
    expect(typed).toBe(true);
    // The server accepted the insert (not a refused delta left applied): nothing pending, nothing set aside.
    expect(c.store.pendingCount()).toBe(0);
    expect(c.db.prepare('SELECT count(*) FROM _lakesync_rejected').pluck().get()).toBe(0);
    await a.sync();
    expect(row(a, 'r')).toBeUndefined();
    expect(row(c, 'r')).toEqual(row(a, 'r'));
  }, 60_000);

  // client.ts loadCheckpoint: a load cut short keeps its chunks (checkpoint_progress) to be
  // resumed. If the server then answers NO_CHECKPOINT (it lost its data, like INVALID_CURSOR
  // but before the client had a cursor), the client pulls from the start on top of the
  // half-loaded rows: rows the server no longer has stay shown for good.
  it('a checkpoint load cut short, then a server with no checkpoint: the half-loaded rows do not stay', async () => {
    const schema = { version: 1, tables: [TODO_SCHEMA.tables[0] as (typeof TODO_SCHEMA.tables)[number], { name: 'notes', columns: [{ name: 'body', type: 'string' as const }] }] };
    server = await startTestServer({ schema, lake: {} });
    const url = server.url;
    const a = await open({ url, clientId: 'a', schema });
    a.insert('todos', 'gone', { title: 'before the reset', owner: 'u1' });
    a.insert('notes', 'gone-too', { body: 'before the reset' });
    await a.sync();
    expect((await adminFlush(url)).checkpoint).not.toBeNull();
    const cut: typeof fetch = (input, init) =>
      /\/v1\/checkpoint\/[^/]+\/1$/.test(String(input)) ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init);
    const database = join(tempDir(), 'b.db');
    const b = await open({ url, clientId: 'b', schema, database, fetch: cut });
    await expect(b.sync()).rejects.toThrow();
    const shown = (c: LakeSyncClient): number => c.db.prepare('SELECT (SELECT count(*) FROM todos) + (SELECT count(*) FROM notes)').pluck().get() as number;
    expect(shown(b)).toBe(1); // one chunk of two
    await b.close();
    await server.close();
    server = await startTestServer({ schema, port: Number(new URL(url).port) }); // a fresh data dir, no lake
    const b2 = await open({ url, clientId: 'b', schema, database });
    await b2.sync();
    expect(shown(b2)).toBe(0);
  });
});
