import { describe, expect, it } from 'vitest';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { FanoutMarks, fanoutRootFor, type FanoutTarget } from '../../core/lake/fanout.ts';
import { LakeJobRunner, type JobResult, type JobRunnerOptions } from '../../core/lake/job-runner.ts';
import type { LakeJob } from '../../core/lake/queue.ts';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import { scanTable } from '../../core/lake/scan.ts';
import { deltaMaker, LAKE_SCHEMA, makeLakeEnv, principal, type LakeEnv } from '../support/lake.ts';

/**
 * The queue-driven lake jobs (what the AWS flush and jobs functions run) on
 * the local lake: each job re-reads its decision, so repeats, late and
 * out-of-order jobs change nothing.
 */
function runner(env: LakeEnv, opts: Partial<JobRunnerOptions> = {}): { runner: LakeJobRunner; sent: LakeJob[]; checkpoints: Checkpoints } {
  const lake = env.lake();
  const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
  const sent: LakeJob[] = [];
  const r = new LakeJobRunner({
    buffer: env.buffer,
    lake,
    checkpoints,
    schemaVersion: 1,
    jobs: { send: async (jobs) => void sent.push(...jobs) },
    checkpointEvery: 10,
    retainDeltas: 0,
    ...(opts.fanout != null ? { fanoutMarks: new FanoutMarks(env.store, fanoutRootFor(env.warehouse, lake.namespace), opts.fanout.name) } : {}),
    ...opts,
  });
  return { runner: r, sent, checkpoints };
}

async function pushTodos(env: LakeEnv, client: string, n: number, from = 0): Promise<void> {
  const d = deltaMaker(client);
  await env.push(client, Array.from({ length: n }, (_, i) => d('todos', `t${from + i}`, 'insert', { title: `todo ${from + i}` })));
}

const kind = <K extends JobResult['kind']>(r: JobResult, k: K): Extract<JobResult, { kind: K }> => {
  expect(r.kind).toBe(k);
  return r as Extract<JobResult, { kind: K }>;
};

describe('queued lake jobs', () => {
  it('flush asks for a checkpoint when due; a repeated flush is a no-op that still asks; checkpoint jobs build once and trim', async () => {
    const env = makeLakeEnv();
    const { runner: r, sent, checkpoints } = runner(env);
    await pushTodos(env, 'a', 6);
    const small = kind(await r.run({ kind: 'flush' }), 'flush');
    expect(small.flush.deltas).toBe(6);
    expect(sent).toEqual([]); // 6 < 10
    await pushTodos(env, 'a', 6, 6);
    kind(await r.run({ kind: 'flush' }), 'flush');
    expect(sent).toEqual([{ kind: 'checkpoint', cursor: '12' }]);
    // The same flush again (a redelivery, or a retry after a crash before sending): nothing to flush, the job is owed again.
    const again = kind(await r.run({ kind: 'flush' }), 'flush');
    expect(again.flush.deltas).toBe(0);
    expect(sent).toHaveLength(2);

    const first = kind(await r.run({ kind: 'checkpoint', cursor: '12' }), 'checkpoint');
    expect(first.checkpoint).not.toBeNull();
    expect(first.floor).toBe('12'); // retainDeltas 0: the buffer keeps nothing the checkpoint holds
    // The duplicate, and a scheduled refresh with nothing new: no new checkpoint.
    expect(kind(await r.run({ kind: 'checkpoint', cursor: '12' }), 'checkpoint').checkpoint).toBeNull();
    expect(kind(await r.run({ kind: 'checkpoint' }), 'checkpoint').checkpoint).toBeNull();
    expect((await checkpoints.latest())?.checkpointId).toBe(first.checkpoint);
    // A late job for an older cursor after newer data: the newest checkpoint already holds it.
    await pushTodos(env, 'b', 3, 20);
    await r.run({ kind: 'flush' });
    expect(kind(await r.run({ kind: 'checkpoint', cursor: '5' }), 'checkpoint').checkpoint).toBeNull();
    expect(kind(await r.run({ kind: 'checkpoint' }), 'checkpoint').checkpoint).not.toBeNull();
    expect((await checkpoints.latest())?.cursor).toBe('15');
  });

  it('lifecycle trims only behind the lake and the checkpoint, keeping the retained window; maintenance of a missing table is a no-op', async () => {
    const env = makeLakeEnv();
    const { runner: r } = runner(env, { retainDeltas: 4 });
    await pushTodos(env, 'a', 20);
    await r.run({ kind: 'flush' });
    // No checkpoint yet: nothing may be forgotten.
    expect(kind(await r.run({ kind: 'lifecycle' }), 'lifecycle').floor).toBe('0');
    await r.run({ kind: 'checkpoint' });
    await pushTodos(env, 'a', 5, 20); // not flushed
    expect(kind(await r.run({ kind: 'lifecycle', table: 'todos' }), 'lifecycle').floor).toBe('20');
    expect(await r.run({ kind: 'compact', table: 'notes' })).toEqual({ kind: 'compact', table: 'notes', rewritten: 0 });
    expect(await r.run({ kind: 'lifecycle', table: 'notes_changes' })).toMatchObject({ kind: 'lifecycle', expired: 0, orphans: 0 });
  });

  it('fan-out: no target, no work; with one, every entry of the range once per job; a trimmed range fails loudly', async () => {
    const env = makeLakeEnv();
    expect(await runner(env).runner.run({ kind: 'fanout', from: '0', to: '5' })).toEqual({ kind: 'fanout', delivered: 0 });
    const got: bigint[] = [];
    const target: FanoutTarget = { name: 'test', deliver: async (_range, entries) => void got.push(...entries.map((e) => e.seq)) };
    const { runner: r, sent } = runner(env, { fanout: target, retainDeltas: 1000 });
    await pushTodos(env, 'a', 1500);
    await r.run({ kind: 'flush' });
    const fan = sent.find((j) => j.kind === 'fanout');
    expect(fan).toEqual({ kind: 'fanout', from: '0', to: '1500' });
    expect(await r.run(fan as LakeJob)).toEqual({ kind: 'fanout', delivered: 1500 });
    expect(got).toEqual(Array.from({ length: 1500 }, (_, i) => BigInt(i + 1)));
    // Delivered: the same job again (a redelivery) has nothing left to give.
    expect(await r.run(fan as LakeJob)).toEqual({ kind: 'fanout', delivered: 0 });
    await r.run({ kind: 'checkpoint' }); // trims to head - 1000 = 500
    await expect(r.run({ kind: 'fanout', from: '0', to: '1500' })).resolves.toEqual({ kind: 'fanout', delivered: 0 });
    // A range lost some other way (trimmed behind the runner's back, or expired by TTL) fails loudly.
    await pushTodos(env, 'a', 10, 1500);
    await r.run({ kind: 'flush' });
    await env.buffer.trim(1510n);
    await expect(r.run({ kind: 'fanout', from: '1500', to: '1510' })).rejects.toThrow(/trimmed/);
  });

  it('fan-out owed by a flush that died before asking is asked for by the next flush, and trim never passes what was not delivered', async () => {
    const env = makeLakeEnv();
    const got: bigint[] = [];
    const target: FanoutTarget = { name: 'test', deliver: async (_range, entries) => void got.push(...entries.map((e) => e.seq)) };
    let sendFails = true;
    const { runner: r, sent } = runner(env, {
      fanout: target,
      retainDeltas: 0,
      checkpointEvery: 1,
      jobs: { send: async (jobs) => (sendFails ? Promise.reject(new Error('queue down')) : void sent.push(...jobs)) },
    });
    await pushTodos(env, 'a', 30);
    await expect(r.run({ kind: 'flush' })).rejects.toThrow(/queue down/); // committed, then died sending its follow-ups
    sendFails = false;
    const again = kind(await r.run({ kind: 'flush' }), 'flush');
    expect(again.flush.deltas).toBe(0);
    expect(sent).toEqual([
      { kind: 'checkpoint', cursor: '30' },
      { kind: 'fanout', from: '0', to: '30' },
    ]);
    // The checkpoint holds everything, retainDeltas is 0, but nothing was delivered yet: nothing is trimmed.
    expect(kind(await r.run({ kind: 'checkpoint', cursor: '30' }), 'checkpoint').floor).toBe('0');
    expect(await r.run({ kind: 'fanout', from: '0', to: '30' })).toEqual({ kind: 'fanout', delivered: 30 });
    expect(got).toHaveLength(30);
    expect(kind(await r.run({ kind: 'lifecycle' }), 'lifecycle').floor).toBe('30');
    // Caught up: a flush owes nothing.
    sent.length = 0;
    await r.run({ kind: 'flush' });
    expect(sent).toEqual([]);
  });

  it('over 3 shards: flush, checkpoint, trim and fan-out go shard by shard, and the checkpoint cursor names every shard', async () => {
    const env = makeLakeEnv();
    const shards = new BufferShards([new MemoryBuffer(), new MemoryBuffer(), new MemoryBuffer()]);
    expect([shards.shardOf('todos'), shards.shardOf('notes')]).toEqual([2, 1]);
    const gateway = new Gateway({ buffer: shards, schema: LAKE_SCHEMA, rules: null, clock: new HybridLogicalClock({ maxDriftMs: 60_000 }) });
    const d = deltaMaker('a');
    const deltas = [
      ...Array.from({ length: 8 }, (_, i) => d('todos', `t${i}`, 'insert', { title: `todo ${i}` })),
      ...Array.from({ length: 5 }, (_, i) => d('notes', `n${i}`, 'insert', { body: `note ${i}` })),
      d('todos', 't1', 'update', { title: 'edited' }),
    ];
    await gateway.push(principal('a'), { clientId: 'a', schemaVersion: 1, deltas });
    const fanned: string[] = [];
    const target: FanoutTarget = { name: 'test', deliver: async (range, entries) => void fanned.push(...entries.map((e) => `${range.shard}:${e.seq}`)) };
    const { runner: r, sent, checkpoints } = runner(env, { buffer: shards, fanout: target });

    const flushed = kind(await r.run({ kind: 'flush' }), 'flush');
    expect(flushed.flush).toMatchObject({ from: '0.0.0', to: '0.5.9', deltas: 14 });
    expect(await shards.flushed()).toEqual([0n, 5n, 9n]);
    expect(sent).toEqual([
      { kind: 'checkpoint', cursor: '0.5.9' }, // 14 flushed >= 10
      { kind: 'fanout', from: '0', to: '5', shard: '1' },
      { kind: 'fanout', from: '0', to: '9', shard: '2' },
    ]);
    const lake = env.lake();
    const titles = (await scanTable(lake, 'todos')).rows.map((row) => row['title']).sort();
    expect(titles).toEqual(['edited', 'todo 0', 'todo 2', 'todo 3', 'todo 4', 'todo 5', 'todo 6', 'todo 7']);
    expect((await scanTable(lake, 'notes')).rows).toHaveLength(5);

    for (const job of sent.filter((j) => j.kind === 'fanout')) await r.run(job);
    expect(fanned.sort()).toEqual([...[1, 2, 3, 4, 5].map((s) => `1:${s}`), ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((s) => `2:${s}`)].sort());

    const cp = kind(await r.run({ kind: 'checkpoint', cursor: '0.5.9' }), 'checkpoint');
    expect(cp.checkpoint).not.toBeNull();
    expect((await checkpoints.latest())?.cursor).toBe('0.5.9');
    expect(cp.floor).toBe('0.5.9'); // retainDeltas 0: each shard forgets what the lake and the checkpoint hold
    await expect(r.run({ kind: 'checkpoint', cursor: '5.9' })).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
    expect(await r.run({ kind: 'fanout', from: '0', to: '5', shard: '1' })).toEqual({ kind: 'fanout', delivered: 0 }); // delivered before
    await expect(r.run({ kind: 'fanout', from: '0', to: '5', shard: '7' })).rejects.toThrow(/shard 7/);
  });

  it('lifecycle calls trim even with nothing to forget (a TTL buffer raises its floor over expiring items there)', async () => {
    const env = makeLakeEnv();
    const trims: bigint[] = [];
    const buffer = new Proxy(env.buffer, {
      get(target, prop, receiver) {
        if (prop === 'trim') return (upTo: bigint) => (trims.push(upTo), target.trim(upTo));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const { runner: r } = runner(env, { buffer, retainDeltas: 100_000 });
    await pushTodos(env, 'a', 5);
    await r.run({ kind: 'lifecycle' }); // no checkpoint, head below the retained window
    expect(trims).toEqual([0n]);
  });

  it('fan-out marks only rise, also when jobs for overlapping ranges finish out of order', async () => {
    const env = makeLakeEnv();
    const marks = new FanoutMarks(env.store, fanoutRootFor(env.warehouse, ['lakesync']), 'test');
    expect(await marks.get(0)).toBeNull();
    await Promise.all([marks.raise(0, 10n), marks.raise(0, 20n)]);
    expect(await marks.get(0)).toBe(20n);
    await marks.raise(0, 10n); // the slower job of the shorter range finishes last
    expect(await marks.get(0)).toBe(20n);
    expect(await marks.get(1)).toBeNull();
  });

  it('a target added after the buffer was trimmed starts at the floor instead of failing forever', async () => {
    const env = makeLakeEnv();
    await pushTodos(env, 'a', 20);
    await runner(env).runner.run({ kind: 'flush' });
    await runner(env).runner.run({ kind: 'checkpoint' }); // retainDeltas 0: floor 20
    await pushTodos(env, 'a', 5, 20);
    const got: bigint[] = [];
    const target: FanoutTarget = { name: 'late', deliver: async (_range, entries) => void got.push(...entries.map((e) => e.seq)) };
    const { runner: r, sent } = runner(env, { fanout: target });
    await r.run({ kind: 'flush' });
    const fan = sent.find((j) => j.kind === 'fanout') as LakeJob;
    expect(fan).toEqual({ kind: 'fanout', from: '20', to: '25' });
    expect(await r.run(fan)).toEqual({ kind: 'fanout', delivered: 5 });
    expect(got).toEqual([21n, 22n, 23n, 24n, 25n]);
  });
});
