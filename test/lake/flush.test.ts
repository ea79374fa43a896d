import { describe, expect, it } from 'vitest';
import { json } from '../../core/values.ts';
import { comparable, deltaMaker, expectedComparable, makeLakeEnv, pyicebergScan } from '../support/lake.ts';

const TODO_COLUMNS = ['title', 'done', 'position', 'score', 'meta'];

describe('flush to Iceberg, read back by pyiceberg', () => {
  it('lands inserts, updates and deletes in the change table once each and the state table equal to the engine', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const b = deltaMaker('client-b');
    const first = [];
    for (let i = 0; i < 50; i++) {
      first.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, done: false, position: BigInt(i), score: i / 2, meta: json({ i }) }));
    }
    await env.push('client-a', first);
    const lake = env.lake();
    const r1 = await lake.flush(env.source);
    expect(r1.deltas).toBe(50);

    const firstState = pyicebergScan(env, 'todos');
    const firstSnapshot = BigInt(firstState.snapshots.at(-1)?.[0] ?? '0');
    expect(comparable(firstState.rows, TODO_COLUMNS)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));

    const second = [];
    for (let i = 0; i < 20; i++) second.push(b('todos', `t${i}`, 'update', { title: `edited ${i}`, done: i % 2 === 0 }));
    for (let i = 20; i < 30; i++) second.push(b('todos', `t${i}`, 'delete'));
    second.push(b('todos', 't3', 'update', { meta: null }));
    second.push(b('notes', 'n1', 'insert', { body: 'hello' }));
    await env.push('client-b', second);
    const r2 = await lake.flush(env.source);
    expect(r2.deltas).toBe(second.length);

    const state = pyicebergScan(env, 'todos');
    expect(state.rows).toHaveLength(40);
    expect(comparable(state.rows, TODO_COLUMNS)).toEqual(expectedComparable(env, 'todos', TODO_COLUMNS));
    const changes = pyicebergScan(env, 'todos_changes');
    const ids = changes.rows.map((r) => r['_delta_id']);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(env.pushed.filter((d) => d.table === 'todos').map((d) => d.deltaId)));
    const nullMeta = changes.rows.find((r) => r['_row_id'] === 't3' && r['_op'] === 'update' && (r['_set_columns'] as string[]).includes('meta'));
    expect(nullMeta?.['meta']).toBeNull();
    expect(nullMeta?.['_set_columns']).toEqual(['meta']);
    expect(pyicebergScan(env, 'notes').rows.map((r) => r['body'])).toEqual(['hello']);

    // Time travel: the first snapshot still shows the first state.
    const old = pyicebergScan(env, 'todos', firstSnapshot);
    expect(comparable(old.rows, TODO_COLUMNS)).toEqual(comparable(firstState.rows, TODO_COLUMNS));
  });
});

describe('a buffer replaced beside its lake', () => {
  it('refuses to flush (BUFFER_BEHIND_LAKE) instead of skipping deltas whose seqs the lake already holds', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', Array.from({ length: 10 }, (_, i) => a('todos', `t${i}`, 'insert', { title: `old ${i}` })));
    const lake = env.lake();
    await lake.flush(env.source);
    // The buffer is lost (a deleted buffer.sqlite, a new DynamoDB table) and a new one starts at seq 1.
    const fresh = makeLakeEnv();
    await fresh.push('client-a', Array.from({ length: 3 }, (_, i) => a('todos', `n${i}`, 'insert', { title: `new ${i}` })));
    await expect(lake.flush(fresh.source)).rejects.toMatchObject({ code: 'BUFFER_BEHIND_LAKE' });
    expect(await fresh.buffer.flushedThrough()).toBe(0n); // nothing forgotten: the new deltas wait in the buffer
    expect(pyicebergScan(env, 'todos').rows.map((r) => r['_row_id']).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`).sort());
  });
});

describe('two flushes of one buffer at once', () => {
  it('a flush that read the head before another flush landed newer deltas does not take the lake for ahead of the buffer', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 't1', 'insert', { title: 'one' })]);
    let paused = false;
    // Flush A stops after writing its files (head read: 1); meanwhile a newer delta lands and flush B takes both.
    const slow = env.lake({
      fault: async (step) => {
        if (step !== 'changes-files-written' || paused) return;
        paused = true;
        await env.push('client-a', [a('todos', 't2', 'insert', { title: 'two' })]);
        await env.lake().flush(env.source);
      },
    });
    await slow.flush(env.source);
    expect(pyicebergScan(env, 'todos').rows.map((r) => r['_row_id']).sort()).toEqual(['t1', 't2']);
  });
});
