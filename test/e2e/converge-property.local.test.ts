import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import type { Authenticator, Principal } from '../../core/auth/principal.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { createHttpApp } from '../../core/http/app.ts';
import { HybridLogicalClock, visibleValues, type RowState, type Schema, type SyncRules } from '../../core/index.ts';

/**
 * Several real clients (LocalStore, outbox, push, pull) on one in-process
 * gateway with sync rules, writing offline on shared rows with clocks that
 * tie, then syncing in random order: every client ends with exactly the
 * server's rows its rules select. Covers deletes, explicit nulls, equal-HLC
 * tie-breaks, resurrection, rows moving between users, refused writes.
 */
const SCHEMA: Schema = {
  version: 2,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'owner', type: 'string' },
        { name: 'done', type: 'boolean' },
        { name: 'n', type: 'integer' },
      ],
    },
    { name: 'notes', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }] },
  ],
};
const TABLES = ['todos', 'notes'] as const;
/** The schema some clients start with: no todos.n, no notes (they learn the rest from the server). */
const OLD_SCHEMA: Schema = {
  version: 1,
  tables: [{ name: 'todos', columns: SCHEMA.tables[0]!.columns.filter((c) => c.name !== 'n') }],
};
// Own rows, and everybody's public rows: rows move between users' views.
const RULES: SyncRules = {
  buckets: [
    { name: 'mine', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }], notes: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } },
    { name: 'public', tables: { todos: [{ column: 'owner', op: 'eq', value: 'public' }], notes: [{ column: 'owner', op: 'eq', value: 'public' }] } },
  ],
};
const CLIENTS = [
  { id: 'a1', sub: 'alice' },
  { id: 'a2', sub: 'alice' },
  { id: 'b1', sub: 'bob' },
  { id: 'o1', sub: 'ops' }, // an admin: not bound by write rules, sees every live row
] as const;
const ROWS = ['r0', 'r1', 'r2'];
const T0 = 1_700_000_000_000;
// With 3 shards, todos and notes hash to different shards (core/engine/gateway-shards.test.ts asserts it).

interface World {
  readonly gateway: Gateway;
  readonly shards: BufferShards;
  readonly clients: LakeSyncClient[];
  /** Per client: lose the answer of its request number n from now (the server did the work), or -1. */
  readonly lose: number[];
  reopen(i: number): Promise<void>;
  readonly dir: string;
  now: number;
}

async function world(shardCount: number, skews: readonly number[], old: readonly boolean[]): Promise<World> {
  // With 3 shards, todos and notes live in different ones (a push may span both).
  const shards = new BufferShards(Array.from({ length: shardCount }, () => new MemoryBuffer()));
  const w = { now: T0 } as { now: number };
  const wallClock = (): number => w.now;
  const gateway = new Gateway({ buffer: shards, schema: SCHEMA, rules: RULES, clock: new HybridLogicalClock({ wallClock, maxDriftMs: 60_000 }) });
  // The token is "sub/clientId".
  const auth: Authenticator = {
    authenticate: (header) => {
      const [sub, clientId] = (header ?? '').replace('Bearer ', '').split('/') as [string, string];
      return Promise.resolve({ clientId, userId: sub, claims: { sub }, admin: sub === 'ops' } satisfies Principal);
    },
  };
  const app = createHttpApp({ gateway, auth, tokenCache: false });
  const lose = CLIENTS.map(() => -1);
  const fetchFor =
    (i: number): typeof fetch =>
    async (input, init) => {
      const res = await app.fetch(new Request(input, init));
      const n = lose[i] as number;
      if (n !== -1) lose[i] = n - 1;
      if (n === 0) throw new TypeError('connection lost before the answer');
      return res;
    };
  const dir = mkdtempSync(join(tmpdir(), 'lakesync-converge-'));
  const open = (i: number): Promise<LakeSyncClient> => {
    const c = CLIENTS[i]!;
    return LakeSyncClient.open({
        url: 'http://lakesync.test',
        database: join(dir, `${c.id}.db`),
        clientId: c.id,
        format: i % 2 === 0 ? 'proto' : 'json',
        schema: old[i] === true ? OLD_SCHEMA : SCHEMA,
        initialSync: 'pull',
        pullLimit: 2,
        pushBatch: 3,
        wallClock: () => w.now + (skews[i] ?? 0),
        fetch: fetchFor(i),
        getToken: () => Promise.resolve(`${c.sub}/${c.id}`),
      });
  };
  const clients: LakeSyncClient[] = [];
  for (let i = 0; i < CLIENTS.length; i++) clients.push(await open(i));
  // A restart: the database file is all that survives.
  const reopen = async (i: number): Promise<void> => {
    await clients[i]!.close();
    clients[i] = await open(i);
  };
  return Object.assign(w, { gateway, shards, clients, lose, reopen, dir });
}

type Step =
  | { kind: 'write'; client: number; table: 'todos' | 'notes'; op: 'insert' | 'update' | 'delete'; row: string; values: Record<string, unknown> }
  | { kind: 'sync'; client: number }
  | { kind: 'lose'; client: number; nth: number }
  | { kind: 'restart'; client: number }
  | { kind: 'tick'; ms: number };

const valuesArb = fc
  .record(
    {
      title: fc.option(fc.constantFrom('x', 'y', ''), { nil: null }),
      owner: fc.constantFrom<string | null>('me', 'me', 'me', 'public', 'public', 'alice', 'bob', null),
      done: fc.option(fc.boolean(), { nil: null }),
      n: fc.option(fc.integer({ min: -2, max: 2 }), { nil: null }),
    },
    { requiredKeys: [] },
  )
  .map((v) => v as Record<string, unknown>);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      client: fc.nat({ max: CLIENTS.length - 1 }),
      table: fc.constantFrom(...TABLES, 'todos'),
      op: fc.constantFrom('insert' as const, 'update' as const, 'delete' as const),
      row: fc.constantFrom(...ROWS),
      values: valuesArb,
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), client: fc.nat({ max: CLIENTS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose' as const), client: fc.nat({ max: CLIENTS.length - 1 }), nth: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), client: fc.nat({ max: CLIENTS.length - 1 }) }) },
  // Often 0: writes of different clients in the same millisecond tie on hlc.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(0, 1, 1, 5) }) },
);

function write(client: LakeSyncClient, sub: string, s: Extract<Step, { kind: 'write' }>): void {
  const values = { ...s.values };
  // 'me' is the writer's own user; an insert names an owner most of the time.
  if (values['owner'] === 'me' || (s.op === 'insert' && !('owner' in values) && s.row !== 'r2')) values['owner'] = sub;
  // Only what this client's schema has (an old one learns the rest at its next sync).
  const known = client.store.registry.table(s.table);
  if (known === undefined) return;
  for (const name of Object.keys(values)) if (!known.has(name)) delete values[name];
  if (s.op === 'delete') client.delete(s.table, s.row);
  else if (s.op === 'insert') client.insert(s.table, s.row, values);
  else if (Object.keys(values).length > 0) client.update(s.table, s.row, values);
}

/** The server's rows this user's rules select: app-table values and merge states. */
async function serverView(w: World, sub: string): Promise<{ values: unknown[]; states: RowState[] }> {
  const values: unknown[] = [];
  const states: RowState[] = [];
  for (const table of TABLES) {
    const rows = await w.shards.bufferOf(table).loadRows(ROWS.map((rowId) => ({ table, rowId })));
    rows.forEach((r, i) => {
      const v = r === undefined ? null : visibleValues(r.state);
      if (r === undefined || v === null || (sub !== 'ops' && v['owner'] !== sub && v['owner'] !== 'public')) return;
      const row: Record<string, unknown> = { table, id: ROWS[i], title: v['title'] ?? null, owner: v['owner'] ?? null };
      if (table === 'todos') {
        row['done'] = v['done'] === undefined || v['done'] === null ? null : v['done'] ? 1 : 0;
        row['n'] = v['n'] === undefined || v['n'] === null ? null : Number(v['n']);
      }
      values.push(row);
      states.push(r.state);
    });
  }
  return { values, states };
}

function clientView(c: LakeSyncClient): unknown[] {
  return [
    ...c.db.prepare("SELECT 'todos' AS \"table\", id, title, owner, done, n FROM todos ORDER BY id").all(),
    ...c.db.prepare("SELECT 'notes' AS \"table\", id, title, owner FROM notes ORDER BY id").all(),
  ];
}

describe('clients and server converge (property)', () => {
  it('every client ends with exactly the server rows its rules select, whatever the interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 10, maxLength: 60, size: 'max' }),
        fc.constantFrom(1, 3),
        fc.array(fc.integer({ min: -3, max: 3 }), { minLength: CLIENTS.length, maxLength: CLIENTS.length }),
        fc.array(fc.boolean(), { minLength: CLIENTS.length, maxLength: CLIENTS.length }),
        async (steps, shardCount, skews, old) => {
        const w = await world(shardCount, skews, old);
        try {
          for (const s of steps) {
            if (s.kind === 'tick') w.now += s.ms;
            else if (s.kind === 'write') write(w.clients[s.client]!, CLIENTS[s.client]!.sub, s);
            else if (s.kind === 'restart') await w.reopen(s.client);
            else if (s.kind === 'lose') {
              w.lose[s.client] = s.nth;
              await w.clients[s.client]!.sync().catch(() => undefined); // offline when the answer was lost
              w.lose[s.client] = -1;
            } else await w.clients[s.client]!.sync();
          }
          // Quiesce: a round for everyone pushes all; a second pulls what the others pushed.
          for (let round = 0; round < 3; round++) for (const c of w.clients) await c.sync();
          for (let i = 0; i < CLIENTS.length; i++) {
            const c = w.clients[i]!;
            expect(c.store.pendingCount()).toBe(0);
            const server = await serverView(w, CLIENTS[i]!.sub);
            expect(clientView(c), `client ${CLIENTS[i]!.id}`).toEqual(server.values);
            for (const state of server.states) expect(c.store.loadRow(state.table, state.rowId)).toEqual(state);
          }
        } finally {
          for (const c of w.clients) await c.close();
          rmSync(w.dir, { recursive: true, force: true });
        }
      }),
      { numRuns: Number(process.env["RUNS"] ?? 300) },
    );
  }, 120_000);
});
