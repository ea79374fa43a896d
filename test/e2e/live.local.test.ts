/**
 * Live updates on the local server: a client whose background loop would
 * not pull for an hour gets another client's write because the server pokes
 * it over /v1/live. And the handshake's refusals, token expiry, ping and
 * shutdown.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LakeSyncClient, type ClientOptions } from '../../clients/node/index.ts';
import { CLOSE_GOING_AWAY, CLOSE_TOKEN_EXPIRED, LIVE_PROTOCOL, clientProtocols } from '../../core/index.ts';
import { LIVE_RULES, connect, liveProtocolSuite, nextEvent } from '../support/live-suite.ts';
import { startTestServer, tokenFor, TODO_SCHEMA, type TestServer } from '../support/server.ts';

const HOUR = 3_600_000;

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

let shared: TestServer;
beforeAll(async () => {
  shared = await startTestServer({ rules: LIVE_RULES });
});
afterAll(() => shared.close());

// Pokes follow pushes directly: nothing to run in between.
liveProtocolSuite('local server', () => ({
  url: shared.url,
  liveUrl: `${shared.url.replace('http', 'ws')}/v1/live`,
  afterPush: () => Promise.resolve(),
  connections: () => Promise.resolve(shared.liveConnections()),
}));

describe('live updates (local server)', () => {
  let server: TestServer | undefined;
  const clients: LakeSyncClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
    await server?.close();
    server = undefined;
  });

  async function open(options: Partial<ClientOptions> & { url: string; clientId: string }): Promise<LakeSyncClient> {
    const c = await LakeSyncClient.open({ database: ':memory:', schema: TODO_SCHEMA, getToken: ({ clientId }) => tokenFor('u1', clientId), ...options });
    clients.push(c);
    return c;
  }

  it('without the live option nothing changes: the client pulls at its next round only', async () => {
    server = await startTestServer();
    const b = await open({ url: server.url, clientId: 'b', intervalMs: HOUR });
    b.start();
    await nextEvent(b, (e) => e.type === 'status' && e.status.state === 'idle');
    const a = await open({ url: server.url, clientId: 'a' });
    a.insert('todos', 't1', { title: 'from a', done: false });
    await a.sync();
    await new Promise((r) => setTimeout(r, 300));
    expect(b.db.prepare('SELECT id FROM todos').all()).toEqual([]);
    expect(b.getStatus().live).toBe(false);
  });

  it('a poke during a sync the app started itself is not lost: the loop syncs again after it', async () => {
    server = await startTestServer();
    // b's pulls can be held after the server answered them: the poke then lands between that pull and the end of its sync.
    let hold: Promise<void> | null = null;
    const slowFetch: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (hold !== null && String(input).includes('/v1/pull')) await hold;
      return res;
    };
    const b = await open({ url: server.url, clientId: 'b', intervalMs: HOUR, live: { WebSocket }, fetch: slowFetch });
    const connected = nextEvent(b, (e) => e.type === 'status' && e.status.live);
    b.start();
    await connected;
    await new Promise((r) => setTimeout(r, 100)); // the round after connecting is done too
    while (b.getStatus().state !== 'idle') await new Promise((r) => setTimeout(r, 10));
    let release: () => void = () => undefined;
    hold = new Promise<void>((r) => (release = r));
    const manual = b.sync(); // the app syncs, e.g. right after a write of its own
    await new Promise((r) => setTimeout(r, 50)); // its pull has been answered: nothing new
    const a = await open({ url: server.url, clientId: 'a' });
    a.insert('todos', 't1', { title: 'during b sync', done: false });
    await a.sync(); // pokes b while b's sync is still under way
    await new Promise((r) => setTimeout(r, 50));
    hold = null;
    release();
    await manual;
    const deadline = Date.now() + 2000;
    while (b.db.prepare('SELECT id FROM todos').all().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(b.db.prepare('SELECT id FROM todos').all()).toEqual([{ id: 't1' }]);
  });

  it('start() refusing live without a WebSocket leaves no loop running behind the error', async () => {
    server = await startTestServer();
    let fetches = 0;
    const counting: typeof fetch = (input, init) => (fetches++, fetch(input, init));
    const b = await open({ url: server.url, clientId: 'b', initialSync: 'pull', intervalMs: 20, live: { url: 'ws://unused', WebSocket: undefined as never }, fetch: counting });
    const had = (globalThis as { WebSocket?: unknown }).WebSocket;
    delete (globalThis as { WebSocket?: unknown }).WebSocket; // Node 20 has none
    try {
      const before = fetches;
      expect(() => b.start()).toThrow(/live updates need a WebSocket/);
      await new Promise((r) => setTimeout(r, 100));
      expect(fetches).toBe(before);
      expect(b.getStatus().state).not.toBe('syncing');
    } finally {
      if (had !== undefined) (globalThis as { WebSocket?: unknown }).WebSocket = had;
    }
  });

  it('sends the error envelope with a refused handshake, and 404 on another path', async () => {
    server = await startTestServer();
    const live = `${server.url.replace('http', 'ws')}/v1/live`;
    const none = await connect(live, [LIVE_PROTOCOL]);
    expect(JSON.parse((none as { body: string }).body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    const forged = await connect(live, clientProtocols('eyJhbGciOiJIUzI1NiJ9.e30.forged'));
    expect(JSON.parse((forged as { body: string }).body).error.code).toMatch(/^TOKEN_/);

    const token = await tokenFor('u1', 'c');
    const elsewhere = await connect(`${server.url.replace('http', 'ws')}/v1/pull`, clientProtocols(token));
    expect(elsewhere).toMatchObject({ status: 404 });
    expect(JSON.parse((elsewhere as { body: string }).body)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('closes the connection when its token expires (4001)', async () => {
    server = await startTestServer();
    const live = `${server.url.replace('http', 'ws')}/v1/live`;
    const token = await tokenFor('u1', 'c', { expiresIn: '1s' });
    const r = await connect(live, clientProtocols(token));
    if (!('ws' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
    expect(await closed(r.ws)).toEqual({ code: CLOSE_TOKEN_EXPIRED, reason: 'token expired' });
  });

  it('a client whose token expired reconnects with a fresh one', async () => {
    server = await startTestServer();
    const calls: boolean[] = [];
    const b = await open({
      url: server.url,
      clientId: 'b',
      intervalMs: HOUR,
      backoff: { baseMs: 10, maxMs: 50 },
      live: { WebSocket },
      getToken: ({ clientId, forceRefresh }) => {
        calls.push(forceRefresh);
        // The first token expires in a second; refreshed ones last an hour.
        return tokenFor('u1', clientId, { expiresIn: calls.length === 1 ? '1s' : '1h' });
      },
    });
    // Count openings: transitions of status.live to true.
    let opened = 0;
    let was = false;
    const twice = new Promise<void>((resolve) =>
      b.on((e) => {
        if (e.type !== 'status') return;
        if (e.status.live && !was && ++opened === 2) resolve();
        was = e.status.live;
      }),
    );
    b.start();
    await twice;
    expect(calls).toContain(true);
    // And it is still poked.
    const a = await open({ url: server.url, clientId: 'a' });
    const changed = nextEvent(b, (e) => e.type === 'change');
    a.insert('todos', 't2', { title: 'after reconnect', done: true });
    await a.sync();
    await changed;
    expect(b.db.prepare('SELECT id FROM todos').all()).toEqual([{ id: 't2' }]);
  });

  it('refuses connections over LAKESYNC_LIVE_MAX_CONNECTIONS with 503 TOO_MANY_CONNECTIONS, and takes one again after a close', async () => {
    server = await startTestServer({ liveMaxConnections: 1 });
    const live = `${server.url.replace('http', 'ws')}/v1/live`;
    const token = await tokenFor('u1', 'c');
    const first = await connect(live, clientProtocols(token));
    if (!('ws' in first)) throw new Error('refused');
    const second = await connect(live, clientProtocols(token));
    expect(second).toMatchObject({ status: 503 });
    expect(JSON.parse((second as { body: string }).body)).toMatchObject({ error: { code: 'TOO_MANY_CONNECTIONS' } });
    const gone = closed(first.ws);
    first.ws.close();
    await gone;
    while (server.liveConnections() > 0) await new Promise((r) => setTimeout(r, 10));
    const third = await connect(live, clientProtocols(token));
    expect('ws' in third).toBe(true);
    if ('ws' in third) third.ws.close();
  });

  it('server shutdown closes live connections (going away) and does not hang', async () => {
    server = await startTestServer();
    const token = await tokenFor('u1', 'c');
    const r = await connect(`${server.url.replace('http', 'ws')}/v1/live`, clientProtocols(token));
    if (!('ws' in r)) throw new Error('refused');
    const gone = closed(r.ws);
    await server.close();
    server = undefined;
    expect((await gone).code).toBe(CLOSE_GOING_AWAY);
  });
});
