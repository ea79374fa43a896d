import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { SyncRules } from '../../core/rules.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

/**
 * Real clients against the local server with its lake and sync rules:
 * random writes (rows moved between owners by an admin, deletes, edits by
 * their owner), flushes that checkpoint and trim everything, alice's
 * clients offline for a while (their cursors expire) and new ones joining
 * (they load a checkpoint). After each round every alice client shows
 * exactly the rows the admin sees with owner alice.
 */
const RULES: SyncRules = { buckets: [{ name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }] };

const clients: LakeSyncClient[] = [];
let server: TestServer | undefined;
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function open(url: string, clientId: string, sub: string, extra: Record<string, unknown> = {}): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({ url, database: ':memory:', clientId, schema: TODO_SCHEMA, getToken: ({ clientId: id }) => tokenFor(sub, id, extra) });
  clients.push(c);
  return c;
}

const rows = (c: LakeSyncClient, where = ''): unknown[] => c.db.prepare(`SELECT id, title, owner FROM todos ${where} ORDER BY id`).all();

describe('initial sync with real clients', () => {
  for (const seed of [11, 14, 15]) {
    it(`seed ${seed}: alice's clients converge on alice's rows through checkpoints, expired cursors and rows changing owner`, async () => {
      const s = (server = await startTestServer({ lake: {}, rules: RULES }));
      const r = rng(seed);
      const admin = await open(s.url, 'admin', 'admin', { role: 'admin' });
      const alices = [await open(s.url, 'alice-0', 'alice')];
      const online = new Set<LakeSyncClient>(alices);
      for (let step = 0; step < 25; step++) {
        for (let i = 0; i < 1 + Math.floor(r() * 4); i++) {
          const id = `t${Math.floor(r() * 10)}`;
          const x = r();
          if (x < 0.35) admin.insert('todos', id, { title: `a${step}`, owner: r() < 0.6 ? 'alice' : 'bob' });
          else if (x < 0.5) admin.delete('todos', id);
          else if (x < 0.7) admin.update('todos', id, { owner: r() < 0.5 ? 'alice' : 'bob' });
          else {
            // An alice client edits one of the rows it shows (even offline).
            const c = alices[Math.floor(r() * alices.length)] as LakeSyncClient;
            const mine = rows(c) as { id: string }[];
            const pick = mine[Math.floor(r() * mine.length)];
            const y = r();
            if (y < 0.25) c.insert('todos', id, { title: `i${step}`, owner: 'alice' });
            else if (pick !== undefined && y < 0.4) c.delete('todos', pick.id);
            else if (pick !== undefined) c.update('todos', pick.id, { title: `e${step}` });
          }
        }
        await admin.sync();
        if (r() < 0.4) await adminFlush(s.url);
        if (r() < 0.25) {
          const c = await open(s.url, `alice-${alices.length}`, 'alice');
          alices.push(c);
          online.add(c);
        }
        for (const c of alices) {
          if (r() < 0.2) online.delete(c);
          else if (r() < 0.5) online.add(c);
        }
        for (const c of online) await c.sync();
        await admin.sync();
        for (const c of online) await c.sync();
        await admin.sync();
        for (const c of online) expect(rows(c), `${c.clientId} at step ${step}`).toEqual(rows(admin, "WHERE owner = 'alice'"));
      }
      for (const c of alices) await c.sync();
      await admin.sync();
      for (const c of alices) await c.sync();
      for (const c of alices) expect(rows(c), c.clientId).toEqual(rows(admin, "WHERE owner = 'alice'"));
    });
  }
});
