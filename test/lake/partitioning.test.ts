import { describe, expect, it } from 'vitest';
import { compactTable } from '../../core/lake/maintenance.ts';
import { PY_CONV, pythonJson } from '../support/python.ts';
import { deltaMaker, makeLakeEnv, type LakeEnv } from '../support/lake.ts';

/**
 * Partitioning other than the defaults, read back by pyiceberg with filters:
 * pyiceberg prunes manifests by their partition summaries and files by their
 * partition values, so wrong bounds lose rows.
 */
const SCAN = `${PY_CONV}
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table(args['table'])
def ids(f=None):
    s = t.scan(row_filter=f) if f is not None else t.scan()
    return sorted(r['_row_id'] for r in s.to_arrow().to_pylist())
print(json.dumps({'all': ids(), **{v: ids(EqualTo('_row_id', v)) for v in args['ids']}}))
`;

function scan(env: LakeEnv, table: string, ids: string[]): Record<string, string[]> {
  return pythonJson(SCAN, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse, table: `lakesync.${table}`, ids })]);
}

// U+FF21 sorts before U+1F600 by code point (UTF-8 bytes, Iceberg's order), after it by UTF-16 code unit (JS <).
const IDS = ['\uFF21', '\u{1F600}']; // in Python's (code point) order

describe('partitioned tables', () => {
  for (const state of ['identity(_row_id)', 'truncate(1, _row_id)']) {
    it(`state partitioned by ${state}: filtered scans find every row, before and after compaction`, async () => {
      const env = makeLakeEnv();
      const lake = env.lake({ partitioning: { changes: 'hour(_hlc_time)', state } });
      const a = deltaMaker('client-a');
      await env.push('client-a', IDS.map((id) => a('todos', id, 'insert', { title: 'v1' })));
      await lake.flush(env.source);
      await env.push('client-a', IDS.map((id) => a('todos', id, 'update', { title: 'v2' })));
      await lake.flush(env.source);
      const want = { all: IDS, ...Object.fromEntries(IDS.map((id) => [id, [id]])) };
      expect(scan(env, 'todos', IDS)).toEqual(want);
      await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
      expect(scan(env, 'todos', IDS)).toEqual(want);
      expect(scan(env, 'todos_changes', IDS)).toEqual({ all: IDS.flatMap((id) => [id, id]), ...Object.fromEntries(IDS.map((id) => [id, [id, id]])) });
    });
  }
});

describe('partitioned by user columns', () => {
  it('identity(owner) on both tables: rows land in their owner\'s partition, a row that changes owner moves (its old position deleted), pyiceberg filters find each', async () => {
    const env = makeLakeEnv({
      version: 1,
      tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }, { name: 'n', type: 'integer' }] }],
    });
    const lake = env.lake({ partitioning: { changes: 'identity(owner)', state: 'identity(owner); bucket(4, n)' } });
    const a = deltaMaker('client-a');
    await env.push('client-a', [
      a('todos', 'r1', 'insert', { title: 'one', owner: 'ann', n: 1n }),
      a('todos', 'r2', 'insert', { title: 'two', owner: 'bob', n: 2n }),
      a('todos', 'r3', 'insert', { title: 'three', owner: 'a:b c/😀', n: 3n }),
    ]);
    await lake.flush(env.source);
    // r1 moves to bob; an update without owner partitions the change as null.
    await env.push('client-a', [a('todos', 'r1', 'update', { owner: 'bob' }), a('todos', 'r2', 'update', { title: 'two!' })]);
    await lake.flush(env.source);
    const OWNER = `${PY_CONV}
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo, IsNull
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
def rows(name, f):
    return sorted([r['_row_id'], r['owner']] for r in cat.load_table(name).scan(row_filter=f).to_arrow().to_pylist())
print(json.dumps({
  'bob': rows('lakesync.todos', EqualTo('owner', 'bob')),
  'ann': rows('lakesync.todos', EqualTo('owner', 'ann')),
  'odd': rows('lakesync.todos', EqualTo('owner', 'a:b c/😀')),
  'changes_null': rows('lakesync.todos_changes', IsNull('owner')),
  'specs': [[f.name, str(f.transform)] for f in cat.load_table('lakesync.todos').spec().fields],
}))
`;
    const got = pythonJson<Record<string, unknown>>(OWNER, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse })]);
    expect(got).toEqual({
      bob: [['r1', 'bob'], ['r2', 'bob']],
      ann: [],
      odd: [['r3', 'a:b c/😀']],
      changes_null: [['r2', null]],
      specs: [['owner', 'identity'], ['n_bucket', 'bucket[4]']],
    });
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(pythonJson<Record<string, unknown>>(OWNER, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse })])['bob']).toEqual([['r1', 'bob'], ['r2', 'bob']]);
  });

  it('a null value and the string "null" are different partitions (data, position deletes and compaction)', async () => {
    const env = makeLakeEnv({ version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }] }] });
    const lake = env.lake({ partitioning: { changes: 'identity(owner)', state: 'identity(owner)' } });
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'r1', 'insert', { title: 'one', owner: 'null' }), a('todos', 'r2', 'insert', { title: 'two' })]);
    await lake.flush(env.source);
    const NULLS = `${PY_CONV}
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo, IsNull
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
def rows(name, f=None):
    t = cat.load_table(name)
    s = t.scan(row_filter=f) if f is not None else t.scan()
    return sorted([r['_row_id'], r['owner'], r.get('title')] for r in s.to_arrow().to_pylist())
print(json.dumps({
  'text': rows('lakesync.todos', EqualTo('owner', 'null')),
  'null': rows('lakesync.todos', IsNull('owner')),
  'all': rows('lakesync.todos'),
  'changes_null': [r[0] for r in rows('lakesync.todos_changes', IsNull('owner'))],
}))
`;
    const read = (): Record<string, unknown> => pythonJson<Record<string, unknown>>(NULLS, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse })]);
    expect(read()).toEqual({ text: [['r1', 'null', 'one']], null: [['r2', null, 'two']], all: [['r1', 'null', 'one'], ['r2', null, 'two']], changes_null: ['r2'] });
    // Both rows change: their old positions are deleted, each in its own partition.
    await env.push('client-a', [a('todos', 'r1', 'update', { title: 'one!' }), a('todos', 'r2', 'update', { title: 'two!' })]);
    await lake.flush(env.source);
    const want = { text: [['r1', 'null', 'one!']], null: [['r2', null, 'two!']], all: [['r1', 'null', 'one!'], ['r2', null, 'two!']], changes_null: ['r1', 'r2', 'r2'] };
    expect(read()).toEqual(want);
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(read()).toEqual(want);
  });

  it.each(['day(title)', 'hour(n)', 'bucket(4, score)', 'truncate(2, done)', 'bucket(0, n)', 'truncate(0, title)', 'identity(owner); identity(owner)'])(
    'refuses %s before creating the table (the transform cannot take the column): no flush fails for ever',
    async (state) => {
      const env = makeLakeEnv({
        version: 1,
        tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }, { name: 'n', type: 'integer' }, { name: 'score', type: 'number' }, { name: 'done', type: 'boolean' }] }],
      });
      const a = deltaMaker('client-a');
      await env.push('client-a', [a('todos', 'r1', 'insert', { title: 'one', owner: 'ann', n: 1n, score: 0.5, done: true })]);
      await expect(env.lake({ partitioning: { state } }).flush(env.source)).rejects.toMatchObject({ name: 'LakeError', code: 'CORRUPT_METADATA' });
      expect(await env.catalog.loadTable({ namespace: ['lakesync'], name: 'todos' })).toBeNull();
    },
  );
});
