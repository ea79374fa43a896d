import { describe, expect, it } from 'vitest';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { Lake } from '../../core/lake/flush.ts';
import { LakeJobRunner } from '../../core/lake/job-runner.ts';
import type { ObjectStore } from '../../core/lake/ports.ts';
import { liveFiles } from '../../core/lake/iceberg/snapshot.ts';
import { deltaMaker, LAKE_SCHEMA, makeLakeEnv, principal, type LakeEnv } from '../support/lake.ts';

/**
 * checkpoint jobs on the standard (concurrent, at-least-once) jobs
 * queue. Two checkpoint jobs that overlap write latest.json in the order they
 * finish, not in cursor order: the slower one, which read an older flushed
 * mark, moves latest.json back after the faster one already trimmed the
 * buffer up to its newer cursor.
 */
async function pushTodos(env: LakeEnv, n: number, from: number): Promise<void> {
  const d = deltaMaker('a');
  await env.push('a', Array.from({ length: n }, (_, i) => d('todos', `t${from + i}`, 'insert', { title: `todo ${from + i}` })));
}

/** The env's store, with the first put whose URI contains `part` (default: a checkpoint's pointer) held until released. */
function gatedStore(inner: ObjectStore, part = '/_checkpoints/latest/'): { store: ObjectStore; reached: Promise<void>; release: () => void } {
  let reachedResolve!: () => void;
  let releaseResolve!: () => void;
  const reached = new Promise<void>((r) => (reachedResolve = r));
  const released = new Promise<void>((r) => (releaseResolve = r));
  let gated = false;
  const store: ObjectStore = {
    async put(uri, bytes) {
      if (!gated && uri.includes(part)) {
        gated = true;
        reachedResolve();
        await released;
      }
      return inner.put(uri, bytes);
    },
    putIfAbsent: (uri, bytes) => inner.putIfAbsent(uri, bytes),
    get: (uri) => inner.get(uri),
    head: (uri) => inner.head(uri),
    list: (prefix) => inner.list(prefix),
    delete: (uris) => inner.delete(uris),
  };
  return { store, reached, release: releaseResolve };
}

describe('concurrent checkpoint jobs', () => {
  it('the newest checkpoint never has a cursor below the buffer floor (two overlapping checkpoint jobs)', async () => {
    const env = makeLakeEnv();
    const gate = gatedStore(env.store);
    const lake = new Lake({ catalog: env.catalog, store: gate.store, schema: LAKE_SCHEMA, warehouse: env.warehouse });
    const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const runner = new LakeJobRunner({ buffer: env.buffer, lake, checkpoints, schemaVersion: 1, checkpointEvery: 10, retainDeltas: 5 });

    await pushTodos(env, 20, 0);
    await runner.run({ kind: 'flush' });
    // Job A (slow: e.g. big tables) reads flushed = 20 and builds; its pointer waits.
    const jobA = runner.run({ kind: 'checkpoint', cursor: '20' });
    await gate.reached;
    // Meanwhile 30 more deltas are flushed and job B builds at 50 and trims to 50 - 5.
    await pushTodos(env, 30, 20);
    await runner.run({ kind: 'flush' });
    await runner.run({ kind: 'checkpoint', cursor: '50' });
    gate.release();
    await jobA;

    const latest = await checkpoints.latest();
    const floor = await env.buffer.floor();
    expect(floor).toBe(45n);
    // A client that loads the newest checkpoint then pulls from its cursor:
    const pull = env.gateway.pull(principal('b'), { cursor: latest?.cursor ?? '', limit: 100 });
    await expect(pull).resolves.toBeDefined(); // was CURSOR_EXPIRED: one latest.json, moved back to 20 by A
    expect(latest?.cursor).toBe('50');
    expect(BigInt(latest?.cursor ?? '0')).toBeGreaterThanOrEqual(floor);
  });
  it('a checkpoint job while another build is under way builds nothing (each flush may ask for one); once it finished, the next one builds', async () => {
    const env = makeLakeEnv();
    const gate = gatedStore(env.store, '/manifest.json');
    const lake = new Lake({ catalog: env.catalog, store: gate.store, schema: LAKE_SCHEMA, warehouse: env.warehouse });
    const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const runner = new LakeJobRunner({ buffer: env.buffer, lake, checkpoints, schemaVersion: 1, checkpointEvery: 10, retainDeltas: 5 });
    await pushTodos(env, 20, 0);
    await runner.run({ kind: 'flush' });
    const jobA = runner.run({ kind: 'checkpoint', cursor: '20' });
    await gate.reached; // A wrote its chunks; its manifest waits
    await pushTodos(env, 20, 20);
    await runner.run({ kind: 'flush' });
    expect(await runner.run({ kind: 'checkpoint', cursor: '40' })).toMatchObject({ kind: 'checkpoint', checkpoint: null });
    gate.release();
    const a = await jobA;
    expect((await checkpoints.latest())?.cursor).toBe('20');
    const b = await runner.run({ kind: 'checkpoint', cursor: '40' });
    expect(b).toMatchObject({ kind: 'checkpoint', checkpoint: expect.any(String) });
    expect(b).not.toMatchObject({ checkpoint: (a as { checkpoint: string }).checkpoint });
    expect((await checkpoints.latest())?.cursor).toBe('40');
  });
  it('gc never deletes a checkpoint that is still being built (a build that outlasts the 10-minute cut-off)', async () => {
    const env = makeLakeEnv();
    const gate = gatedStore(env.store, '/manifest.json');
    const lake = new Lake({ catalog: env.catalog, store: gate.store, schema: LAKE_SCHEMA, warehouse: env.warehouse });
    const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    await pushTodos(env, 20, 0);
    await lake.flush(env.source);
    const t0 = Date.now();
    // Build A starts at t0 and is slow: its chunks are written, its manifest waits.
    const a = checkpoints.build(lake.stateTables(), { cursor: 20n, schemaVersion: 1, now: t0 });
    await gate.reached;
    // Two more builds finish 11 and 12 minutes later; each collects as LakeJobs and LakeJobRunner do.
    for (const minutes of [11, 12]) {
      await checkpoints.build(lake.stateTables(), { cursor: 20n, schemaVersion: 1, now: t0 + minutes * 60_000 });
      await checkpoints.gc({ keepLast: 2, olderThanMs: t0 + minutes * 60_000 - 10 * 60_000 });
    }
    gate.release();
    const built = await a;
    // A was not collected while it was built (before: its chunks were deleted, and then it was
    // published); and the checkpoint clients are sent to is whole.
    expect(built.chunks.length).toBeGreaterThan(0);
    expect(await checkpoints.chunk(built, 0)).not.toBeNull();
    const latest = await checkpoints.latest();
    for (let i = 0; i < (latest?.chunks.length ?? 0); i++) expect(await checkpoints.chunk(latest!, i)).not.toBeNull();
  });

  it('gc never deletes a checkpoint whose manifest is written but whose pointer is not yet (the newest would name a checkpoint that is gone)', async () => {
    const env = makeLakeEnv();
    const gate = gatedStore(env.store);
    const lake = new Lake({ catalog: env.catalog, store: gate.store, schema: LAKE_SCHEMA, warehouse: env.warehouse });
    const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    await pushTodos(env, 20, 0);
    await lake.flush(env.source);
    const t0 = Date.now();
    // Build A, slow (over 10 minutes), from the highest cursor: its manifest is written, its pointer waits.
    const a = checkpoints.build(lake.stateTables(), { cursor: 40n, schemaVersion: 1, now: t0 });
    await gate.reached;
    // A concurrent build finishes 12 minutes after A started and collects.
    await checkpoints.build(lake.stateTables(), { cursor: 20n, schemaVersion: 1, now: t0 + 12 * 60_000 });
    await checkpoints.gc({ keepLast: 2, olderThanMs: t0 + 2 * 60_000 });
    gate.release();
    const built = await a;
    // A is published and whole (before: gc deleted it, and its pointer then named nothing: no checkpoint at all).
    const latest = await checkpoints.latest();
    expect(latest?.checkpointId).toBe(built.checkpointId);
    for (let i = 0; i < built.chunks.length; i++) expect(await checkpoints.chunk(built, i)).not.toBeNull();
  });
});

describe('job errors', () => {
  it('a compact job on a table with a missing data file fails (it is not reported as "no table yet")', async () => {
    const env = makeLakeEnv();
    const lake = env.lake();
    const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const runner = new LakeJobRunner({ buffer: env.buffer, lake, checkpoints, schemaVersion: 1 });
    for (let r = 0; r < 3; r++) {
      await pushTodos(env, 5, r * 5);
      await runner.run({ kind: 'flush' });
    }
    // One data file of the state table is gone (a broken table: readers fail on it).
    const live = await liveFiles(env.store, (await env.catalog.loadTable(lake.ident('todos')))!.metadata);
    await env.store.delete([live.data[0]!.dataFile.filePath]);
    // LakeJobRunner.compact turns every LakeError NOT_FOUND, including the store's
    // "no object", into { rewritten: 0 }: the job is acknowledged, nothing reaches the DLQ.
    await expect(runner.run({ kind: 'compact', table: 'todos' })).rejects.toThrow(); // was: resolves { rewritten: 0 }
  });
});
