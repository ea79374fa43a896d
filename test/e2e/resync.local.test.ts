import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { SyncRules } from '../../core/rules.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tempDir, tokenFor, type TestServer } from '../support/server.ts';

/**
 * docs/protocol.md: rules and claims are evaluated at pull time; a client
 * whose view changes (new claims, new rules) must resync from the empty
 * cursor. LakeSyncClient.resync() does that, keeping unpushed writes.
 */
const RULES: SyncRules = { buckets: [{ name: 'team', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'team' } }] } }] };

let server: TestServer | undefined;
const clients: LakeSyncClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

async function open(url: string, clientId: string, team: string, database = ':memory:'): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({ url, database, clientId, schema: TODO_SCHEMA, getToken: ({ clientId: id }) => tokenFor(`user-${clientId}`, id, { team }) });
  clients.push(c);
  return c;
}

/** A writer per team, each with one synced row: r1 (red) and b1 (blue). */
async function twoTeams(url: string): Promise<{ red: LakeSyncClient; blue: LakeSyncClient }> {
  const red = await open(url, 'red-writer', 'red');
  const blue = await open(url, 'blue-writer', 'blue');
  red.insert('todos', 'r1', { title: 'red one', owner: 'red' });
  blue.insert('todos', 'b1', { title: 'blue one', owner: 'blue' });
  await red.sync();
  await blue.sync();
  return { red, blue };
}

const ids = (c: LakeSyncClient): string[] => (c.db.prepare('SELECT id FROM todos ORDER BY id').pluck().all() as string[]);

describe('resync after the client\'s view changed', () => {
  it('a client whose team claim changed shows the new team\'s rows after resync(), keeping its unpushed write', async () => {
    const s = (server = await startTestServer({ rules: RULES, lake: {} }));
    const { blue } = await twoTeams(s.url);

    const database = join(tempDir(), 'mover.db');
    const mover = await open(s.url, 'mover', 'red', database);
    await mover.sync();
    expect(ids(mover)).toEqual(['r1']);
    await mover.close();
    clients.splice(clients.indexOf(mover), 1);

    // The user moves to the blue team: the app restarts with tokens carrying the new claim.
    const moved = await open(s.url, 'mover', 'blue', database);
    await moved.sync();
    expect(ids(moved)).toEqual(['r1']); // pulls do not replay what the new view would have sent
    moved.insert('todos', 'b2', { title: 'offline, not pushed yet', owner: 'blue' });
    const report = await moved.resync();
    expect(report.pushed).toBe(1);
    expect(ids(moved)).toEqual(['b1', 'b2']);
    await blue.sync();
    expect(ids(blue)).toEqual(['b1', 'b2']);
  });
});

describe('resync() races and tokens (review)', () => {
  // client.ts resync / transport.ts currentToken: the transport keeps the token it last got
  // and asks the provider again only after a 401. A user whose claims changed while the app
  // ran calls resync() as told, but the reload is served under the old token: the client
  // shows the old team's rows again.
  it('resync() asks the token provider again: a claim changed while the app runs takes effect', async () => {
    const s = (server = await startTestServer({ rules: RULES, lake: {} }));
    await twoTeams(s.url);

    let team = 'red';
    const forced: boolean[] = [];
    const mover = await LakeSyncClient.open({
      url: s.url,
      database: ':memory:',
      clientId: 'mover',
      schema: TODO_SCHEMA,
      getToken: ({ clientId, forceRefresh }) => {
        forced.push(forceRefresh);
        return tokenFor('user-mover', clientId, { team });
      },
    });
    clients.push(mover);
    await mover.sync();
    expect(ids(mover)).toEqual(['r1']);
    team = 'blue';
    await mover.resync();
    expect(ids(mover)).toEqual(['b1']);
    expect(forced.at(-1)).toBe(true);
  });

  // client.ts resync / stop: close() waits for the round under way when it is called. A
  // resync() waiting for that same round starts its own right after it, before close()
  // resumes; close() then shuts the database under the new round, whose push answer lands
  // on a closed database ("The database connection is not open"), and resync() rejects.
  it('close() during a resync() that waits for a round lets the resync round finish first', async () => {
    const s = (server = await startTestServer({ lake: {} }));
    const slow: typeof fetch = async (input, init) => {
      await new Promise((r) => setTimeout(r, 100));
      return fetch(input, init);
    };
    const c = await LakeSyncClient.open({ url: s.url, database: ':memory:', clientId: 'closer', schema: TODO_SCHEMA, fetch: slow, getToken: ({ clientId }) => tokenFor('u', clientId) });
    c.insert('todos', 'a', { title: 'first' });
    const first = c.sync();
    c.insert('todos', 'b', { title: 'second' });
    const again = c.resync();
    const closed = c.close();
    await first;
    await expect(again).resolves.toMatchObject({ rejected: 0 });
    await closed;
    expect(c.db.open).toBe(false);
  });

  // client.ts resync / live.ts: the live connection keeps the claims of the token it was
  // opened with, and the server pokes by those. After resync() under new claims the socket
  // still has the old ones: writes in the new view poke nobody, and a client on a long
  // interval sees them only at its next round.
  it('after resync() the live connection is opened again with the new claims, so writes in the new view poke it', async () => {
    const s = (server = await startTestServer({ rules: RULES }));
    const blue = await open(s.url, 'blue-writer', 'blue');
    let team = 'red';
    const mover = await LakeSyncClient.open({
      url: s.url,
      database: ':memory:',
      clientId: 'mover',
      schema: TODO_SCHEMA,
      intervalMs: 3_600_000,
      live: { WebSocket },
      getToken: ({ clientId }) => tokenFor('user-mover', clientId, { team }),
    });
    clients.push(mover);
    const waitFor = async (check: () => boolean): Promise<void> => {
      const deadline = Date.now() + 2000;
      while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    mover.start();
    await waitFor(() => mover.getStatus().live && mover.getStatus().state === 'idle');
    team = 'blue';
    await mover.resync();
    await waitFor(() => mover.getStatus().live && mover.getStatus().state === 'idle');
    await new Promise((r) => setTimeout(r, 100));
    blue.insert('todos', 'b9', { title: 'after the move', owner: 'blue' });
    await blue.sync();
    await waitFor(() => ids(mover).includes('b9'));
    expect(ids(mover)).toEqual(['b9']);
  });

  it('a resync() that failed offline is done by the next round after a restart, the offline write kept', async () => {
    const s = (server = await startTestServer({ rules: RULES, lake: {} }));
    await twoTeams(s.url);
    const database = join(tempDir(), 'mover.db');
    let offline = false;
    const flaky: typeof fetch = (input, init) => (offline ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init));
    let team = 'red';
    const mover = await LakeSyncClient.open({ url: s.url, database, clientId: 'mover', schema: TODO_SCHEMA, fetch: flaky, getToken: ({ clientId }) => tokenFor('user-mover', clientId, { team }) });
    await mover.sync();
    expect(ids(mover)).toEqual(['r1']);
    offline = true;
    team = 'blue';
    mover.insert('todos', 'w', { title: 'offline', owner: 'blue' });
    await expect(mover.resync()).rejects.toThrow();
    expect(ids(mover)).toEqual(['r1', 'w']);
    await mover.close();
    const back = await open(s.url, 'mover', 'blue', database);
    await back.sync();
    expect(ids(back)).toEqual(['b1', 'w']);
    expect(back.store.pendingCount()).toBe(0);
  });

  // client.ts syncOnce / pullAll / loadCheckpoint: resetSynced deletes the pulled rows but no
  // 'change' event says so; only tables that a checkpoint lists or a pulled page touches are
  // announced. A server without a lake and a new view with no rows: the app is never told
  // that its rows went, and a UI that re-reads on 'change' keeps showing them.
  it('the rows a resync() drops are announced with a change event, also when nothing replaces them', async () => {
    const s = (server = await startTestServer({ rules: RULES }));
    const red = await open(s.url, 'red-writer', 'red');
    red.insert('todos', 'r1', { title: 'red one', owner: 'red' });
    await red.sync();
    let team = 'red';
    const mover = await LakeSyncClient.open({ url: s.url, database: ':memory:', clientId: 'mover', schema: TODO_SCHEMA, getToken: ({ clientId }) => tokenFor('user-mover', clientId, { team }) });
    clients.push(mover);
    await mover.sync();
    expect(ids(mover)).toEqual(['r1']);
    const changed: string[] = [];
    mover.on((e) => {
      if (e.type === 'change') changed.push(...e.tables);
    });
    team = 'green';
    await mover.resync();
    expect(ids(mover)).toEqual([]);
    expect(changed).toContain('todos');
  });

  // client.ts resync: with no round under way it still awaited (a microtask) before starting
  // its own, and a close() called right after it found nothing running and shut the database
  // under the round resync() then started.
  it('close() right after a resync() with no round under way waits for the resync round', async () => {
    const s = (server = await startTestServer({ lake: {} }));
    const c = await LakeSyncClient.open({ url: s.url, database: ':memory:', clientId: 'closer2', schema: TODO_SCHEMA, getToken: ({ clientId }) => tokenFor('u', clientId) });
    c.insert('todos', 'a', { title: 'first' });
    const again = c.resync();
    const closed = c.close();
    await expect(again).resolves.toMatchObject({ pushed: 1 });
    await closed;
    expect(c.db.open).toBe(false);
  });

  it('a resync() requested while the first checkpoint loads ends with the new view only', async () => {
    const s = (server = await startTestServer({ rules: RULES, lake: {} }));
    await twoTeams(s.url);
    expect((await adminFlush(s.url)).checkpoint).not.toBeNull();
    let team = 'red';
    let hold: Promise<void> | null = new Promise<void>((r) => setTimeout(r, 300));
    const slow: typeof fetch = async (input, init) => {
      if (hold !== null && /\/v1\/checkpoint\//.test(String(input))) await hold; // the chunk request is made under the red token
      return fetch(input, init);
    };
    const mover = await LakeSyncClient.open({ url: s.url, database: ':memory:', clientId: 'mover', schema: TODO_SCHEMA, fetch: slow, getToken: ({ clientId }) => tokenFor('user-mover', clientId, { team }) });
    clients.push(mover);
    const first = mover.sync();
    await new Promise((r) => setTimeout(r, 100));
    team = 'blue';
    const again = mover.resync();
    await first;
    hold = null;
    await again;
    expect(ids(mover)).toEqual(['b1']);
  });
});
