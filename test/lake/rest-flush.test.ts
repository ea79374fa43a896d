import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../core/adapters/fs-object-store.ts';
import { RestCatalog } from '../../core/lake/catalog/rest-catalog.ts';
import { Lake } from '../../core/lake/flush.ts';
import { compactTable } from '../../core/lake/maintenance.ts';
import { ICEBERG_REST_SETUP_TIMEOUT_MS, startIcebergRest, type IcebergRestServer } from '../support/iceberg-rest.ts';
import { LAKE_SCHEMA, deltaMaker, makeLakeEnv } from '../support/lake.ts';
import { pythonJson } from '../support/python.ts';

/**
 * The whole flush (Parquet, manifests, snapshots, position deletes) through
 * Apache Iceberg's own REST catalog server, read back by pyiceberg's
 * RestCatalog: the same lake code as the embedded default, another catalog.
 */
let server: IcebergRestServer;

beforeAll(async () => {
  server = await startIcebergRest();
}, ICEBERG_REST_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

const SCAN = `
import json, sys
from pyiceberg.catalog.rest import RestCatalog
cat = RestCatalog("rest", uri=sys.argv[1])
t = cat.load_table(sys.argv[2])
print(json.dumps([{k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in r.items() if k != '_state' and not hasattr(v, 'isoformat')} for r in t.scan().to_arrow().to_pylist()]))
`;

describe('flush through an Iceberg REST catalog', () => {
  it('lands the state and change tables; pyiceberg reads them through the same catalog', async () => {
    const env = makeLakeEnv();
    const catalog = new RestCatalog({ uri: server.uri });
    const lake = new Lake({ catalog, store: new FsObjectStore({ fsync: false }), schema: LAKE_SCHEMA, warehouse: server.warehouseUri, namespace: ['app'] });
    const a = deltaMaker('client-a');
    const batch = [];
    for (let i = 0; i < 30; i++) batch.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, position: BigInt(i) }));
    await env.push('client-a', batch);
    await lake.flush(env.source);
    const more = [];
    for (let i = 0; i < 10; i++) more.push(a('todos', `t${i}`, 'update', { title: `edited ${i}` }));
    for (let i = 10; i < 15; i++) more.push(a('todos', `t${i}`, 'delete'));
    await env.push('client-a', more);
    await lake.flush(env.source);
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });

    const rows = pythonJson<Record<string, unknown>[]>(SCAN, [server.uri, 'app.todos']);
    const expected = env.expected('todos');
    expect(new Map(rows.map((r) => [r['_row_id'], r['title']]))).toEqual(new Map([...expected].map(([id, v]) => [id, v['title']])));
    const changes = pythonJson<Record<string, unknown>[]>(SCAN, [server.uri, 'app.todos_changes']);
    expect(changes.map((r) => r['_delta_id']).sort()).toEqual(env.pushed.map((d) => d.deltaId).sort());
  });
});
