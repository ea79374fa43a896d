import { createHash } from 'node:crypto';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTableCommand, GetTableCommand, GlueClient } from '@aws-sdk/client-glue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsFetch, awsFetchOptionsOf } from '../../core/adapters/aws-fetch.ts';
import { S3FetchReader } from '../../core/adapters/aws-fetch-s3.ts';
import { GlueCatalog } from '../../core/adapters/glue-catalog.ts';
import { S3ObjectStore } from '../../core/adapters/s3-object-store.ts';
import { isLakeError } from '../../core/lake/errors.ts';
import { Lake } from '../../core/lake/flush.ts';
import { compactTable, removeOrphans } from '../../core/lake/maintenance.ts';
import type { ObjectStore, TableIdent } from '../../core/lake/ports.ts';
import type { IcebergSchema } from '../../core/lake/iceberg/types.ts';
import { json } from '../../core/values.ts';
import { LAKE_SCHEMA, comparable, deltaMaker, expectedComparable, makeLakeEnv, type LakeEnv } from '../support/lake.ts';
import { motoClientConfig, motoPyicebergProperties, startMoto, type MotoServer } from '../support/moto.ts';
import { PY_CONV, pythonJson } from '../support/python.ts';

/**
 * The AWS adapters against moto's server over real HTTP: the S3 object store,
 * the Glue catalog, and a whole flush through both, read back by pyiceberg's
 * own GlueCatalog and S3 file IO.
 */
let moto: MotoServer;
let s3: S3Client;
let glue: GlueClient;
const BUCKET = 'lakesync-test';

beforeAll(async () => {
  moto = await startMoto();
  s3 = new S3Client(motoClientConfig(moto));
  glue = new GlueClient(motoClientConfig(moto));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  s3?.destroy();
  glue?.destroy();
  await moto?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isLakeError(e) ? e.code : `not a LakeError: ${String(e)}`;
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('S3ObjectStore on moto', () => {
  const root = `s3://${BUCKET}/conformance`;

  it('puts, gets, heads; a missing object is NOT_FOUND on get and null on head', async () => {
    const store = new S3ObjectStore(s3);
    const before = Date.now() - 1000;
    await store.put(`${root}/a/one.txt`, bytes('one'));
    expect(text(await store.get(`${root}/a/one.txt`))).toBe('one');
    await store.put(`${root}/a/one.txt`, bytes('one, again'));
    expect(text(await store.get(`${root}/a/one.txt`))).toBe('one, again');
    const info = await store.head(`${root}/a/one.txt`);
    expect(info?.uri).toBe(`${root}/a/one.txt`);
    expect(info?.size).toBe(10);
    expect(info?.lastModified).toBeGreaterThan(before);
    await store.put(`${root}/a/empty`, new Uint8Array(0));
    expect((await store.get(`${root}/a/empty`)).length).toBe(0);

    expect(await store.head(`${root}/a/missing`)).toBeNull();
    expect(await codeOf(store.get(`${root}/a/missing`))).toBe('NOT_FOUND');
    // A missing bucket is a configuration error, not a missing object.
    expect(await codeOf(store.get('s3://no-such-bucket-here/x'))).toBe('STORE_ERROR');
    expect(await codeOf(store.get('file:///tmp/x'))).toBe('STORE_ERROR');
    expect(await codeOf(store.put(`${root}/dir/`, bytes('x')))).toBe('STORE_ERROR');
  });

  it('reads s3a:// and s3n:// as the same objects', async () => {
    const store = new S3ObjectStore(s3);
    await store.put(`${root}/alias/x`, bytes('x'));
    expect(text(await store.get(`s3a://${BUCKET}/conformance/alias/x`))).toBe('x');
    expect((await store.head(`s3n://${BUCKET}/conformance/alias/x`))?.size).toBe(1);
    expect((await collect(store.list(`s3a://${BUCKET}/conformance/alias/`))).map((o) => o.uri)).toEqual([
      `s3a://${BUCKET}/conformance/alias/x`,
    ]);
  });

  it('lists by prefix across pages, in key order', async () => {
    const store = new S3ObjectStore(s3, { listPageSize: 2 });
    const keys = ['l/a/1', 'l/a/2', 'l/a/3/x', 'l/ab', 'l/b', 'l/a/0', 'l/ä'];
    for (const k of keys) await store.put(`${root}/${k}`, bytes(k));
    const all = await collect(store.list(`${root}/l/`));
    expect(all.map((o) => o.uri)).toEqual(['l/a/0', 'l/a/1', 'l/a/2', 'l/a/3/x', 'l/ab', 'l/b', 'l/ä'].map((k) => `${root}/${k}`));
    expect(all.find((o) => o.uri.endsWith('l/a/3/x'))?.size).toBe(7);
    expect((await collect(store.list(`${root}/l/a`))).length).toBe(5);
    expect((await collect(store.list(`${root}/l/a/`))).length).toBe(4);
    expect(await collect(store.list(`${root}/nothing/`))).toEqual([]);
    // The http function's fetch reader lists the same (it reads checkpoint pointers this way).
    const reader = new S3FetchReader(new AwsFetch(await awsFetchOptionsOf(s3, 's3')), 2);
    await store.put(`${root}/l/a&b <c>`, bytes('x'));
    const read = await collect(reader.list(`${root}/l/`));
    expect(read).toEqual(await collect(store.list(`${root}/l/`)));
    expect(read.map((o) => o.uri)).toContain(`${root}/l/a&b <c>`);
    expect((await collect(reader.list(`${root}/l/a/`))).length).toBe(4);
    expect(await collect(reader.list(`${root}/nothing/`))).toEqual([]);
  });

  it('deletes in batches of 1000; missing objects are not an error', async () => {
    const store = new S3ObjectStore(s3);
    const present = [`${root}/d/1`, `${root}/d/2`, `${root}/d/3`];
    for (const u of present) await store.put(u, bytes('x'));
    await store.put(`${root}/d/keep`, bytes('x'));
    const missing = Array.from({ length: 2500 }, (_, i) => `${root}/d/missing-${i}`);
    await store.delete([...missing.slice(0, 1200), ...present, ...missing.slice(1200), present[0] as string]);
    expect((await collect(store.list(`${root}/d/`))).map((o) => o.uri)).toEqual([`${root}/d/keep`]);
    await store.delete([]);
  });

  it('putIfAbsent writes once, then answers false and leaves the object alone', async () => {
    const store = new S3ObjectStore(s3);
    const uri = `${root}/once/marker`;
    expect(await store.putIfAbsent(uri, bytes('first'))).toBe(true);
    expect(await store.putIfAbsent(uri, bytes('second'))).toBe(false);
    expect(text(await store.get(uri))).toBe('first');
    // Racing writers: exactly one wins.
    const race = `${root}/once/race`;
    const wins = await Promise.all(Array.from({ length: 6 }, (_, i) => store.putIfAbsent(race, bytes(`w${i}`))));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(text(await store.get(race))).toBe(`w${wins.indexOf(true)}`);
  });

  it('puts 40 MiB as a multipart upload and reads it back intact', async () => {
    const store = new S3ObjectStore(s3);
    const big = new Uint8Array(40 * 1024 * 1024 + 12345);
    let x = 0x9e3779b9;
    for (let i = 0; i < big.length; i += 4) {
      // xorshift: incompressible, and a misplaced part shows.
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      big[i] = x & 0xff;
      big[i + 1] = (x >>> 8) & 0xff;
      big[i + 2] = (x >>> 16) & 0xff;
      big[i + 3] = (x >>> 24) & 0xff;
    }
    const uri = `${root}/big/file.parquet`;
    await store.put(uri, big);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'conformance/big/file.parquet' }));
    // A multipart ETag ends in -<parts>: 40 MiB in 8 MiB parts is 6.
    expect(head.ETag).toMatch(/-6"?$/);
    const back = await store.get(uri);
    expect(back.length).toBe(big.length);
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    expect(sha(back)).toBe(sha(big));
  });
});

const SCHEMA: IcebergSchema = {
  type: 'struct',
  'schema-id': 0,
  fields: [
    { id: 1, name: 'id', required: true, type: 'string' },
    { id: 2, name: 'n', required: false, type: 'long', doc: 'a number' },
    { id: 3, name: 'tags', required: false, type: { type: 'list', 'element-id': 4, element: 'string', 'element-required': true } },
  ],
};

function glueCatalog(store: ObjectStore = new S3ObjectStore(s3)): GlueCatalog {
  return new GlueCatalog(glue, store, {});
}

async function createTable(catalog: GlueCatalog, ident: TableIdent): Promise<void> {
  await catalog.createNamespace(ident.namespace);
  await catalog.createTable(ident, { schema: SCHEMA, spec: { 'spec-id': 0, fields: [] }, location: `s3://${BUCKET}/glue/${ident.namespace[0]}/${ident.name}` });
}

async function setProperty(catalog: GlueCatalog, ident: TableIdent, key: string, value: string): Promise<void> {
  await catalog.commitTable(ident, [], [{ action: 'set-properties', updates: { [key]: value } }]);
}

describe('GlueCatalog on moto', () => {
  it('creates namespaces idempotently and refuses what Glue cannot hold', async () => {
    const catalog = glueCatalog();
    await catalog.createNamespace(['ns_one']);
    await catalog.createNamespace(['ns_one']);
    expect(await catalog.listNamespaces()).toContainEqual(['ns_one']);
    expect(await codeOf(catalog.createNamespace(['a', 'b']))).toBe('CATALOG_ERROR');
    expect(await codeOf(catalog.createNamespace([]))).toBe('CATALOG_ERROR');
    expect(await codeOf(catalog.createNamespace(['Upper']))).toBe('CATALOG_ERROR');
    expect(await codeOf(catalog.loadTable({ namespace: ['ns_one'], name: 'CamelCase' }))).toBe('CATALOG_ERROR');
    expect(await catalog.listTables(['no_such_db'])).toEqual([]);
  });

  it('creates, loads, lists, commits and drops a table laid out as Iceberg expects in Glue', async () => {
    const catalog = glueCatalog();
    const ident = { namespace: ['ns_two'], name: 'things' };
    expect(await catalog.loadTable(ident)).toBeNull();
    await createTable(catalog, ident);
    expect(await codeOf(createTable(catalog, ident))).toBe('ALREADY_EXISTS');

    // A plain Glue table beside it is not listed, and loading it says why.
    await glue.send(new CreateTableCommand({ DatabaseName: 'ns_two', TableInput: { Name: 'hive_table', Parameters: { classification: 'csv' } } }));
    expect(await catalog.listTables(['ns_two'])).toEqual([ident]);
    expect(await codeOf(catalog.loadTable({ namespace: ['ns_two'], name: 'hive_table' }))).toBe('CATALOG_ERROR');

    const first = await catalog.loadTable(ident);
    expect(first?.metadata.location).toBe(`s3://${BUCKET}/glue/ns_two/things`);
    expect(first?.metadataLocation).toMatch(/^s3:\/\/lakesync-test\/glue\/ns_two\/things\/metadata\/00000-[0-9a-f-]+\.metadata\.json$/);

    await catalog.commitTable(ident, [], [{ action: 'set-properties', updates: { owner: 'me' } }]);
    const second = await catalog.loadTable(ident);
    expect(second?.metadata.properties['owner']).toBe('me');
    expect(second?.metadataLocation).toMatch(/\/00001-[0-9a-f-]+\.metadata\.json$/);

    const raw = (await glue.send(new GetTableCommand({ DatabaseName: 'ns_two', Name: 'things' }))).Table;
    expect(raw?.TableType).toBe('EXTERNAL_TABLE');
    expect(raw?.Parameters).toMatchObject({
      table_type: 'ICEBERG',
      metadata_location: second?.metadataLocation,
      previous_metadata_location: first?.metadataLocation,
    });
    expect(raw?.StorageDescriptor?.Location).toBe(`s3://${BUCKET}/glue/ns_two/things`);
    expect(raw?.StorageDescriptor?.Columns?.map((c) => [c.Name, c.Type, c.Parameters?.['iceberg.field.id']])).toEqual([
      ['id', 'string', '1'],
      ['n', 'bigint', '2'],
      ['tags', 'array<string>', '3'],
    ]);

    await catalog.dropTable(ident);
    await catalog.dropTable(ident);
    expect(await catalog.loadTable(ident)).toBeNull();
    expect(await catalog.listTables(['ns_two'])).toEqual([]);
  });

  it('a writer whose base moved during its commit gets COMMIT_CONFLICT, and its retry lands on top', async () => {
    const ident = { namespace: ['ns_three'], name: 'contested' };
    const a = glueCatalog();
    await createTable(a, ident);
    // Writer b stalls after writing its metadata file, until a has committed.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let stalled!: () => void;
    const stalling = new Promise<void>((r) => (stalled = r));
    const inner = new S3ObjectStore(s3);
    const slow: ObjectStore = {
      put: async (uri, b) => {
        await inner.put(uri, b);
        if (uri.endsWith('.metadata.json')) {
          stalled();
          await gate;
        }
      },
      putIfAbsent: (uri, b) => inner.putIfAbsent(uri, b),
      get: (uri) => inner.get(uri),
      head: (uri) => inner.head(uri),
      list: (prefix) => inner.list(prefix),
      delete: (uris) => inner.delete(uris),
    };
    const b = glueCatalog(slow);
    const bCommit = codeOf(setProperty(b, ident, 'b', '1'));
    await stalling;
    await setProperty(a, ident, 'a', '1');
    release();
    expect(await bCommit).toBe('COMMIT_CONFLICT');
    expect((await a.loadTable(ident))?.metadata.properties).toMatchObject({ a: '1' });
    expect((await a.loadTable(ident))?.metadata.properties['b']).toBeUndefined();
    // The retry reads the new base and lands on top of a's commit.
    await setProperty(glueCatalog(), ident, 'b', '1');
    expect((await a.loadTable(ident))?.metadata.properties).toMatchObject({ a: '1', b: '1' });
  });

  it('concurrent writers that retry on conflict lose no update', async () => {
    const ident = { namespace: ['ns_three'], name: 'busy' };
    await createTable(glueCatalog(), ident);
    let conflicts = 0;
    const writer = async (w: number): Promise<void> => {
      const catalog = glueCatalog();
      for (let i = 0; i < 4; i++) {
        for (;;) {
          try {
            await setProperty(catalog, ident, `w${w}.${i}`, 'x');
            break;
          } catch (e) {
            if (!isLakeError(e, 'COMMIT_CONFLICT')) throw e;
            conflicts++;
          }
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    const table = await glueCatalog().loadTable(ident);
    const keys = Object.keys(table?.metadata.properties ?? {}).filter((k) => k.startsWith('w'));
    expect(keys.sort()).toEqual([0, 1, 2, 3].flatMap((w) => [0, 1, 2, 3].map((i) => `w${w}.${i}`)).sort());
    // Every success is one metadata version: 16 commits on top of the create.
    expect(table?.metadataLocation).toMatch(/\/00016-[0-9a-f-]+\.metadata\.json$/);
    expect(table?.metadata['metadata-log']).toHaveLength(16);
    // The four start together, so their first commits race: the test is not vacuous.
    expect(conflicts).toBeGreaterThan(0);
  });
});

const SCAN = `${PY_CONV}
import json, sys
from pyiceberg.catalog.glue import GlueCatalog
args = json.loads(sys.argv[1])
cat = GlueCatalog('glue', **args['properties'])
out = {}
for name in args['tables']:
    t = cat.load_table(name)
    rows = t.scan().to_arrow().to_pylist()
    out[name] = [{k: conv(v) for k, v in r.items()} for r in rows]
out['namespaces'] = [list(n) for n in cat.list_namespaces()]
out['tables'] = [list(t) for t in cat.list_tables('lakesync')]
print(json.dumps(out))
`;

const TODO_COLUMNS = ['title', 'done', 'position', 'score', 'meta'];
const comparableTodo = (rows: Record<string, unknown>[]): Map<string, Record<string, unknown>> => comparable(rows, TODO_COLUMNS);
const expectedTodo = (env: LakeEnv, table: string): Map<string, Record<string, unknown>> => expectedComparable(env, table, TODO_COLUMNS);

describe('flush to S3 through the Glue catalog, read back by pyiceberg', () => {
  it('lands inserts, updates and deletes; pyiceberg GlueCatalog scans state and change tables equal to the engine', async () => {
    const env = makeLakeEnv();
    const store = new S3ObjectStore(s3);
    const lake = new Lake({ catalog: new GlueCatalog(glue, store), store, schema: LAKE_SCHEMA, warehouse: `s3://${BUCKET}/warehouse` });
    const a = deltaMaker('client-a');
    const b = deltaMaker('client-b');
    const first = [];
    for (let i = 0; i < 40; i++) {
      first.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, done: false, position: BigInt(i), score: i / 2, meta: json({ i }) }));
    }
    first.push(a('notes', 'n1', 'insert', { body: 'hello' }));
    await env.push('client-a', first);
    expect((await lake.flush(env.source)).deltas).toBe(first.length);

    const second = [];
    for (let i = 0; i < 15; i++) second.push(b('todos', `t${i}`, 'update', { title: `edited ${i}`, done: i % 2 === 0 }));
    for (let i = 15; i < 25; i++) second.push(b('todos', `t${i}`, 'delete'));
    second.push(b('todos', 't3', 'update', { meta: null }));
    second.push(b('notes', 'n1', 'delete'));
    await env.push('client-b', second);
    expect((await lake.flush(env.source)).deltas).toBe(second.length);

    // Maintenance on S3: compaction rewrites, orphan removal lists and deletes.
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    const todos = await lake.catalog.loadTable(lake.ident('todos'));
    const orphan = `${todos?.metadata.location}/data/orphan-${crypto.randomUUID()}.parquet`;
    await store.put(orphan, bytes('not referenced'));
    const removed = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 60_000 });
    expect(removed.orphans).toContain(orphan);
    expect(await store.head(orphan)).toBeNull();

    const scanned = pythonJson<Record<string, Record<string, unknown>[]> & { namespaces: string[][]; tables: string[][] }>(SCAN, [
      JSON.stringify({
        properties: motoPyicebergProperties(moto),
        tables: ['lakesync.todos', 'lakesync.todos_changes', 'lakesync.notes', 'lakesync.notes_changes'],
      }),
    ]);
    expect(scanned.namespaces).toContainEqual(['lakesync']);
    expect(scanned.tables.map((t) => t[1]).sort()).toEqual(['notes', 'notes_changes', 'todos', 'todos_changes']);

    const state = scanned['lakesync.todos'] ?? [];
    expect(state).toHaveLength(30);
    expect(comparableTodo(state)).toEqual(expectedTodo(env, 'todos'));
    expect(scanned['lakesync.notes']).toEqual([]);

    const changes = scanned['lakesync.todos_changes'] ?? [];
    const ids = changes.map((r) => r['_delta_id']);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(env.pushed.filter((d) => d.table === 'todos').map((d) => d.deltaId)));
    const nullMeta = changes.find((r) => r['_row_id'] === 't3' && r['_op'] === 'update' && (r['_set_columns'] as string[]).includes('meta'));
    expect(nullMeta?.['meta']).toBeNull();
    expect((scanned['lakesync.notes_changes'] ?? []).map((r) => r['_op']).sort()).toEqual(['delete', 'insert']);
  });
});
