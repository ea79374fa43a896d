import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitWithRetry } from '../../core/lake/catalog/commit.ts';
import { RestCatalog } from '../../core/lake/catalog/rest-catalog.ts';
import { isLakeError, type LakeError } from '../../core/lake/errors.ts';
import { currentSchema, currentSnapshot, type TableRequirement } from '../../core/lake/iceberg/metadata.ts';
import type { IcebergSchema, PartitionSpec, Snapshot } from '../../core/lake/iceberg/types.ts';
import type { CreateTableRequest, LoadedTable, TableIdent } from '../../core/lake/ports.ts';
import { ICEBERG_REST_SETUP_TIMEOUT_MS, startIcebergRest, type IcebergRestServer } from '../support/iceberg-rest.ts';
import { pythonJson } from '../support/python.ts';

/**
 * The REST catalog client against Apache Iceberg's own REST catalog server
 * (Java, JdbcCatalog on SQLite), and pyiceberg reading what we committed.
 * Commits are metadata-only: the server never opens a manifest list on
 * add-snapshot, so snapshots point at files that do not exist.
 */
let server: IcebergRestServer;
let catalog: RestCatalog;

beforeAll(async () => {
  server = await startIcebergRest();
  catalog = new RestCatalog({ uri: server.uri });
}, ICEBERG_REST_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

const SCHEMA: IcebergSchema = {
  type: 'struct',
  'schema-id': 0,
  'identifier-field-ids': [1],
  fields: [
    { id: 1, name: 'id', required: true, type: 'string' },
    { id: 2, name: 'n', required: false, type: 'long' },
    { id: 3, name: 'at', required: false, type: 'timestamptz' },
  ],
};
const SPEC: PartitionSpec = { 'spec-id': 0, fields: [{ 'source-id': 3, 'field-id': 1000, name: 'at_day', transform: 'day' }] };

function request(properties: Record<string, string> = {}): CreateTableRequest {
  return { schema: SCHEMA, spec: SPEC, properties, location: '/ignored' };
}

async function freshTable(name: string, properties: Record<string, string> = {}): Promise<LoadedTable> {
  await catalog.createNamespace(['lake']);
  return catalog.createTable({ namespace: ['lake'], name }, request(properties));
}

/** A snapshot on top of the table's main branch (metadata only). */
function nextSnapshot(table: LoadedTable, id: bigint, summary: Record<string, string> = {}): Snapshot {
  const parent = currentSnapshot(table.metadata);
  return {
    'snapshot-id': id,
    ...(parent === undefined ? {} : { 'parent-snapshot-id': parent['snapshot-id'] }),
    'sequence-number': table.metadata['last-sequence-number'] + 1n,
    'timestamp-ms': Math.max(Date.now(), table.metadata['last-updated-ms']),
    'manifest-list': `${table.metadata.location}/metadata/snap-${id}-1-none.avro`,
    summary: { operation: 'append', ...summary },
    'schema-id': table.metadata['current-schema-id'],
  };
}

function appendChange(table: LoadedTable, id: bigint, summary: Record<string, string> = {}) {
  const requirements: TableRequirement[] = [
    { type: 'assert-table-uuid', uuid: table.metadata['table-uuid'] },
    { type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': table.metadata.refs['main']?.['snapshot-id'] ?? null },
  ];
  return {
    requirements,
    updates: [
      { action: 'add-snapshot' as const, snapshot: nextSnapshot(table, id, summary) },
      { action: 'set-snapshot-ref' as const, 'ref-name': 'main', 'snapshot-id': id, type: 'branch' as const },
    ],
  };
}

/** The parent chain of main, newest first. */
function history(table: LoadedTable): bigint[] {
  const out: bigint[] = [];
  let s = currentSnapshot(table.metadata);
  while (s !== undefined) {
    out.push(s['snapshot-id']);
    const parent = s['parent-snapshot-id'];
    s = parent === undefined ? undefined : table.metadata.snapshots.find((x) => x['snapshot-id'] === parent);
  }
  return out;
}

async function expectLakeError(p: Promise<unknown>, code: LakeError['code']): Promise<LakeError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(isLakeError(e, code), `expected ${code}, got ${String(e)}`).toBe(true);
  return e as LakeError;
}

describe('namespaces and tables', () => {
  it('creates namespaces idempotently, including multi-level ones', async () => {
    await catalog.createNamespace(['lake']);
    await catalog.createNamespace(['lake']);
    await catalog.createNamespace(['org']);
    await catalog.createNamespace(['org', 'team a']);
    const all = await catalog.listNamespaces();
    expect(all).toContainEqual(['lake']);
    expect(all).toContainEqual(['org']);

    // %1F-joined levels and an escaped space in one path segment.
    const ident: TableIdent = { namespace: ['org', 'team a'], name: 'events 2' };
    const created = await catalog.createTable(ident, request());
    expect(created.ident).toEqual(ident);
    expect(await catalog.listTables(['org', 'team a'])).toEqual([ident]);
    expect((await catalog.loadTable(ident))?.metadata['table-uuid']).toBe(created.metadata['table-uuid']);
  });

  it('creates, lists, loads and drops a table', async () => {
    const ident: TableIdent = { namespace: ['lake'], name: 'todos' };
    const created = await freshTable('todos', { 'lakesync.table': 'todos' });
    expect(created.metadata['format-version']).toBe(2);
    expect(created.metadataLocation).toContain('/lake/todos/metadata/');
    expect(created.metadata.location).toBe(`${server.warehouseUri}/lake/todos`);
    expect(created.metadataLocation.startsWith(`file:${server.warehouse}/lake/todos/metadata/`)).toBe(true);
    expect(currentSchema(created.metadata).fields.map((f) => [f.id, f.name])).toEqual([
      [1, 'id'],
      [2, 'n'],
      [3, 'at'],
    ]);
    expect(created.metadata['partition-specs'][0]?.fields).toEqual(SPEC.fields);
    expect(created.metadata.properties['lakesync.table']).toBe('todos');
    expect(created.metadata['current-snapshot-id']).toBeUndefined(); // -1 on the wire
    expect(created.metadata.refs).toEqual({});

    expect(await catalog.listTables(['lake'])).toContainEqual(ident);
    const loaded = await catalog.loadTable(ident);
    expect(loaded?.metadataLocation).toBe(created.metadataLocation);
    expect(loaded?.metadata['table-uuid']).toBe(created.metadata['table-uuid']);

    await expectLakeError(catalog.createTable(ident, request()), 'ALREADY_EXISTS');
    // (Creating in a missing namespace is a 404 in the spec, but the fixture's JdbcCatalog allows it.)
    await expectLakeError(catalog.listTables(['nowhere']), 'NOT_FOUND');

    await catalog.dropTable(ident);
    expect(await catalog.loadTable(ident)).toBeNull();
    expect(await catalog.listTables(['lake'])).not.toContainEqual(ident);
    await expectLakeError(catalog.dropTable(ident), 'NOT_FOUND');
  });

  it('reports the server message for a rejected request', async () => {
    const t = await freshTable('rejected');
    const stale = { ...nextSnapshot(t, 42n), 'timestamp-ms': 1 };
    const e = await expectLakeError(
      catalog.commitTable(t.ident, [], [{ action: 'add-snapshot', snapshot: stale }]),
      'CATALOG_ERROR',
    );
    expect(e.message).toMatch(/400 IllegalArgumentException: Invalid update timestamp/);
  });
});

describe('commits', () => {
  it('sets and removes properties', async () => {
    const t = await freshTable('props', { a: '1', b: '2' });
    const after = await catalog.commitTable(
      t.ident,
      [{ type: 'assert-table-uuid', uuid: t.metadata['table-uuid'] }],
      [
        { action: 'set-properties', updates: { a: 'one', c: '3' } },
        { action: 'remove-properties', removals: ['b'] },
      ],
    );
    expect(after.metadataLocation).not.toBe(t.metadataLocation);
    expect(after.metadata.properties).toMatchObject({ a: 'one', c: '3' });
    expect(after.metadata.properties['b']).toBeUndefined();
    expect((await catalog.loadTable(t.ident))?.metadata.properties).toEqual(after.metadata.properties);

    await expectLakeError(
      catalog.commitTable(t.ident, [{ type: 'assert-table-uuid', uuid: '00000000-0000-0000-0000-000000000000' }], []),
      'COMMIT_CONFLICT',
    );
    await expectLakeError(catalog.commitTable({ namespace: ['lake'], name: 'missing' }, [], []), 'NOT_FOUND');
  });

  it('evolves the schema', async () => {
    const t = await freshTable('evolve');
    const evolved: IcebergSchema = {
      ...SCHEMA,
      'schema-id': 1,
      fields: [...SCHEMA.fields, { id: 4, name: 'tags', required: false, type: { type: 'list', 'element-id': 5, element: 'string', 'element-required': false } }],
    };
    const after = await catalog.commitTable(
      t.ident,
      [
        { type: 'assert-current-schema-id', 'current-schema-id': 0 },
        { type: 'assert-last-assigned-field-id', 'last-assigned-field-id': 3 },
      ],
      [
        { action: 'add-schema', schema: evolved, 'last-column-id': 5 },
        { action: 'set-current-schema', 'schema-id': -1 },
      ],
    );
    expect(after.metadata['current-schema-id']).toBe(1);
    expect(after.metadata['last-column-id']).toBe(5);
    expect(currentSchema(after.metadata).fields.map((f) => f.name)).toEqual(['id', 'n', 'at', 'tags']);
    expect(after.metadata.schemas).toHaveLength(2);

    // The same evolution again: the schema moved on, so its requirement fails.
    await expectLakeError(
      catalog.commitTable(t.ident, [{ type: 'assert-current-schema-id', 'current-schema-id': 0 }], []),
      'COMMIT_CONFLICT',
    );
  });

  it('keeps 64-bit snapshot ids exact', async () => {
    const t = await freshTable('big-ids');
    const first = 9_007_199_254_740_993_123n; // far above 2^53, not representable as a double
    const second = (1n << 63n) - 25n;
    expect(Number(first) === Number(first + 1n)).toBe(true); // what JSON.parse would do to it
    const a = await catalog.commitTable(t.ident, appendChange(t, first).requirements, appendChange(t, first).updates);
    expect(a.metadata['current-snapshot-id']).toBe(first);
    expect(a.metadata.refs['main']?.['snapshot-id']).toBe(first);
    const b = await catalog.commitTable(t.ident, appendChange(a, second).requirements, appendChange(a, second).updates);
    const loaded = await catalog.loadTable(t.ident);
    for (const m of [b, loaded]) {
      expect(m?.metadata['current-snapshot-id']).toBe(second);
      expect(m && history(m)).toEqual([second, first]);
      expect(m?.metadata['last-sequence-number']).toBe(2n);
      expect(m?.metadata['snapshot-log'].map((e) => e['snapshot-id'])).toEqual([first, second]);
    }
    // Requirements carry bigints too: asserting the old head conflicts, the new one passes.
    await expectLakeError(
      catalog.commitTable(t.ident, [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': first }], []),
      'COMMIT_CONFLICT',
    );
    await catalog.commitTable(t.ident, [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': second }], []);
  });
});

describe('concurrent writers', () => {
  it('the loser gets COMMIT_CONFLICT; commitWithRetry reloads and lands on top', async () => {
    const t = await freshTable('race');
    const writerA = new RestCatalog({ uri: server.uri });
    const writerB = new RestCatalog({ uri: server.uri });
    const seenByA = (await writerA.loadTable(t.ident))!;
    const seenByB = (await writerB.loadTable(t.ident))!;

    const a = appendChange(seenByA, 111n);
    await writerA.commitTable(t.ident, a.requirements, a.updates);
    const b = appendChange(seenByB, 222n);
    await expectLakeError(writerB.commitTable(t.ident, b.requirements, b.updates), 'COMMIT_CONFLICT');

    let builds = 0;
    const done = await commitWithRetry(writerB, t.ident, (table) => {
      builds++;
      return appendChange(table, 222n);
    });
    expect(builds).toBe(1);
    expect(history(done)).toEqual([222n, 111n]);
  });

  it('parallel writers all land, one on top of the other', async () => {
    const t = await freshTable('pile-up');
    const writers = [1n, 2n, 3n, 4n].map((n) => ({ id: n * 1_000_000_000_000_000_000n, catalog: new RestCatalog({ uri: server.uri }) }));
    let builds = 0;
    await Promise.all(
      writers.map((w) =>
        commitWithRetry(
          w.catalog,
          t.ident,
          (table) => {
            builds++;
            return appendChange(table, w.id);
          },
          { maxAttempts: 20, baseDelayMs: 10 },
        ),
      ),
    );
    const final = (await catalog.loadTable(t.ident))!;
    const chain = history(final);
    expect([...chain].sort()).toEqual(writers.map((w) => w.id).sort());
    expect(final.metadata['last-sequence-number']).toBe(4n);
    expect(builds).toBeGreaterThanOrEqual(4);
  });

  it('after an unknown outcome, build sees the commit landed and stops', async () => {
    const t = await freshTable('lost-answer');
    // The commit reaches the real server, but its answer is lost on the way back.
    const lossy = new RestCatalog({
      uri: server.uri,
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (init?.method === 'POST' && String(input).endsWith('/tables/lost-answer')) {
          await res.text();
          throw new TypeError('fetch failed', { cause: new Error('socket hang up') });
        }
        return res;
      },
    });
    const id = 7_777_777_777_777_777_777n;
    await expectLakeError(lossy.commitTable(t.ident, appendChange(t, id).requirements, appendChange(t, id).updates), 'COMMIT_STATE_UNKNOWN');

    const decisions: string[] = [];
    const result = await commitWithRetry(lossy, t.ident, (table) => {
      if (table.metadata.snapshots.some((s) => s['snapshot-id'] === id)) {
        decisions.push('already applied');
        return null;
      }
      decisions.push('commit');
      return appendChange(table, id);
    });
    // The reload shows the lost commit landed: nothing is committed twice.
    expect(decisions).toEqual(['already applied']);
    expect(history(result)).toEqual([id]);
  });
});

describe('auth', () => {
  it('gets an OAuth2 client-credentials token from the catalog and sends it', async () => {
    const seen: string[] = [];
    const oauth = new RestCatalog({
      uri: server.uri,
      auth: { type: 'oauth2-client-credentials', clientId: 'lakesync', clientSecret: 's3cret' },
      fetch: (input, init) => {
        const h = new Headers(init?.headers);
        seen.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname} ${h.get('authorization') ?? '-'}`);
        return fetch(input, init);
      },
    });
    await oauth.createNamespace(['lake']);
    expect(await oauth.listNamespaces()).toContainEqual(['lake']);
    // The fixture's token endpoint names the client in the token.
    expect(seen).toEqual([
      'POST /v1/oauth/tokens -',
      'GET /v1/config Bearer client-credentials-token:sub=lakesync',
      'POST /v1/namespaces Bearer client-credentials-token:sub=lakesync',
      'GET /v1/namespaces Bearer client-credentials-token:sub=lakesync',
    ]);
  });
});

describe('pyiceberg', () => {
  it('sees our table, schema, properties and snapshot through the same catalog', async () => {
    const t = await freshTable('shared', { 'lakesync.owner': 'rest-test' });
    const id = 9_123_456_789_012_345_678n;
    await commitWithRetry(catalog, t.ident, (table) => ({
      requirements: appendChange(table, id).requirements,
      updates: [...appendChange(table, id).updates, { action: 'set-properties', updates: { 'lakesync.flushed': 'yes' } }],
    }));
    const py = pythonJson<{
      namespaces: string[][];
      tables: string[][];
      fields: [number, string, string, boolean][];
      identifiers: number[];
      spec: string[];
      properties: Record<string, string>;
      snapshot: string;
      parent: string | null;
      uuid: string;
      formatVersion: number;
    }>(
      `
import json, sys
from pyiceberg.catalog.rest import RestCatalog
cat = RestCatalog("rest", uri=sys.argv[1])
t = cat.load_table(("lake", "shared"))
s = t.current_snapshot()
print(json.dumps({
  "namespaces": [list(n) for n in cat.list_namespaces()],
  "tables": [list(i) for i in cat.list_tables("lake")],
  "fields": [[f.field_id, f.name, str(f.field_type), f.required] for f in t.schema().fields],
  "identifiers": sorted(t.schema().identifier_field_ids),
  "spec": [f"{f.name}:{f.transform}" for f in t.spec().fields],
  "properties": t.properties,
  "snapshot": str(s.snapshot_id),
  "parent": None if s.parent_snapshot_id is None else str(s.parent_snapshot_id),
  "uuid": str(t.metadata.table_uuid),
  "formatVersion": t.format_version,
}))
`,
      [server.uri],
    );
    expect(py.namespaces).toContainEqual(['lake']);
    expect(py.tables).toContainEqual(['lake', 'shared']);
    expect(py.fields).toEqual([
      [1, 'id', 'string', true],
      [2, 'n', 'long', false],
      [3, 'at', 'timestamptz', false],
    ]);
    expect(py.identifiers).toEqual([1]);
    expect(py.spec).toEqual(['at_day:day']);
    expect(py.properties).toMatchObject({ 'lakesync.owner': 'rest-test', 'lakesync.flushed': 'yes' });
    expect(py.snapshot).toBe(id.toString());
    expect(py.parent).toBeNull();
    expect(py.uuid).toBe(t.metadata['table-uuid']);
    expect(py.formatVersion).toBe(2);
  });
});
