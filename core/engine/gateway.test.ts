import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryBuffer } from '../adapters/memory-buffer.ts';
import type { Principal } from '../auth/principal.ts';
import { makeDelta, type Delta, type Op } from '../delta.ts';
import { LakeSyncError } from '../errors.ts';
import { HybridLogicalClock, encodeHlc } from '../hlc.ts';
import { applyDelta, emptyRow, mergeRows, visibleValues, type RowState } from '../merge.ts';
import type { SyncRules } from '../rules.ts';
import type { Schema } from '../schema.ts';
import type { ColumnValue } from '../values.ts';
import { Gateway, type Change } from './gateway.ts';
import type { BufferShards } from './shards.ts';

const schema: Schema = {
  version: 1,
  tables: [
    { name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }, { name: 'team', type: 'string' }] },
    { name: 'notes', columns: [{ name: 'body', type: 'string' }] },
  ],
};

const byTeam: SyncRules = {
  buckets: [{ name: 'team', tables: { todos: [{ column: 'team', op: 'eq', value: { claim: 'team' } }] } }],
};

const T0 = 1_700_000_000_000;

function principal(clientId: string, claims: Record<string, unknown> = {}): Principal {
  return { clientId, userId: clientId, claims: { sub: clientId, ...claims }, admin: false };
}

function gateway(rules: SyncRules | null = null): Gateway {
  return new Gateway({ buffer: new MemoryBuffer(), schema, rules, clock: new HybridLogicalClock({ wallClock: () => T0 }) });
}

let tick = 0;
function d(clientId: string, op: Op, rowId: string, columns: Record<string, ColumnValue> = {}, table = 'todos'): Delta {
  tick += 1;
  return makeDelta({ table, rowId, op, columns, hlc: encodeHlc(T0, tick), clientId });
}

async function pullAll(g: Gateway, who: Principal, limit = 1000): Promise<Change[]> {
  const out: Change[] = [];
  let cursor = '';
  for (;;) {
    const page = await g.pull(who, { cursor, limit });
    out.push(...page.changes);
    cursor = page.nextCursor;
    if (!page.hasMore) return out;
  }
}

describe('Gateway pull racing a trim', () => {
  it('answers CURSOR_EXPIRED, never a page with a gap, when entries after the cursor are trimmed during the pull', async () => {
    const buffer = new MemoryBuffer();
    const g = new Gateway({ buffer, schema, rules: null, clock: new HybridLogicalClock({ wallClock: () => T0 }) });
    const a = principal('a');
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'r1'), d('a', 'insert', 'r2'), d('a', 'insert', 'r3')] });
    await buffer.markFlushed(3n);
    // Another process flushes and trims between the floor check and the read.
    const read = buffer.read.bind(buffer);
    buffer.read = async (after, limit) => {
      await buffer.trim(2n);
      return read(after, limit);
    };
    const first = await g.pull(a, { cursor: '', limit: 1 }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(LakeSyncError);
    expect((first as LakeSyncError).code).toBe('CURSOR_EXPIRED');
  });
});

describe('Gateway push', () => {
  it('acknowledges a re-sent batch as duplicates and stores it once', async () => {
    const g = gateway();
    const a = principal('a');
    const batch = [d('a', 'insert', 'r1', { title: 'x' }), d('a', 'update', 'r1', { title: 'y' })];
    expect((await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: batch })).accepted).toBe(2);
    const again = await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [...batch, batch[0]!] });
    expect(again).toMatchObject({ accepted: 0, duplicates: 3 });
    expect(await g.head()).toBe('2');
  });

  it('deduplicates by stamp: repeats in a batch, out-of-order batches, across pushes', async () => {
    const g = gateway();
    const a = principal('a');
    const at = (k: number, rowId: string, title = 'x') =>
      makeDelta({ table: 'todos', rowId, op: 'insert', columns: { title }, hlc: encodeHlc(T0, k), clientId: 'a' });
    const [x3, x1, x2] = [at(3, 'r3'), at(1, 'r1'), at(2, 'r2')];
    expect(await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [x3, x1, x3, x2, x1] })).toMatchObject({
      accepted: 3,
      duplicates: 2,
      cursor: '3',
    });
    const x0 = at(0x100, 'r0');
    expect(await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [x2, x0, x1] })).toMatchObject({ accepted: 1, duplicates: 2 });
    expect((await pullAll(g, a)).map((c) => (c.kind === 'delta' ? c.delta.rowId : c.kind))).toEqual(['r3', 'r1', 'r2', 'r0']);
    // Another client may use the same hlcs.
    const b = principal('b');
    const y = makeDelta({ table: 'todos', rowId: 'r1', op: 'update', columns: { title: 'b' }, hlc: x1.hlc, clientId: 'b' });
    expect(await g.push(b, { clientId: 'b', schemaVersion: 1, deltas: [y] })).toMatchObject({ accepted: 1 });
  });

  it('refuses a stamp reused for different content (STAMP_REUSED), writing nothing', async () => {
    const g = gateway();
    const a = principal('a');
    const at = (k: number, rowId: string, title = 'x') =>
      makeDelta({ table: 'todos', rowId, op: 'insert', columns: { title }, hlc: encodeHlc(T0, k), clientId: 'a' });
    await g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [at(1, 'r1')] });
    // Against the log: the index is the delta's position in the request, duplicates count too.
    await expect(
      g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [at(2, 'r2'), at(1, 'r1'), at(1, 'r1', 'other')] }),
    ).rejects.toMatchObject({ code: 'STAMP_REUSED', status: 409, deltaIndex: 2 });
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [at(1, 'r9')] })).rejects.toMatchObject({
      code: 'STAMP_REUSED',
      deltaIndex: 0,
    });
    // Within one batch.
    await expect(
      g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [at(5, 'r5'), at(4, 'r4'), at(5, 'r5', 'twin')] }),
    ).rejects.toMatchObject({ code: 'STAMP_REUSED', deltaIndex: 2 });
    expect(await g.head()).toBe('1');
    expect(await g.getRow(a, 'todos', 'r1')).toEqual({ title: 'x' });
  });

  it('refuses the whole batch when one delta is bad, writing nothing', async () => {
    const g = gateway();
    const a = principal('a');
    const good = d('a', 'insert', 'r1', { title: 'x' });
    const bad = d('a', 'insert', 'r2', { nope: 'x' });
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [good, bad] })).rejects.toMatchObject({
      code: 'UNKNOWN_COLUMN',
      deltaIndex: 1,
    });
    expect(await g.head()).toBe('0');
  });

  it('refuses deltas of another client, forged ids and clocks too far ahead', async () => {
    const g = gateway();
    const a = principal('a');
    const other = d('b', 'insert', 'r1', { title: 'x' });
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [other] })).rejects.toMatchObject({ code: 'CLIENT_ID_MISMATCH' });
    const forged = { ...d('a', 'insert', 'r1', { title: 'x' }), columns: { title: 'changed' } };
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [forged] })).rejects.toMatchObject({ code: 'DELTA_ID_MISMATCH' });
    const future = makeDelta({ table: 'todos', rowId: 'r', op: 'insert', columns: {}, hlc: encodeHlc(T0 + 3_600_000, 0), clientId: 'a' });
    await expect(g.push(a, { clientId: 'a', schemaVersion: 1, deltas: [future] })).rejects.toMatchObject({ code: 'CLOCK_DRIFT' });
    expect(await g.head()).toBe('0');
  });

  it('refuses writes outside the client rules (rule escape)', async () => {
    const g = gateway(byTeam);
    const red = principal('a', { team: 'red' });
    await g.push(red, { clientId: 'a', schemaVersion: 1, deltas: [d('a', 'insert', 'r1', { team: 'red' })] });
    const escape = d('a', 'insert', 'r2', { team: 'blue' });
    await expect(g.push(red, { clientId: 'a', schemaVersion: 1, deltas: [escape] })).rejects.toBeInstanceOf(LakeSyncError);
    const blue = principal('b', { team: 'blue' });
    await expect(
      g.push(blue, { clientId: 'b', schemaVersion: 1, deltas: [d('b', 'update', 'r1', { title: 'hijack' })] }),
    ).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    expect(await g.head()).toBe('1');
  });
});

describe('Gateway guesses that inserts create rows', () => {
  /** A MemoryBuffer that counts loadRows calls. */
  class CountingBuffer extends MemoryBuffer {
    loads = 0;
    override loadRows(keys: Parameters<MemoryBuffer['loadRows']>[0]): ReturnType<MemoryBuffer['loadRows']> {
      this.loads++;
      return super.loadRows(keys);
    }
  }
  const byOwner: SyncRules = {
    buckets: [{ name: 'mine', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }],
  };
  const setup = (rules: SyncRules | null = null) => {
    const buffer = new CountingBuffer();
    const g = new Gateway({ buffer, schema, rules, clock: new HybridLogicalClock({ wallClock: () => T0 }) });
    return { buffer, g };
  };
  const push = (g: Gateway, who: Principal, deltas: Delta[]) => g.push(who, { clientId: who.clientId, schemaVersion: 1, deltas });

  it('skips loading rows that inserts create, and merges correctly when a row existed after all', async () => {
    const { buffer, g } = setup();
    const a = principal('a');
    const b = principal('b');
    await push(g, a, [d('a', 'insert', 'r1', { title: 'a1', owner: 'a' }), d('a', 'insert', 'r2', { title: 'a2' })]);
    expect(buffer.loads).toBe(0);
    // r1 exists: the guess fails, the push is planned again from stored rows.
    await push(g, b, [d('b', 'insert', 'r3', { title: 'b3' }), d('b', 'insert', 'r1', { title: 'b1' }), d('b', 'update', 'r2', { team: 't' })]);
    expect(buffer.loads).toBeGreaterThan(0);
    expect(await g.getRow(a, 'todos', 'r1')).toEqual({ title: 'b1', owner: 'a' });
    expect(await g.getRow(a, 'todos', 'r2')).toEqual({ title: 'a2', team: 't' });
    const log = (await buffer.read(0n, 10)).entries;
    expect(log.map((e) => [e.delta.rowId, e.fresh])).toEqual([
      ['r1', true],
      ['r2', true],
      ['r3', true],
      ['r1', false],
      ['r2', false],
    ]);
    // After a wrong guess, the next pushes load their rows.
    const before = buffer.loads;
    await push(g, a, [d('a', 'insert', 'r4', { title: 'a4' })]);
    expect(buffer.loads).toBe(before + 1);
  });

  it('judges write rules on the stored row, not on the guess', async () => {
    const { buffer, g } = setup(byOwner);
    const alice = principal('alice');
    const bob = principal('bob');
    await push(g, alice, [d('alice', 'insert', 'r1', { title: 'x', owner: 'alice' })]);
    // An insert without the rule column into alice's own row is allowed: the stored owner counts.
    await push(g, alice, [d('alice', 'insert', 'r9', { title: 'new', owner: 'alice' }), d('alice', 'insert', 'r1', { title: 'y' })]);
    expect(await g.getRow(alice, 'todos', 'r1')).toEqual({ title: 'y', owner: 'alice' });
    // Bob may not touch alice's row, and the index names his delta, not an earlier guessed one.
    // (A second gateway on the same buffer: the first one paused guessing after its wrong guess.)
    const g2 = new Gateway({ buffer, schema, rules: byOwner, clock: new HybridLogicalClock({ wallClock: () => T0 }) });
    await expect(
      push(g2, bob, [d('bob', 'insert', 'b1', { owner: 'bob' }), d('bob', 'insert', 'r2', { owner: 'carol' }), d('bob', 'insert', 'r1', { title: 'z' })]),
    ).rejects.toMatchObject({ code: 'RULE_VIOLATION', deltaIndex: 1 });
    await expect(push(g2, bob, [d('bob', 'insert', 'b1', { owner: 'bob' }), d('bob', 'insert', 'r1', { title: 'z', owner: 'bob' })])).rejects.toMatchObject({
      code: 'RULE_VIOLATION',
      deltaIndex: 1,
    });
    expect(await g.getRow(alice, 'todos', 'r1')).toEqual({ title: 'y', owner: 'alice' });
  });
});

describe('Gateway sync rules and schema', () => {
  it('refuses rules naming a column the table does not have (a typo would make neq match every row)', () => {
    const typo: SyncRules = { buckets: [{ name: 'b', tables: { todos: [{ column: 'Team', op: 'neq', value: 'secret' }] } }] };
    expect(() => gateway(typo)).toThrow(/todos.*Team/);
    const id: SyncRules = { buckets: [{ name: 'b', tables: { todos: [{ column: 'id', op: 'eq', value: 'x' }] } }] };
    expect(() => gateway(id)).toThrow(/todos.*id/);
    expect(() => gateway(byTeam)).not.toThrow();
  });
});

describe('Gateway write rules on merged state', () => {
  const byOwner: SyncRules = {
    buckets: [{ name: 'mine', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }],
  };
  const push = (g: Gateway, who: Principal, delta: Delta) => g.push(who, { clientId: who.clientId, schemaVersion: 1, deltas: [delta] });

  it('refuses tables no bucket grants, and rows it cannot see even when not live', async () => {
    const g = gateway(byOwner);
    const mallory = principal('m');
    await expect(push(g, mallory, d('m', 'insert', 'n1', { body: 'x' }, 'notes'))).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    // An update of a never-inserted row without the rule column is not "nobody's row".
    await expect(push(g, mallory, d('m', 'update', 'ghost', { title: 'x' }))).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    expect(await g.head()).toBe('0');
  });

  it('refuses a delete of a row the server has no state for (it would hide the owner\'s later insert)', async () => {
    const g = gateway(byOwner);
    const alice = principal('alice');
    const mallory = principal('mallory');
    // Mallory guesses the id of alice's next row and deletes it ahead, a little in the future.
    const ahead = makeDelta({ table: 'todos', rowId: 'settings', op: 'delete', columns: {}, hlc: encodeHlc(T0 + 30_000, 0), clientId: 'mallory' });
    await expect(push(g, mallory, ahead)).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    await push(g, alice, d('alice', 'insert', 'settings', { title: 'mine', owner: 'alice' }));
    expect(await g.getRow(alice, 'todos', 'settings')).toEqual({ title: 'mine', owner: 'alice' });
    // A row's writer may still insert and delete it in one push, and delete it later.
    await g.push(alice, { clientId: 'alice', schemaVersion: 1, deltas: [d('alice', 'insert', 'tmp', { owner: 'alice' }), d('alice', 'delete', 'tmp')] });
    await push(g, alice, d('alice', 'delete', 'settings'));
    await expect(g.getRow(alice, 'todos', 'settings')).rejects.toMatchObject({ code: 'ROW_NOT_FOUND' });
  });

  it('nobody can plant values in a deleted row that its owner later re-inserts', async () => {
    const g = gateway(byOwner);
    const alice = principal('alice');
    const mallory = principal('mallory');
    await push(g, alice, d('alice', 'insert', 'r', { title: 'mine', owner: 'alice' }));
    await push(g, alice, d('alice', 'delete', 'r'));
    // Planting a title without taking ownership is refused...
    await expect(push(g, mallory, d('mallory', 'update', 'r', { title: 'planted' }))).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    // ...and taking the dead row over (squatting) means alice may no longer touch it, so nothing leaks to her.
    await push(g, mallory, d('mallory', 'update', 'r', { title: 'planted', owner: 'mallory' }));
    await expect(push(g, alice, d('alice', 'insert', 'r', { owner: 'alice' }))).rejects.toMatchObject({ code: 'RULE_VIOLATION' });
    // Alice's own resurrection of a row nobody touched works.
    await push(g, alice, d('alice', 'insert', 'r2', { title: 'a', owner: 'alice' }));
    await push(g, alice, d('alice', 'delete', 'r2'));
    await push(g, alice, d('alice', 'insert', 'r2', { title: 'back', owner: 'alice' }));
    expect(await g.getRow(alice, 'todos', 'r2')).toEqual({ title: 'back', owner: 'alice' });
  });
});

describe('Gateway pull with sync rules on merged state', () => {
  it('partial updates and deletes reach every client holding the row; rows leaving a bucket are evicted', async () => {
    const g = gateway(byTeam);
    const admin: Principal = { clientId: 'w', userId: 'w', claims: {}, admin: true };
    const writer = g; // an admin principal (a backend service) is not bound by write rules
    const red = principal('r', { team: 'red' });
    const blue = principal('b', { team: 'blue' });
    await writer.push(admin, { clientId: 'w', schemaVersion: 1, deltas: [d('w', 'insert', 'x', { title: 't', team: 'red' })] });
    // A partial update without the rule column still reaches red.
    await writer.push(admin, { clientId: 'w', schemaVersion: 1, deltas: [d('w', 'update', 'x', { title: 't2' })] });
    // Moving the row to blue: red gets an evict, blue gets the full row state.
    await writer.push(admin, { clientId: 'w', schemaVersion: 1, deltas: [d('w', 'update', 'x', { team: 'blue' })] });
    const blueCursor = '';
    const entering = await g.pull(blue, { cursor: blueCursor });
    expect(entering.changes.map((c) => c.kind)).toEqual(['row']);
    const row = entering.changes[0];
    expect(row?.kind === 'row' && visibleValues(row.row)).toEqual({ title: 't2', team: 'blue' });

    await writer.push(admin, { clientId: 'w', schemaVersion: 1, deltas: [d('w', 'delete', 'x')] });
    const redChanges = await pullAll(g, red);
    expect(redChanges.map((c) => c.kind)).toEqual(['delta', 'delta', 'evict']);
    // The delete reaches blue, which holds the row.
    const after = await g.pull(blue, { cursor: entering.nextCursor });
    expect(after.changes.map((c) => (c.kind === 'delta' ? c.delta.op : c.kind))).toEqual(['delete']);
    // Tables outside every bucket are never sent.
    await writer.push(admin, { clientId: 'w', schemaVersion: 1, deltas: [d('w', 'insert', 'n1', { body: 'secret' }, 'notes')] });
    expect((await pullAll(g, red)).some((c) => c.kind === 'delta' && c.delta.table === 'notes')).toBe(false);
    await expect(g.getRow(red, 'notes', 'n1')).rejects.toMatchObject({ code: 'ROW_NOT_FOUND' });
  });

  it('a delete older than the row insert leaves it live: the client is evicted, not sent a delete that keeps the row', async () => {
    const g = gateway(byTeam);
    const red = principal('r', { team: 'red' });
    const admin = (id: string): Principal => ({ ...principal(id), admin: true });
    const push = (who: Principal, delta: Delta) => g.push(who, { clientId: who.clientId, schemaVersion: 1, deltas: [delta] });
    const first = d('w', 'insert', 'x', { title: 't', team: 'red' });
    const concurrentDelete = d('v', 'delete', 'x'); // written offline between the two inserts
    const second = d('w', 'insert', 'x', { title: 't2' });
    await push(admin('w'), first);
    await push(admin('w'), second);
    await push(admin('v'), concurrentDelete);
    // The delete drops team (written before it) but not the newer insert: a live row red may not see.
    const replica = new Map<string, RowState>();
    for (const c of await pullAll(g, red)) applyChange(replica, c);
    const shown = [...replica.values()].filter((s) => visibleValues(s) !== null);
    expect(shown).toEqual([]);
  });

  it('property: clients applying their pulls converge to the server state their rules allow', async () => {
    const teams = ['red', 'blue'];
    const clients = ['c0', 'c1', 'c2'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            client: fc.integer({ min: 0, max: 2 }),
            row: fc.constantFrom('r0', 'r1', 'r2'),
            op: fc.constantFrom<Op>('insert', 'update', 'delete'),
            team: fc.option(fc.constantFrom(...teams), { nil: undefined }),
            title: fc.option(fc.string({ maxLength: 2 }), { nil: undefined }),
            pullLimit: fc.integer({ min: 1, max: 4 }),
            pullAfter: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        async (ops) => {
          // Writers are admins (not bound by write rules); readers are team-scoped.
          const scoped = gateway(byTeam);
          const open = scoped;
          const replicas = clients.map(() => new Map<string, RowState>());
          const cursors = clients.map(() => '');
          const who = clients.map((c, i) => principal(c, { team: teams[i % 2] }));
          const pull = async (i: number, limit: number) => {
            for (;;) {
              const page = await scoped.pull(who[i]!, { cursor: cursors[i]!, limit });
              for (const c of page.changes) applyChange(replicas[i]!, c);
              cursors[i] = page.nextCursor;
              if (!page.hasMore) return;
            }
          };
          for (const op of ops) {
            const cols: Record<string, ColumnValue> = {};
            if (op.team !== undefined) cols['team'] = op.team;
            if (op.title !== undefined) cols['title'] = op.title;
            if (op.op === 'update' && Object.keys(cols).length === 0) cols['title'] = 'u';
            const delta = d(clients[op.client]!, op.op, op.row, op.op === 'delete' ? {} : cols);
            await open.push({ ...principal(delta.clientId), admin: true }, { clientId: delta.clientId, schemaVersion: 1, deltas: [delta] });
            if (op.pullAfter) await pull(op.client, op.pullLimit);
          }
          const truth = await serverRows(open);
          for (let i = 0; i < clients.length; i++) {
            await pull(i, 3);
            const expected = new Map<string, unknown>();
            for (const [rowId, values] of truth) if (values['team'] === teams[i % 2]) expected.set(rowId, values);
            const actual = new Map<string, unknown>();
            for (const [rowId, state] of replicas[i]!) {
              const v = visibleValues(state);
              if (v !== null) actual.set(rowId, { ...v });
            }
            expect(actual).toEqual(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

function applyChange(rows: Map<string, RowState>, c: Change): void {
  if (c.kind === 'delta') rows.set(c.delta.rowId, applyDelta(rows.get(c.delta.rowId), c.delta));
  else if (c.kind === 'row') rows.set(c.row.rowId, mergeRows(rows.get(c.row.rowId) ?? emptyRow(c.row.table, c.row.rowId), c.row));
  else rows.delete(c.rowId);
}

async function serverRows(g: Gateway): Promise<Map<string, Record<string, ColumnValue>>> {
  const rows = new Map<string, RowState>();
  // Ground truth straight from the buffer's merged rows, not through pull.
  const buffer = (g as unknown as { shards: BufferShards }).shards.buffers[0] as MemoryBuffer;
  const ids = ['r0', 'r1', 'r2'].map((rowId) => ({ table: 'todos', rowId }));
  for (const stored of await buffer.loadRows(ids)) if (stored !== undefined) rows.set(stored.state.rowId, stored.state);
  const out = new Map<string, Record<string, ColumnValue>>();
  for (const [id, s] of rows) {
    const v = visibleValues(s);
    if (v !== null) out.set(id, { ...v });
  }
  return out;
}

describe('Gateway.pull reads within its byte limit', () => {
  it('asks the buffer for at most maxPullBytes of entries (buffers that can stop early do)', async () => {
    const buffer = new MemoryBuffer();
    const budgets: (number | undefined)[] = [];
    const read = buffer.read.bind(buffer);
    buffer.read = (after: bigint, limit: number, maxBytes?: number) => {
      budgets.push(maxBytes);
      return read(after, limit);
    };
    const g = new Gateway({ buffer, schema, rules: null, clock: new HybridLogicalClock({ wallClock: () => T0 }), limits: { maxPullBytes: 12_345 } });
    await g.pull(principal('c1'), { cursor: '' });
    expect(budgets).toEqual([12_345]);
  });
});
