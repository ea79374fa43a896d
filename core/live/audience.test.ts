import { expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryBuffer } from '../adapters/memory-buffer.ts';
import type { Principal } from '../auth/principal.ts';
import { makeDelta, type Op } from '../delta.ts';
import { HybridLogicalClock, encodeHlc } from '../hlc.ts';
import type { SyncRules } from '../rules.ts';
import type { Schema } from '../schema.ts';
import { Gateway } from '../engine/gateway.ts';
import type { LogEntryDraft } from '../engine/ports.ts';
import { concerns } from './audience.ts';

const schema: Schema = {
  version: 1,
  tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }, { name: 'team', type: 'string' }] }],
};
const RULES: SyncRules = {
  buckets: [
    { name: 'own', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } },
    { name: 'team', tables: { todos: [{ column: 'team', op: 'in', value: { claim: 'teams' } }] } },
  ],
};
const T0 = 1_700_000_000_000;

/**
 * The live invariant: after a push, every other connection whose next pull
 * carries a change (delta, entering row, eviction) is poked. The writer
 * pulls right after its own push, so it needs none.
 */
it('property: concerns() pokes every listener whose next pull carries a change (rules, admins, rows entering and leaving views, skewed stamps)', async () => {
  let carried = 0;
  await fc.assert(fc.asyncProperty(
    fc.array(
      fc.record({
        client: fc.constantFrom('a', 'b', 'c'),
        admin: fc.boolean(),
        row: fc.constantFrom('r0', 'r1'),
        op: fc.constantFrom<Op>('insert', 'update', 'delete'),
        owner: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
        team: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
        title: fc.boolean(),
        // Stamps a little out of order: older writes lose, deletes older than inserts.
        back: fc.integer({ min: 0, max: 3 }),
      }),
      { maxLength: 20 },
    ),
    async (ops) => {
      let tick = 0;
      let appended: readonly LogEntryDraft[] = [];
      const g = new Gateway({ buffer: new MemoryBuffer(), schema, rules: RULES, clock: new HybridLogicalClock({ wallClock: () => T0 + 10 }), onAppend: (e) => (appended = e) });
      const listeners: Principal[] = [
        { clientId: 'a', userId: 'a', claims: { sub: 'a', teams: ['x'] }, admin: false },
        { clientId: 'b', userId: 'b', claims: { sub: 'b', teams: ['y'] }, admin: false },
        { clientId: 'c', userId: 'c', claims: { sub: 'c' }, admin: false },
        { clientId: 'z', userId: 'z', claims: { sub: 'z' }, admin: true },
      ];
      const cursors = listeners.map(() => '');
      for (const o of ops) {
        tick++;
        const columns: Record<string, string> = o.op === 'delete' ? {} : { ...(o.title ? { title: 't' + tick } : {}), ...(o.owner ? { owner: o.owner } : {}), ...(o.team ? { team: o.team } : {}) };
        const delta = makeDelta({ table: 'todos', rowId: o.row, op: o.op, columns, hlc: encodeHlc(T0, tick * 4 - o.back), clientId: o.client });
        appended = [];
        try {
          await g.push({ clientId: o.client, userId: o.client, claims: { sub: o.client }, admin: o.admin }, { clientId: o.client, schemaVersion: 1, deltas: [delta] });
        } catch {
          continue; // refused by the write rules: nothing appended
        }
        for (let i = 0; i < listeners.length; i++) {
          const who = listeners[i]!;
          const page = await g.pull(who, { cursor: cursors[i]!, limit: 1000 });
          const poked = who.clientId === o.client || concerns(g.rules, who, appended);
          if (page.changes.length > 0 && who.clientId !== o.client) carried++;
          if (page.changes.length > 0) expect({ who: who.clientId, poked }).toEqual({ who: who.clientId, poked: true });
          cursors[i] = page.nextCursor;
        }
      }
    }), { numRuns: 1500 });
  expect(carried).toBeGreaterThan(100);
});
