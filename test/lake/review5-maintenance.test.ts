import { describe, expect, it } from 'vitest';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { compactTable, removeOrphans } from '../../core/lake/maintenance.ts';
import type { Schema } from '../../core/schema.ts';
import { deltaMaker, LAKE_SCHEMA, makeLakeEnv } from '../support/lake.ts';

/** Review 5: lake maintenance. */
describe('review5: maintenance', () => {
  it.fails('orphan removal of a synced table named _checkpoints leaves the checkpoints alone', async () => {
    // "_checkpoints" is a valid table name (isIdentifier), and its lake location
    // <warehouse>/lakesync/_checkpoints is the checkpoint root.
    const schema: Schema = { version: 1, tables: [...LAKE_SCHEMA.tables, { name: '_checkpoints', columns: [{ name: 'label', type: 'string' }] }] };
    const env = makeLakeEnv(schema);
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 't1', 'insert', { title: 'x' }), a('_checkpoints', 'c1', 'insert', { label: 'y' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const cps = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
    const m = await cps.build(lake.stateTables(), { cursor: env.source.flushed, schemaVersion: 1 });
    expect((await cps.latest())?.checkpointId).toBe(m.checkpointId);

    // An hour later, the lifecycle job removes orphans of every lake table.
    const report = await removeOrphans(lake, '_checkpoints', { olderThanMs: Date.now() + 3_600_000 });
    expect(report.orphans.filter((o) => !o.includes('/_checkpoints/data/') && !o.includes('/_checkpoints/metadata/'))).toEqual([]);
    expect((await cps.latest())?.checkpointId).toBe(m.checkpointId); // fails: latest.json, manifest and chunks were deleted
  });
});

describe('review5: compaction of a partitioned table', () => {
  it.fails('a second compaction with nothing new to compact rewrites nothing (day-partitioned change table)', async () => {
    const env = makeLakeEnv();
    const old = deltaMaker('client-a', Date.now() - 3 * 86_400_000);
    const recent = deltaMaker('client-a');
    for (let round = 0; round < 3; round++) {
      await env.push('client-a', [old('todos', `o${round}`, 'insert', { title: 'old' }), recent('todos', `r${round}`, 'insert', { title: 'new' })]);
      await env.lake().flush(env.source);
    }
    const lake = env.lake();
    const first = await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    expect(first.rewrittenDataFiles).toBe(6);
    expect(first.addedDataFiles).toBe(2); // one file per day partition
    // Nothing was flushed since: compaction has nothing to gain, yet it rewrites
    // every partition's file again (and would on every run, the whole history).
    const second = await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    expect(second.rewrittenDataFiles).toBe(0);
  });
});
