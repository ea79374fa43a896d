import { describe, expect, it } from 'vitest';
import { compactTable, expireSnapshots, removeOrphans } from '../../core/lake/maintenance.ts';
import { scanTable } from '../../core/lake/scan.ts';
import { deltaMaker, makeLakeEnv, pyicebergScan } from '../support/lake.ts';
import { pythonJson } from '../support/python.ts';

/**
 * Another engine writes to LakeSync's tables between flushes (pyiceberg's
 * manifests inherit sequence numbers and snapshot ids, its deletes are
 * copy-on-write): flush, compaction, expiry and orphan removal carry on.
 */
const FOREIGN = `
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table('lakesync.todos')
t.delete(EqualTo('_row_id', 't1'))
print(json.dumps({}))
`;

describe('a foreign writer in between', () => {
  it('pyiceberg deletes a row of the state table (copy-on-write); our flush, compaction, expiry and orphan removal keep the table right', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 3; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` }), a('todos', 't0', 'update', { title: `e${r}` })]);
      await env.lake().flush(env.source);
    }
    pythonJson(FOREIGN, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse })]);
    await env.push('client-a', [a('todos', 't3', 'insert', { title: 'v3' }), a('todos', 't0', 'update', { title: 'e9' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const ids = (): string[] => pyicebergScan(env, 'todos').rows.map((r) => r['_row_id'] as string).sort();
    const want = ['t0', 't2', 't3'];
    expect(ids()).toEqual(want);
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(ids()).toEqual(want);
    await expireSnapshots(lake, 'todos', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 1000 });
    expect(ids()).toEqual(want);
    await env.push('client-a', [a('todos', 't4', 'insert', { title: 'v4' })]);
    await lake.flush(env.source);
    expect(ids()).toEqual([...want, 't4']);
  });

  it('a column renamed by another engine keeps its values through compaction and scans (read by field id)', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 2; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` })]);
      await env.lake().flush(env.source);
    }
    pythonJson(RENAME, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse })]);
    const lake = env.lake();
    const names = (): Record<string, unknown> =>
      Object.fromEntries(pyicebergScan(env, 'todos').rows.map((r) => [r['_row_id'] as string, r['name']]));
    expect(names()).toEqual({ t0: 'v0', t1: 'v1' });
    const ours = await scanTable(lake, 'todos');
    expect(Object.fromEntries(ours.rows.map((r) => [r['_row_id'], r['name']]))).toEqual({ t0: 'v0', t1: 'v1' });
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(names()).toEqual({ t0: 'v0', t1: 'v1' });
  });
});

const RENAME = `
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table('lakesync.todos')
with t.update_schema() as u:
    u.rename_column('title', 'name')
print(json.dumps({}))
`;
