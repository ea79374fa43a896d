import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../core/adapters/fs-object-store.ts';
import { RestCatalog } from '../../core/lake/catalog/rest-catalog.ts';
import { Lake } from '../../core/lake/flush.ts';
import { compactTable, expireSnapshots, fileKey, removeOrphans } from '../../core/lake/maintenance.ts';
import { ICEBERG_REST_SETUP_TIMEOUT_MS, startIcebergRest, type IcebergRestServer } from '../support/iceberg-rest.ts';
import { LAKE_SCHEMA, deltaMaker, makeLakeEnv } from '../support/lake.ts';
import { pythonJson } from '../support/python.ts';

/**
 * Maintenance through Apache Iceberg's own REST catalog server. Its metadata
 * locations are spelled file:/... (Hadoop's form) while the store lists
 * file:///...: orphan removal must see them as the same files.
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
print(json.dumps(sorted(r['_row_id'] for r in t.scan().to_arrow().to_pylist())))
`;

describe('maintenance through an Iceberg REST catalog', () => {
  it('orphan removal keeps the current and earlier metadata files the catalog spells file:/...', async () => {
    const env = makeLakeEnv();
    const catalog = new RestCatalog({ uri: server.uri });
    const store = new FsObjectStore({ fsync: false });
    const lake = new Lake({ catalog, store, schema: LAKE_SCHEMA, warehouse: server.warehouseUri, namespace: ['orph'] });
    const a = deltaMaker('client-a');
    for (let r = 0; r < 3; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` }), a('todos', 't0', 'update', { title: `e${r}` })]);
      await lake.flush(env.source);
    }
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    await expireSnapshots(lake, 'todos', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    const before = await catalog.loadTable(lake.ident('todos'));
    expect(before?.metadataLocation.startsWith('file:/')).toBe(true);

    const report = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 3_600_000 });
    expect(report.orphans.filter((o) => o.endsWith('.metadata.json'))).toEqual([]);
    expect(await store.head(before?.metadataLocation as string)).not.toBeNull();
    // Still readable, by us and by pyiceberg through the catalog.
    await env.push('client-a', [a('todos', 't9', 'insert', { title: 'late' })]);
    await lake.flush(env.source);
    expect(pythonJson<string[]>(SCAN, [server.uri, 'orph.todos'])).toEqual(['t0', 't1', 't2', 't9']);
  });
});

describe('fileKey', () => {
  it('spells one file one way: file:/p, file:///p, file://localhost/p, percent-encoding; s3a:// and s3n:// as s3://', () => {
    expect(fileKey('file:/tmp/a b/x.json')).toBe('file:///tmp/a b/x.json');
    expect(fileKey('file:///tmp/a%20b/x.json')).toBe('file:///tmp/a b/x.json');
    expect(fileKey('file://localhost/tmp/x')).toBe('file:///tmp/x');
    expect(fileKey('s3a://bucket/t/data/f.parquet')).toBe('s3://bucket/t/data/f.parquet');
    expect(fileKey('s3n://bucket/k')).toBe('s3://bucket/k');
    expect(fileKey('s3://bucket/k')).toBe('s3://bucket/k');
  });
});
