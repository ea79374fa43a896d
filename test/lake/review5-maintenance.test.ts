import { describe, expect, it } from 'vitest';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { removeOrphans } from '../../core/lake/maintenance.ts';
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
