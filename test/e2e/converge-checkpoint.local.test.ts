import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { SyncRules } from '../../core/index.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tokenFor } from '../support/server.ts';

/**
 * Clients with sync rules on the local server with its lake: flushes build
 * checkpoints and trim the buffer, so clients that join (or fall behind)
 * load a checkpoint, with unpushed writes, then pull. Every client ends
 * with exactly the server rows its rules select.
 */
const RULES: SyncRules = {
  buckets: [
    { name: 'mine', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } },
    { name: 'public', tables: { todos: [{ column: 'owner', op: 'eq', value: 'public' }] } },
  ],
};
const USERS = ['alice', 'alice', 'bob'] as const;
const ROWS = ['r0', 'r1', 'r2'];

type Step =
  | { kind: 'write'; client: number; op: 'insert' | 'update' | 'delete'; row: string; title: string | null; owner: string | undefined }
  | { kind: 'sync'; client: number }
  | { kind: 'lose'; client: number; nth: number }
  | { kind: 'flush' }
  | { kind: 'join'; client: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      client: fc.nat({ max: USERS.length - 1 }),
      op: fc.constantFrom('insert' as const, 'update' as const, 'delete' as const),
      row: fc.constantFrom(...ROWS),
      title: fc.constantFrom('x', 'y', null),
      owner: fc.constantFrom('me', 'me', 'public', 'alice', 'bob', undefined),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), client: fc.nat({ max: USERS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  // A sync whose request number nth is done by the server but its answer lost.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose' as const), client: fc.nat({ max: USERS.length - 1 }), nth: fc.nat({ max: 4 }) }) },
  // A new install of this user (the old one's unpushed writes are gone with it).
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const), client: fc.nat({ max: USERS.length - 1 }) }) },
);

describe('clients, checkpoints and sync rules converge (property)', () => {
  it('every client, including ones that start from a checkpoint, ends with exactly the server rows its rules select', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 10, maxLength: 40, size: 'max' }), async (steps) => {
        const server = await startTestServer({ lake: {}, rules: RULES });
        const clients: LakeSyncClient[] = [];
        let installs = 0;
        const lose = USERS.map(() => -1);
        const fetchFor =
          (i: number): typeof fetch =>
          async (input, init) => {
            const res = await fetch(input, init);
            const body = await res.arrayBuffer();
            const n = lose[i] as number;
            if (n !== -1) lose[i] = n - 1;
            if (n === 0) throw new TypeError('connection lost before the answer');
            return new Response(body, { status: res.status, headers: res.headers });
          };
        const open = (i: number): Promise<LakeSyncClient> =>
          LakeSyncClient.open({
            url: server.url,
            database: ':memory:',
            clientId: `c${i}-${installs++}`,
            schema: TODO_SCHEMA,
            pullLimit: 3,
            fetch: fetchFor(i),
            getToken: ({ clientId }) => tokenFor(USERS[i]!, clientId),
          });
        try {
          for (let i = 0; i < USERS.length; i++) clients.push(await open(i));
          for (const s of steps) {
            if (s.kind === 'flush') await adminFlush(server.url);
            else if (s.kind === 'sync') await clients[s.client]!.sync();
            else if (s.kind === 'lose') {
              lose[s.client] = s.nth;
              await clients[s.client]!.sync().catch(() => undefined);
              lose[s.client] = -1;
            }
            else if (s.kind === 'join') {
              await clients[s.client]!.close();
              clients[s.client] = await open(s.client);
            } else {
              const c = clients[s.client]!;
              const values: Record<string, unknown> = { title: s.title };
              if (s.owner !== undefined) values['owner'] = s.owner === 'me' ? USERS[s.client] : s.owner;
              if (s.op === 'delete') c.delete('todos', s.row);
              else if (s.op === 'insert') c.insert('todos', s.row, values);
              else c.update('todos', s.row, values);
            }
          }
          for (let round = 0; round < 3; round++) for (const c of clients) await c.sync();
          // The truth: each row as an admin reads it.
          const admin = await tokenFor('ops', 'ops-1', { role: 'admin' });
          const truth = new Map<string, Record<string, unknown>>();
          for (const id of ROWS) {
            const res = await fetch(`${server.url}/v1/rows/todos/${id}`, { headers: { authorization: `Bearer ${admin}`, accept: 'application/json' } });
            if (res.status === 200) truth.set(id, (await res.json()) as Record<string, unknown>);
          }
          for (let i = 0; i < USERS.length; i++) {
            const c = clients[i]!;
            expect(c.store.pendingCount()).toBe(0);
            const want = ROWS.flatMap((id) => {
              const v = truth.get(id);
              const values = (v?.['values'] ?? v) as Record<string, unknown> | undefined;
              if (values === undefined || (values['owner'] !== USERS[i] && values['owner'] !== 'public')) return [];
              return [{ id, title: values['title'] ?? null, owner: values['owner'] ?? null }];
            });
            expect(c.db.prepare('SELECT id, title, owner FROM todos ORDER BY id').all(), `client ${i}`).toEqual(want);
          }
        } finally {
          for (const c of clients) await c.close().catch(() => undefined);
          await server.close();
        }
      }),
      { numRuns: Number(process.env['RUNS'] ?? 15) },
    );
  }, 300_000);
});
