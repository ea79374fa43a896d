import { describe, expect, it } from 'vitest';
import { makeDelta, type Delta } from '../delta.ts';
import type { DeltaBuffer, LogEntryDraft } from '../engine/ports.ts';
import { rowKey } from '../engine/ports.ts';
import { applyDelta, type RowState } from '../merge.ts';

export interface BufferFactory {
  /** A fresh, empty buffer. */
  create(): Promise<DeltaBuffer>;
  /** Close and reopen the same storage, for durable adapters. */
  reopen?(buffer: DeltaBuffer): Promise<DeltaBuffer>;
}

let counter = 0;
function delta(rowId: string, columns: Delta['columns'] = { title: 'x' }, op: Delta['op'] = 'insert'): Delta {
  counter += 1;
  return makeDelta({ table: 'todos', rowId, op, columns, hlc: BigInt(1_000_000 + counter), clientId: 'c1' });
}

function draft(d: Delta, fresh = true): LogEntryDraft {
  return { delta: d, before: fresh ? null : { owner: 'u1' }, after: { owner: 'u1' }, fresh };
}

/**
 * The one conformance suite every DeltaBuffer adapter must pass (in-memory,
 * SQLite, DynamoDB, Durable Object storage).
 */
export function runBufferConformance(name: string, factory: BufferFactory): void {
  describe(`DeltaBuffer conformance: ${name}`, () => {
    it('starts empty', async () => {
      const b = await factory.create();
      expect(await b.head()).toBe(0n);
      const page = await b.read(0n, 10);
      expect(page.entries).toEqual([]);
      expect(page.hasMore).toBe(false);
      expect(page.lastSeq).toBe(0n);
      await b.close();
    });

    it('assigns strictly increasing seqs and pages in order', async () => {
      const b = await factory.create();
      const deltas = Array.from({ length: 7 }, (_, i) => delta(`r${i}`));
      const r1 = await b.append(deltas.slice(0, 3).map((d) => draft(d)), []);
      const r2 = await b.append(deltas.slice(3).map((d) => draft(d)), []);
      expect(r1.ok && r2.ok).toBe(true);
      if (!r1.ok || !r2.ok) return;
      expect(r2.lastSeq).toBeGreaterThan(r1.lastSeq);
      expect(await b.head()).toBe(r2.lastSeq);

      const seen: Delta[] = [];
      let cursor = 0n;
      let pages = 0;
      for (;;) {
        const page = await b.read(cursor, 3);
        pages++;
        for (const e of page.entries) {
          expect(e.seq).toBeGreaterThan(cursor);
          cursor = e.seq;
          seen.push(e.delta);
        }
        expect(page.lastSeq).toBe(cursor);
        if (!page.hasMore) break;
      }
      expect(pages).toBe(3);
      expect(seen.map((d) => d.deltaId)).toEqual(deltas.map((d) => d.deltaId));
      await b.close();
    });

    it('round-trips deltas, rule snapshots and the fresh flag exactly', async () => {
      const b = await factory.create();
      const d = delta('r-values', {
        title: 'héllo ☃',
        done: true,
        position: -(2n ** 63n),
        score: 0.1,
        meta: { json: '{"a":[1,2]}' },
        owner: null,
      });
      await b.append([{ delta: d, before: null, after: { owner: null, title: 'héllo ☃' }, fresh: true }], []);
      const [entry] = (await b.read(0n, 10)).entries;
      expect(entry?.delta).toEqual(d);
      expect(entry?.before).toBeNull();
      expect(entry?.after).toEqual({ owner: null, title: 'héllo ☃' });
      expect(entry?.fresh).toBe(true);
      await b.close();
    });

    it('reports which delta ids it holds', async () => {
      const b = await factory.create();
      const [x, y] = [delta('a'), delta('b')];
      await b.append([draft(x)], []);
      expect(await b.existing([x.deltaId, y.deltaId])).toEqual(new Set([x.deltaId]));
      expect(await b.existing([])).toEqual(new Set());
      await b.close();
    });

    it('refuses a duplicate delta id atomically', async () => {
      const b = await factory.create();
      const x = delta('a');
      await b.append([draft(x)], []);
      const head = await b.head();
      const state = applyDelta(undefined, x);
      const r = await b.append([draft(delta('c')), draft(x)], [{ state, expectedVersion: 0 }]);
      expect(r.ok).toBe(false);
      expect(await b.head()).toBe(head);
      expect((await b.loadRows([{ table: 'todos', rowId: 'a' }])).size).toBe(0);
      await b.close();
    });

    it('stores rows with optimistic versions and refuses stale writes atomically', async () => {
      const b = await factory.create();
      const d1 = delta('row');
      const s1 = applyDelta(undefined, d1);
      expect((await b.append([draft(d1)], [{ state: s1, expectedVersion: 0 }])).ok).toBe(true);
      const loaded = (await b.loadRows([{ table: 'todos', rowId: 'row' }])).get(rowKey('todos', 'row'));
      expect(loaded?.version).toBe(1);
      expect(loaded?.state).toEqual(s1);

      const d2 = delta('row', { title: 'y' }, 'update');
      const s2 = applyDelta(s1, d2);
      const head = await b.head();
      // Someone else's stale view (version 0) must not win.
      expect((await b.append([draft(d2, false)], [{ state: s2, expectedVersion: 0 }])).ok).toBe(false);
      expect(await b.head()).toBe(head);
      expect(await b.existing([d2.deltaId])).toEqual(new Set());
      expect((await b.append([draft(d2, false)], [{ state: s2, expectedVersion: 1 }])).ok).toBe(true);
      const again = (await b.loadRows([{ table: 'todos', rowId: 'row' }])).get(rowKey('todos', 'row'));
      expect(again?.version).toBe(2);
      expect(again?.state).toEqual(s2);
      await b.close();
    });

    it('serializes concurrent appends: unique, increasing seqs, nothing lost', async () => {
      const b = await factory.create();
      const batches = Array.from({ length: 20 }, (_, i) => Array.from({ length: 5 }, (_, j) => delta(`c${i}-${j}`)));
      const results = await Promise.all(batches.map((ds) => b.append(ds.map((d) => draft(d)), [])));
      expect(results.every((r) => r.ok)).toBe(true);
      const page = await b.read(0n, 1000);
      expect(page.entries).toHaveLength(100);
      const seqs = page.entries.map((e) => e.seq);
      expect([...seqs].sort((x, y) => (x < y ? -1 : 1))).toEqual(seqs);
      expect(new Set(seqs).size).toBe(100);
      await b.close();
    });

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen;
      it('keeps everything across a reopen, and continues the sequence', async () => {
        let b = await factory.create();
        const d = delta('durable');
        const state: RowState = applyDelta(undefined, d);
        await b.append([draft(d)], [{ state, expectedVersion: 0 }]);
        const head = await b.head();
        b = await reopen(b);
        expect(await b.head()).toBe(head);
        expect((await b.read(0n, 10)).entries.map((e) => e.delta)).toEqual([d]);
        expect((await b.loadRows([{ table: 'todos', rowId: 'durable' }])).get(rowKey('todos', 'durable'))?.state).toEqual(state);
        const r = await b.append([draft(delta('after'))], []);
        expect(r.ok && r.lastSeq > head).toBe(true);
        await b.close();
      });
    }
  });
}
