import { describe, expect, it } from 'vitest';
import { makeDelta, type Delta } from '../delta.ts';
import { FORGOTTEN, type DeltaBuffer, type LogEntryDraft, type StoredRow } from '../engine/ports.ts';
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

/** A delta with a chosen stamp. */
function stamped(clientId: string, hlc: bigint, rowId = `s-${clientId}-${hlc}`, title = 'x'): Delta {
  return makeDelta({ table: 'todos', rowId, op: 'insert', columns: { title }, hlc, clientId });
}

async function row(b: DeltaBuffer, rowId: string): Promise<StoredRow | undefined> {
  return (await b.loadRows([{ table: 'todos', rowId }]))[0];
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

    it('reads any page from any cursor, across appends of any size', async () => {
      const b = await factory.create();
      const appended: Delta[] = [];
      for (const size of [1, 4, 1, 7, 2, 3]) {
        const ds = Array.from({ length: size }, (_, i) => delta(`p${appended.length + i}`));
        expect((await b.append(ds.map((d) => draft(d)), [])).ok).toBe(true);
        appended.push(...ds);
      }
      const n = appended.length;
      const head = await b.head();
      const seqs: bigint[] = [];
      for (let c = 0n; ; ) {
        const page = await b.read(c, 1);
        if (page.entries.length === 0) break;
        seqs.push((page.entries[0] as { seq: bigint }).seq);
        c = page.lastSeq;
      }
      expect(seqs).toHaveLength(n);
      expect(seqs[n - 1]).toBe(head);
      for (let from = 0; from <= n; from++) {
        const after = from === 0 ? 0n : (seqs[from - 1] as bigint);
        for (let limit = 1; limit <= n + 1; limit++) {
          const page = await b.read(after, limit);
          const want = appended.slice(from, from + limit);
          expect(page.entries.map((e) => e.delta.deltaId)).toEqual(want.map((d) => d.deltaId));
          expect(page.entries.map((e) => e.seq)).toEqual(seqs.slice(from, from + limit));
          expect(page.hasMore).toBe(from + limit < n);
          expect(page.lastSeq).toBe(want.length > 0 ? seqs[from + want.length - 1] : after);
        }
      }
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

    it('reports, per stamp, the delta id it holds', async () => {
      const b = await factory.create();
      const [x, y] = [delta('a'), delta('b')];
      await b.append([draft(x)], []);
      expect(await b.existing('c1', [y.hlc, x.hlc])).toEqual([null, x.deltaId]);
      // Stamps are per client: the same hlc of another client is another stamp.
      expect(await b.existing('c2', [x.hlc])).toEqual([null]);
      expect(await b.existing('c1', [])).toEqual([]);
      await b.close();
    });

    it('refuses a stored stamp atomically, whatever the delta id', async () => {
      const b = await factory.create();
      const x = delta('a');
      await b.append([draft(x)], []);
      const head = await b.head();
      const state = applyDelta(undefined, x);
      const c = delta('c');
      // The same delta again, and different content under the same stamp.
      const reused = stamped('c1', x.hlc, 'a', 'other');
      expect(reused.deltaId).not.toBe(x.deltaId);
      for (const again of [x, reused]) {
        const r = await b.append([draft(c), draft(again)], [{ state, expectedVersion: 0 }]);
        expect(r.ok).toBe(false);
        expect(await b.head()).toBe(head);
        expect(await row(b, 'a')).toBeUndefined();
        expect(await b.existing('c1', [c.hlc, x.hlc])).toEqual([null, x.deltaId]);
      }
      await b.close();
    });

    it('refuses a stamp repeated within one batch atomically', async () => {
      const b = await factory.create();
      const x = stamped('c1', 500n, 'p');
      const twin = stamped('c1', 500n, 'q');
      for (const batch of [
        [x, x],
        [x, twin],
        [stamped('c1', 400n), x, stamped('c2', 500n), twin],
      ]) {
        expect((await b.append(batch.map((d) => draft(d)), [])).ok).toBe(false);
        expect(await b.head()).toBe(0n);
      }
      expect(await b.existing('c1', [400n, 500n])).toEqual([null, null]);
      // Interleaved clients with equal hlcs are distinct stamps.
      const mixed = [stamped('c1', 500n), stamped('c2', 500n), stamped('c1', 501n), stamped('c2', 499n)];
      const ok = await b.append(
        mixed.map((d, i) => ({ delta: d, before: i === 1 ? { owner: 'u1', n: 2n } : null, after: i === 2 ? null : { owner: `u${i}` }, fresh: i !== 1 })),
        [],
      );
      expect(ok.ok).toBe(true);
      const back = (await b.read(0n, 10)).entries;
      expect(back.map((e) => e.delta)).toEqual(mixed);
      expect(back.map((e) => [e.before, e.after, e.fresh])).toEqual([
        [null, { owner: 'u0' }, true],
        [{ owner: 'u1', n: 2n }, { owner: 'u1' }, false],
        [null, null, true],
        [null, { owner: 'u3' }, true],
      ]);
      expect(await b.existing('c2', [499n, 500n, 501n])).toEqual([mixed[3]?.deltaId, mixed[1]?.deltaId, null]);
      await b.close();
    });

    it('deduplicates stamps that arrive out of order', async () => {
      const b = await factory.create();
      const [d10, d20, d30, d15] = [stamped('c1', 10n), stamped('c1', 20n), stamped('c1', 30n), stamped('c1', 15n)];
      expect((await b.append([draft(d10), draft(d30)], [])).ok).toBe(true);
      expect((await b.append([draft(d20)], [])).ok).toBe(true); // older than the newest stored
      expect((await b.append([draft(d15), draft(d10)], [])).ok).toBe(false);
      expect((await b.append([draft(d20)], [])).ok).toBe(false);
      expect(await b.existing('c1', [30n, 5n, 20n, 15n, 10n, 31n])).toEqual([d30.deltaId, null, d20.deltaId, null, d10.deltaId, null]);
      // Far apart in time: a client idle for years, or with an hlc from the top of the range.
      const top = stamped('c1', 2n ** 64n - 1n);
      const high = stamped('c1', 2n ** 63n);
      expect((await b.append([draft(high), draft(top)], [])).ok).toBe(true);
      expect(await b.existing('c1', [2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 25n])).toEqual([null, high.deltaId, top.deltaId, null]);
      expect((await b.append([draft(stamped('c1', 2n ** 63n, 'z'))], [])).ok).toBe(false);
      await b.close();
    });

    it('loads rows aligned with the keys asked for', async () => {
      const b = await factory.create();
      const [p, q] = [delta('p'), delta('q')];
      const rows = [p, q].map((d) => ({ state: applyDelta(undefined, d), expectedVersion: 0 }));
      await b.append([draft(p), draft(q)], rows);
      const got = await b.loadRows([
        { table: 'todos', rowId: 'q' },
        { table: 'todos', rowId: 'missing' },
        { table: 'other', rowId: 'p' },
        { table: 'todos', rowId: 'p' },
      ]);
      expect(got.map((r) => r?.state.rowId)).toEqual(['q', undefined, undefined, 'p']);
      expect(await b.loadRows([])).toEqual([]);
      await b.close();
    });

    it('stores rows with optimistic versions and refuses stale writes atomically', async () => {
      const b = await factory.create();
      const d1 = delta('row');
      const s1 = applyDelta(undefined, d1);
      expect((await b.append([draft(d1)], [{ state: s1, expectedVersion: 0 }])).ok).toBe(true);
      const loaded = await row(b, 'row');
      expect(loaded?.version).toBe(1);
      expect(loaded?.state).toEqual(s1);

      const d2 = delta('row', { title: 'y' }, 'update');
      const s2 = applyDelta(s1, d2);
      const head = await b.head();
      // Someone else's stale view (version 0) must not win.
      expect((await b.append([draft(d2, false)], [{ state: s2, expectedVersion: 0 }])).ok).toBe(false);
      expect(await b.head()).toBe(head);
      expect(await b.existing('c1', [d2.hlc])).toEqual([null]);
      expect((await b.append([draft(d2, false)], [{ state: s2, expectedVersion: 1 }])).ok).toBe(true);
      const again = await row(b, 'row');
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

    it('records flush progress, never backwards and never beyond the head', async () => {
      const b = await factory.create();
      expect(await b.flushedThrough()).toBe(0n);
      await b.append([1, 2, 3].map((i) => draft(delta(`f${i}`))), []);
      await b.markFlushed(2n);
      await b.markFlushed(1n);
      expect(await b.flushedThrough()).toBe(2n);
      await expect(b.markFlushed(99n)).rejects.toThrow();
      expect(await b.flushedThrough()).toBe(2n);
      await b.close();
    });

    it('trims only flushed entries, moves the floor, and still deduplicates trimmed stamps', async () => {
      const b = await factory.create();
      const deltas = Array.from({ length: 6 }, (_, i) => delta(`t${i}`));
      for (const d of deltas) await b.append([draft(d)], []); // one append each: trimming is exact
      expect(await b.floor()).toBe(0n);
      await b.trim(4n); // nothing flushed yet: nothing goes
      expect(await b.floor()).toBe(0n);
      expect((await b.read(0n, 10)).entries).toHaveLength(6);
      await b.markFlushed(3n);
      await b.trim(5n); // capped at the flushed mark
      expect(await b.floor()).toBe(3n);
      const page = await b.read(3n, 10);
      expect(page.entries.map((e) => e.delta)).toEqual(deltas.slice(3));
      // A trimmed delta sent again is still a duplicate (id may be forgotten), not a new delta.
      const [first] = await b.existing('c1', [(deltas[0] as Delta).hlc]);
      expect(first === (deltas[0] as Delta).deltaId || first === FORGOTTEN).toBe(true);
      expect((await b.append([draft(deltas[0] as Delta)], [])).ok).toBe(false);
      expect(await b.head()).toBe(6n);
      const r = await b.append([draft(delta('t-new'))], []);
      expect(r.ok && r.lastSeq === 7n).toBe(true);
      await b.close();
    });

    it('whatever the trim cap, every entry after the floor stays readable', async () => {
      const b = await factory.create();
      const deltas: Delta[] = [];
      for (const size of [3, 1, 5, 2]) {
        const ds = Array.from({ length: size }, (_, i) => delta(`cap${deltas.length + i}`));
        expect((await b.append(ds.map((d) => draft(d)), [])).ok).toBe(true);
        deltas.push(...ds);
      }
      await b.markFlushed(BigInt(deltas.length));
      // Caps inside appends too (a retention window ends anywhere): the floor may stop short of one, never past it.
      for (let cap = 0n; cap <= BigInt(deltas.length); cap++) {
        await b.trim(cap);
        const floor = await b.floor();
        expect(floor).toBeLessThanOrEqual(cap);
        const page = await b.read(floor, 100);
        expect(page.entries.map((e) => e.delta.deltaId)).toEqual(deltas.slice(Number(floor)).map((d) => d.deltaId));
      }
      await b.close();
    });

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen;
      it('keeps the flushed mark and the floor across a reopen', async () => {
        let b = await factory.create();
        for (let i = 0; i < 4; i++) await b.append([draft(delta(`k${i}`))], []);
        await b.markFlushed(3n);
        await b.trim(2n);
        b = await reopen(b);
        expect(await b.flushedThrough()).toBe(3n);
        expect(await b.floor()).toBe(2n);
        expect((await b.read(2n, 10)).entries.map((e) => e.seq)).toEqual([3n, 4n]);
        await b.close();
      });

      it('keeps everything across a reopen, and continues the sequence', async () => {
        let b = await factory.create();
        const d = delta('durable');
        const state: RowState = applyDelta(undefined, d);
        await b.append([draft(d)], [{ state, expectedVersion: 0 }]);
        const head = await b.head();
        b = await reopen(b);
        expect(await b.head()).toBe(head);
        expect((await b.read(0n, 10)).entries.map((e) => e.delta)).toEqual([d]);
        expect((await row(b, 'durable'))?.state).toEqual(state);
        // Deduplication survives the reopen.
        expect(await b.existing('c1', [d.hlc])).toEqual([d.deltaId]);
        expect((await b.append([draft(d)], [])).ok).toBe(false);
        expect((await b.append([draft(stamped('c1', d.hlc, 'durable', 'other'))], [])).ok).toBe(false);
        const r = await b.append([draft(delta('after'))], []);
        expect(r.ok && r.lastSeq > head).toBe(true);
        await b.close();
      });
    }
  });
}
