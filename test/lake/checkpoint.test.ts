import { describe, expect, it } from 'vitest';
import { rowKey } from '../../core/engine/ports.ts';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { compactTable } from '../../core/lake/maintenance.ts';
import { CheckpointService } from '../../core/engine/checkpoints.ts';
import { decodePullResponse } from '../../core/protocol/codec.ts';
import { RuleSet } from '../../core/rules.ts';
import type { RowState } from '../../core/merge.ts';
import { deltaMaker, makeLakeEnv, principal } from '../support/lake.ts';

describe('checkpoints', () => {
  it('holds every live row with its per-column stamps, in chunks, at the flushed cursor', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const batch = [];
    for (let i = 0; i < 95; i++) batch.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, position: BigInt(i) }));
    for (let i = 0; i < 30; i++) batch.push(a('todos', `t${i}`, 'update', { title: `edited ${i}` }));
    for (let i = 30; i < 40; i++) batch.push(a('todos', `t${i}`, 'delete'));
    batch.push(a('notes', 'n1', 'insert', { body: 'note' }));
    await env.push('client-a', batch);
    const lake = env.lake({ chunkDeltas: 50 });
    await lake.flush(env.source);
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20, minFileBytes: 1 }); // half the rows from compacted files
    await env.push('client-a', [a('todos', 't99', 'update', { title: 'after compaction' })]);
    await lake.flush(env.source);

    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const cursor = env.source.flushed;
    const manifest = await cps.build(['todos', 'notes'], { cursor, schemaVersion: 1, chunkRows: 20 });
    expect(manifest.cursor).toBe(cursor.toString());
    expect(manifest.chunks.filter((c) => c.table === 'todos')).toHaveLength(5); // 85 rows / 20
    // Chunks are numbered across tables: the chunk route addresses them by this index.
    expect(manifest.chunks.map((c) => c.index)).toEqual(manifest.chunks.map((_, i) => i));
    expect(manifest.chunks.map((c) => c.table)).toContain('notes');
    expect((await cps.latest())?.checkpointId).toBe(manifest.checkpointId);

    const rows = new Map<string, RowState>();
    for (let i = 0; i < manifest.chunks.length; i++) {
      const bytes = await cps.chunk(manifest, i);
      const page = decodePullResponse('proto', bytes as Uint8Array);
      expect(page.nextCursor).toBe(manifest.cursor);
      for (const c of page.changes) {
        expect(c.kind).toBe('row');
        if (c.kind === 'row') rows.set(rowKey(c.row.table, c.row.rowId), c.row);
      }
    }
    const expectedTodos = env.expected('todos');
    expect(rows.size).toBe(expectedTodos.size + 1);
    // Per-column stamps equal the buffer's merged state exactly.
    const list = [...rows.values()];
    const stored = await env.buffer.loadRows(list.map((r) => ({ table: r.table, rowId: r.rowId })));
    list.forEach((row, i) => expect(row).toEqual(stored[i]?.state));
  });

  it('gc keeps the newest and young checkpoints', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'x' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const first = await cps.build(['todos'], { cursor: 1n, schemaVersion: 1, now: 1000 });
    const second = await cps.build(['todos'], { cursor: 1n, schemaVersion: 1, now: 2000 });
    expect(await cps.gc({ keepLast: 1, olderThanMs: 500 })).toEqual([]);
    expect(await cps.gc({ keepLast: 1, olderThanMs: 5000 })).toEqual([first.checkpointId]);
    expect(await cps.manifest(first.checkpointId)).toBeNull();
    expect((await cps.latest())?.checkpointId).toBe(second.checkpointId);
  });

  it('the newest checkpoint is the highest cursor published, whatever order builds finish in; a lake with only the old latest.json still reads it; gc removes pointers with their checkpoints', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'x' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const root = checkpointRoot(lake, env.warehouse);
    expect(await cps.latest()).toBeNull();
    const old = await cps.build(['todos'], { cursor: [1n, 4n], schemaVersion: 1, now: 1000 });
    // A lake from before pointers: only latest.json names its checkpoint.
    const pointers = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const o of env.store.list(`${root}/latest/`)) out.push(o.uri.slice(root.length + 8));
      return out.sort();
    };
    expect(await pointers()).toEqual([`00000000000000000005-${old.checkpointId}.json`]);
    await env.store.delete([`${root}/latest/00000000000000000005-${old.checkpointId}.json`]);
    await env.store.put(`${root}/latest.json`, new TextEncoder().encode(JSON.stringify({ checkpointId: old.checkpointId, cursor: old.cursor })));
    expect((await cps.latest())?.checkpointId).toBe(old.checkpointId);
    // A build from a higher cursor finishes before one from a lower cursor: the higher stays newest.
    const high = await cps.build(['todos'], { cursor: [3n, 9n], schemaVersion: 1, now: 3000 });
    const low = await cps.build(['todos'], { cursor: [2n, 9n], schemaVersion: 1, now: 4000 });
    expect((await cps.latest())?.checkpointId).toBe(high.checkpointId);
    // The old one has a manifest but no pointer: like a build about to publish, it goes once its files
    // are older than the unfinished cut-off (here: all of them, an hour later in real time).
    expect(await cps.gc({ keepLast: 1, olderThanMs: 10_000 })).toEqual([low.checkpointId]);
    expect(await cps.gc({ keepLast: 1, olderThanMs: 10_000, unfinishedOlderThanMs: Date.now() + 3_600_000 })).toEqual([old.checkpointId]);
    expect(await pointers()).toEqual([`00000000000000000012-${high.checkpointId}.json`]);
    expect((await cps.latest())?.checkpointId).toBe(high.checkpointId);
  });

  it('cuts chunks by size too: every chunk fits a Lambda response (6 MB) as JSON and as base64 protobuf', async () => {
    const env = makeLakeEnv();
    // A realistic client id (a UUID) and a 300-character title: 10,000 such rows are ~10 MB of JSON.
    const a = deltaMaker('c6f1a7d2-1b8e-4c55-9a8a-5d0b3f6e7a21');
    const title = 'x'.repeat(290);
    await env.push('c6f1a7d2-1b8e-4c55-9a8a-5d0b3f6e7a21', Array.from({ length: 10_000 }, (_, i) => a('todos', `todo-${i}`, 'insert', { title: `${title}${i}`, done: false, position: BigInt(i) })));
    const lake = env.lake();
    await lake.flush(env.source);
    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const manifest = await cps.build(['todos'], { cursor: env.source.flushed, schemaVersion: 1 });
    const service = new CheckpointService(cps, new RuleSet(null));
    let rows = 0;
    for (let i = 0; i < manifest.chunks.length; i++) {
      const proto = await service.chunk(principal('x'), manifest.checkpointId, i, 'proto');
      const json = await service.chunk(principal('x'), manifest.checkpointId, i, 'json');
      expect(Math.ceil(proto.length / 3) * 4).toBeLessThanOrEqual(4_500_000);
      expect(json.length).toBeLessThanOrEqual(4_500_000);
      expect(JSON.stringify(new TextDecoder().decode(json)).length).toBeLessThanOrEqual(5_500_000); // the body string of Lambda's JSON
      rows += decodePullResponse('proto', proto).changes.length;
    }
    expect(rows).toBe(10_000);
  });

  it('a pointer naming a checkpoint that is gone hides no other: the newest whole one is served, and gc removes the stray pointer', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'x' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const root = checkpointRoot(lake, env.warehouse);
    const whole = await cps.build(['todos'], { cursor: 1n, schemaVersion: 1, now: 5000 });
    // Left by an earlier gc that deleted a build about to publish: the highest pointer, naming nothing.
    const stray = `${root}/latest/${'0'.repeat(19)}9-000000000001000-deadbeef.json`;
    await env.store.put(stray, new TextEncoder().encode(JSON.stringify({ checkpointId: '000000000001000-deadbeef', cursor: '9' })));
    expect((await cps.latest())?.checkpointId).toBe(whole.checkpointId); // was: null (no checkpoint at all)
    expect(await cps.gc({ keepLast: 1, olderThanMs: 10_000, unfinishedOlderThanMs: 2000 })).toEqual([]);
    await expect(env.store.get(stray)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await cps.latest())?.checkpointId).toBe(whole.checkpointId);
  });
});

describe('checkpoint gc and clients still loading', () => {
  it('ages a checkpoint by when it was replaced, not built: an old one replaced minutes ago stays for a client that started loading it', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'x' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const hour = 3_600_000;
    const old = await cps.build(['todos'], { cursor: 1n, schemaVersion: 1, now: 10 * hour });
    // Two quick builds 3 hours later: the old one was the newest until then.
    const b = await cps.build(['todos'], { cursor: 1n, schemaVersion: 1, now: 13 * hour });
    await cps.build(['todos'], { cursor: 1n, schemaVersion: 1, now: 13 * hour + 60_000 });
    // Collected with the jobs' cut-off (10 minutes), 5 minutes after it was replaced: it stays.
    expect(await cps.gc({ keepLast: 2, olderThanMs: 13 * hour + 5 * 60_000 - 10 * 60_000 })).toEqual([]);
    expect(await cps.manifest(old.checkpointId)).not.toBeNull();
    // Once it has been replaced for longer than the cut-off, it goes (b is one of the two newest).
    expect(await cps.gc({ keepLast: 2, olderThanMs: 13 * hour + 20 * 60_000 - 10 * 60_000 })).toEqual([old.checkpointId]);
    expect(await cps.manifest(b.checkpointId)).not.toBeNull();
  });
});
