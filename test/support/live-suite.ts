import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LakeSyncClient, type ClientEvent } from '../../clients/node/index.ts';
import { LIVE_PROTOCOL, clientProtocols } from '../../core/live/protocol.ts';
import type { SyncRules } from '../../core/rules.ts';
import { TODO_SCHEMA, tokenFor } from './server.ts';

/** The rules every target of the suite runs with: a user sees the todos it owns. */
export const LIVE_RULES: SyncRules = { buckets: [{ name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }] };

/**
 * The live-updates protocol (docs/protocol.md, "Live updates"), one suite
 * for every runtime: the local server and the AWS functions run it, so a
 * behaviour that differs between them fails here.
 */
export interface LiveTarget {
  // Its gateway runs with LIVE_RULES.
  /** The gateway's base URL (HTTP). */
  readonly url: string;
  /** The live WebSocket URL. */
  readonly liveUrl: string;
  /** What the runtime does between a push and its pokes (AWS: the stream delivers the new log items to the live function). */
  afterPush(): Promise<void>;
  /** Open connections the runtime keeps (the hub's size, or the connection items). */
  connections(): Promise<number>;
}

const HOUR = 3_600_000;

export function nextEvent(c: LakeSyncClient, pick: (e: ClientEvent) => boolean): Promise<ClientEvent> {
  return new Promise((resolve) => {
    const off = c.on((e) => {
      if (pick(e)) {
        off();
        resolve(e);
      }
    });
  });
}

/** Open a raw socket; resolves with it once open, or with the HTTP status the server refused the handshake with. */
export function connect(url: string, protocols: string[]): Promise<{ ws: WebSocket } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (e) => reject(e));
  });
}

export async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}

export function liveProtocolSuite(name: string, target: () => LiveTarget): void {
  describe(`live updates protocol (${name})`, () => {
    const open = async (url: string, clientId: string, live: string | null, user = 'u1'): Promise<LakeSyncClient> =>
      LakeSyncClient.open({
        url,
        database: ':memory:',
        schema: TODO_SCHEMA,
        clientId,
        initialSync: 'pull',
        intervalMs: HOUR,
        getToken: ({ clientId: id }) => tokenFor(user, id),
        ...(live !== null ? { live: { url: live, WebSocket } } : {}),
      });

    it('a poke makes a live client pull another client’s write long before its next round', async () => {
      const t = target();
      const b = await open(t.url, 'live-b', t.liveUrl);
      const a = await open(t.url, 'live-a', null);
      try {
        const connected = nextEvent(b, (e) => e.type === 'status' && e.status.live);
        b.start();
        await connected;
        // The round after connecting is done; the next one is an hour away.
        await until(async () => b.getStatus().state === 'idle');
        expect(await t.connections()).toBe(1);
        const changed = nextEvent(b, (e) => e.type === 'change');
        a.insert('todos', 't1', { title: `from a (${name})`, done: false, owner: 'u1' });
        await a.sync();
        await t.afterPush();
        expect(await changed).toEqual({ type: 'change', tables: ['todos'] });
        expect(b.db.prepare('SELECT id, title FROM todos').all()).toEqual([{ id: 't1', title: `from a (${name})` }]);
        await b.stop();
        expect(b.getStatus().live).toBe(false);
        await until(async () => (await t.connections()) === 0);
      } finally {
        await b.close();
        await a.close();
      }
    });

    it('a write pokes only the connections whose rules see it (not other users, not the writer)', async () => {
      const t = target();
      const raw = async (user: string, clientId: string): Promise<{ ws: WebSocket; pokes: string[] }> => {
        const r = await connect(t.liveUrl, clientProtocols(await tokenFor(user, clientId)));
        if (!('ws' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
        const pokes: string[] = [];
        r.ws.on('message', (d) => pokes.push(d.toString()));
        return { ws: r.ws, pokes };
      };
      const sameUser = await raw('u1', 'aud-u1-other');
      const otherUser = await raw('u2', 'aud-u2');
      const writerSocket = await raw('u1', 'aud-writer');
      const writer = await open(t.url, 'aud-writer', null);
      try {
        await until(async () => (await t.connections()) === 3);
        writer.insert('todos', `aud-${name}`, { title: 'mine', owner: 'u1' });
        await writer.sync();
        await t.afterPush();
        await until(async () => sameUser.pokes.length > 0);
        await new Promise((r) => setTimeout(r, 100)); // pokes to the others would have arrived by now
        expect(sameUser.pokes).toEqual(['{"type":"poke"}']);
        expect(otherUser.pokes).toEqual([]);
        expect(writerSocket.pokes).toEqual([]);
      } finally {
        for (const s of [sameUser, otherUser, writerSocket]) s.ws.close();
        await writer.close();
        await until(async () => (await t.connections()) === 0);
      }
    });

    it('refuses a handshake without a token or with a forged one (401), keeping nothing', async () => {
      const t = target();
      expect(await connect(t.liveUrl, [LIVE_PROTOCOL])).toMatchObject({ status: 401 });
      expect(await connect(t.liveUrl, clientProtocols('eyJhbGciOiJIUzI1NiJ9.e30.forged'))).toMatchObject({ status: 401 });
      // A token without the protocol is not a live handshake either.
      expect(await connect(t.liveUrl, [`bearer.${await tokenFor('u1', 'c')}`])).toMatchObject({ status: 401 });
      expect(await t.connections()).toBe(0);
    });

    it('selects lakesync.v1 and answers a ping with a pong', async () => {
      const t = target();
      const r = await connect(t.liveUrl, clientProtocols(await tokenFor('u1', 'p')));
      if (!('ws' in r)) throw new Error(`refused: ${r.status} ${r.body}`);
      expect(r.ws.protocol).toBe(LIVE_PROTOCOL);
      const pong = new Promise<string>((resolve) => r.ws.once('message', (d) => resolve(d.toString())));
      r.ws.send('{"type":"ping"}');
      expect(JSON.parse(await pong)).toEqual({ type: 'pong' });
      r.ws.close();
      await until(async () => (await t.connections()) === 0);
    });
  });
}
