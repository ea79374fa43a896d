import { describe, expect, it } from 'vitest';
import { compactTable } from '../../core/lake/maintenance.ts';
import { PY_CONV, pythonJson } from '../support/python.ts';
import { deltaMaker, makeLakeEnv, type LakeEnv } from '../support/lake.ts';

/**
 * compaction must leave every value and every file's statistics
 * as a flush would have written them: readers prune with the bounds, so
 * filtered scans must answer the same before and after.
 */
const SCAN = `${PY_CONV}
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import GreaterThanOrEqual, LessThan, EqualTo, And
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table(args['table'])
def rows(f=None):
    s = t.scan(row_filter=f) if f is not None else t.scan()
    out = [{k: conv(v) for k, v in r.items() if k != '_state'} for r in s.to_arrow().to_pylist()]
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))
filters = {
  'all': None,
  'position>=7': GreaterThanOrEqual('position', 7),
  'score<2.5': LessThan('score', 2.5),
  'row t3': EqualTo('_row_id', 't3'),
  'done': EqualTo('done', True),
  'hlc range': And(GreaterThanOrEqual('_hlc', int(args['hlcMid'])), LessThan('_hlc', int(args['hlcHi']))),
  'title': EqualTo('title', 'r2 4'),
}
print(json.dumps({k: rows(f) for k, f in filters.items()}))
`;

function scans(env: LakeEnv, table: string, hlcMid: bigint, hlcHi: bigint): Record<string, unknown[]> {
  return pythonJson(SCAN, [
    JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse, table: `lakesync.${table}`, hlcMid: hlcMid.toString(), hlcHi: hlcHi.toString() }),
  ]);
}

describe('compaction keeps values and statistics', () => {
  it('filtered pyiceberg scans answer the same before and after compaction (state and change tables)', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 4; r++) {
      const batch = [];
      for (let i = 0; i < 12; i++) {
        batch.push(
          a('todos', `t${i + r * 3}`, r === 0 ? 'insert' : 'update', {
            title: `r${r} ${i}`,
            position: BigInt(i * 3 - 5 + r),
            score: i / 2 - r,
            done: (i + r) % 3 === 0,
            meta: { json: JSON.stringify({ r, i }) },
          }),
        );
      }
      if (r > 0) batch.push(a('todos', `t${r}`, 'delete'));
      await env.push('client-a', batch);
      await env.lake().flush(env.source);
    }
    const hlcs = env.pushed.map((d) => d.hlc).sort((x, y) => (x < y ? -1 : 1));
    const mid = hlcs[Math.floor(hlcs.length / 3)] as bigint;
    const hi = hlcs[Math.floor((hlcs.length * 2) / 3)] as bigint;
    const lake = env.lake();
    for (const table of ['todos', 'todos_changes']) {
      const before = scans(env, table, mid, hi);
      const report = await compactTable(lake, table, { targetFileBytes: 1 << 20, minFileBytes: 1 << 20 });
      expect(report.rewrittenDataFiles).toBeGreaterThan(1);
      const after = scans(env, table, mid, hi);
      for (const k of Object.keys(before)) expect(after[k], `${table}: ${k}`).toEqual(before[k]);
    }
  });
});
