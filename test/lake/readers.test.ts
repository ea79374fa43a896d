import { DuckDBInstance } from '@duckdb/node-api';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Schema } from '../../core/schema.ts';
import { LAKE_SCHEMA, deltaMaker, makeLakeEnv, pyicebergScan, type LakeEnv } from '../support/lake.ts';
import { pythonJson } from '../support/python.ts';

async function dataFiles(env: LakeEnv): Promise<string[]> {
  const out: string[] = [];
  for await (const o of env.store.list(env.warehouse + '/')) if (o.uri.endsWith('.parquet')) out.push(o.uri);
  return out;
}

const PYARROW_PY = `
import json, sys
import pyarrow.parquet as pq
out = []
for uri in json.loads(sys.argv[1]):
    f = pq.ParquetFile(uri[len('file://'):])
    md = f.metadata
    ids = {f.schema.column(i).path: f.schema.column(i).max_definition_level for i in range(md.num_columns)}
    fields = {field.name: field.metadata for field in f.schema_arrow}
    out.append({
        'uri': uri,
        'rows': md.num_rows,
        'row_groups': md.num_row_groups,
        'compression': md.row_group(0).column(0).compression if md.num_row_groups else None,
        'has_stats': all(md.row_group(0).column(i).is_stats_set for i in range(md.num_columns)) if md.num_row_groups else False,
        'field_ids': {field.name: (field.metadata or {}).get(b'PARQUET:field_id', b'').decode() for field in f.schema_arrow},
        'read_rows': f.read().num_rows,
    })
print(json.dumps(out))
`;

describe('readers we did not write', () => {
  it.each([false, true])('pyarrow and DuckDB read every Parquet file: field ids, ZSTD, statistics (data page v2: %s)', async (v2) => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const batch = [];
    for (let i = 0; i < 40; i++) batch.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, done: i % 3 === 0, position: BigInt(i), score: i * 1.5 }));
    for (let i = 0; i < 10; i++) batch.push(a('todos', `t${i}`, 'update', { score: -i }));
    for (let i = 10; i < 15; i++) batch.push(a('todos', `t${i}`, 'delete'));
    await env.push('client-a', batch);
    await env.lake({ chunkDeltas: 20, parquetDataPageV2: v2 }).flush(env.source);
    // pyiceberg merges the data and delete files to the engine's state either way.
    const state = pyicebergScan(env, 'todos').rows;
    expect(new Map(state.map((r) => [r['_row_id'], r['score']]))).toEqual(
      new Map([...env.expected('todos')].map(([id, v]) => [id, v['score'] ?? null])),
    );

    const files = await dataFiles(env);
    expect(files.length).toBeGreaterThan(4);
    const info = pythonJson<{ uri: string; rows: number; compression: string; has_stats: boolean; field_ids: Record<string, string>; read_rows: number }[]>(PYARROW_PY, [
      JSON.stringify(files),
    ]);
    for (const f of info) {
      expect(f.read_rows).toBe(f.rows);
      expect(f.compression).toBe('ZSTD');
      expect(f.has_stats).toBe(true);
      for (const id of Object.values(f.field_ids)) expect(Number(id)).toBeGreaterThan(0);
    }
    const changeFile = info.find((f) => f.uri.includes('/todos_changes/'));
    expect(changeFile?.field_ids).toMatchObject({ _seq: '1', _delta_id: '2', _op: '3', _row_id: '4', _hlc_time: '7', _set_columns: '8', title: '10' });
    const deleteFile = info.find((f) => f.uri.includes('/deletes-'));
    expect(deleteFile?.field_ids).toEqual({ file_path: '2147483546', pos: '2147483545' });

    const duck = await DuckDBInstance.create(':memory:');
    const conn = await duck.connect();
    const changePaths = files.filter((f) => f.includes('/todos_changes/')).map((f) => `'${fileURLToPath(f)}'`);
    const reader = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n, count(DISTINCT _delta_id)::INTEGER AS d FROM read_parquet([${changePaths.join(',')}])`);
    expect(reader.getRowObjects()).toEqual([{ n: 55, d: 55 }]);
    conn.closeSync();
  });

  it('schema evolution: an added column gets the next field id, old rows read as null, ids never move', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'x', 'insert', { title: 'before' })]);
    await env.lake().flush(env.source);
    const before = pyicebergScan(env, 'todos');

    const v2: Schema = {
      version: 2,
      tables: LAKE_SCHEMA.tables.map((t) => (t.name === 'todos' ? { ...t, columns: [...t.columns, { name: 'due', type: 'string' }] } : t)),
    };
    const env2 = { ...env, lake: () => env.lake({ schema: v2 }) };
    // The server's schema moves to v2: a v2 engine on the same buffer accepts the new column.
    const { Gateway } = await import('../../core/engine/gateway.ts');
    const { HybridLogicalClock } = await import('../../core/hlc.ts');
    const g2 = new Gateway({ buffer: env.buffer, schema: v2, rules: null, clock: new HybridLogicalClock() });
    const d = a('todos', 'y', 'insert', { title: 'after', due: 'friday' });
    await g2.push({ clientId: 'client-a', userId: 'a', claims: {}, admin: true }, { clientId: 'client-a', schemaVersion: 2, deltas: [d] });
    env.pushed.push(d);
    // A flusher still on v1 refuses to drop the new column's values, and commits nothing.
    await expect(env.lake().flush(env.source)).rejects.toThrow(/older than the deltas/);
    expect(pyicebergScan(env, 'todos_changes').rows).toHaveLength(1);
    await env2.lake().flush(env.source);

    const after = pyicebergScan(env, 'todos');
    const fieldsBefore = new Map(before.schema.map(([id, name]) => [name, id]));
    for (const [id, name] of after.schema) if (fieldsBefore.has(name)) expect(id).toBe(fieldsBefore.get(name));
    const due = after.schema.find(([, name]) => name === 'due');
    expect(due?.[0]).toBe(Math.max(...before.schema.map(([id]) => id)) + 1);
    const rows = new Map(after.rows.map((r) => [r['_row_id'], r]));
    expect(rows.get('x')?.['due']).toBeNull();
    expect(rows.get('y')?.['due']).toBe('friday');
    const changes = pyicebergScan(env, 'todos_changes');
    expect(changes.schema.some(([, name]) => name === 'due')).toBe(true);
  });
});
