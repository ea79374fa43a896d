import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { produceSnapshot } from '../../core/lake/iceberg/snapshot.ts';
import type { Catalog } from '../../core/lake/ports.ts';
import { compactTable, expireSnapshots, removeOrphans } from '../../core/lake/maintenance.ts';
import { SchemaRegistry, type Schema } from '../../core/schema.ts';
import { deltaMaker, LAKE_SCHEMA, makeLakeEnv, pyicebergScan } from '../support/lake.ts';
import { pythonJson } from '../support/python.ts';

/** lake maintenance. */
describe('maintenance', () => {
  it('refuses tables and columns named with a leading underscore: a table _checkpoints would share the checkpoints\' location (orphan removal deleted them), a column _seq a system column', () => {
    for (const schema of [
      { version: 1, tables: [...LAKE_SCHEMA.tables, { name: '_checkpoints', columns: [{ name: 'label', type: 'string' }] }] },
      { version: 1, tables: [...LAKE_SCHEMA.tables, { name: '_fanout', columns: [{ name: 'label', type: 'string' }] }] },
      { version: 1, tables: [{ name: 'jobs', columns: [{ name: '_seq', type: 'integer' }] }] },
    ] as Schema[]) {
      expect(() => new SchemaRegistry(schema)).toThrow(/invalid (table|column) name/);
    }
  });
});

describe('compaction of a partitioned table', () => {
  it('a second compaction with nothing new to compact rewrites nothing (day-partitioned change table)', async () => {
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

const SET_STATISTICS = `
import json, sys, os, uuid
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table.statistics import StatisticsFile, BlobMetadata
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table('lakesync.todos')
snap = t.current_snapshot()
path = t.metadata.location + '/metadata/' + str(uuid.uuid4()) + '.stats'
local = path[len('file://'):] if path.startswith('file://') else path
with open(local, 'wb') as f:
    f.write(b'PFA1' + b'\\x00' * 16 + b'PFA1')
stats = StatisticsFile(snapshot_id=snap.snapshot_id, statistics_path=path, file_size_in_bytes=24, file_footer_size_in_bytes=20,
  blob_metadata=[BlobMetadata(type='apache-datasketches-theta-v1', snapshot_id=snap.snapshot_id, sequence_number=snap.sequence_number, fields=[1], properties={})])
with t.update_statistics() as u:
    u.set_statistics(stats)
print(json.dumps({'path': path}))
`;

describe('orphan removal and table statistics', () => {
  it('orphan removal keeps the statistics (Puffin) files the table metadata references', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 't1', 'insert', { title: 'x' })]);
    await env.lake().flush(env.source);
    // Another engine computes statistics for the table (Trino ANALYZE, Spark compute_table_stats, pyiceberg).
    const { path } = pythonJson<{ path: string }>(SET_STATISTICS, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse })]);
    const loaded = await env.catalog.loadTable(env.lake().ident('todos'));
    const statistics = ((loaded?.metadata as unknown as Record<string, unknown>)['statistics'] ?? []) as { 'statistics-path': string }[];
    expect(statistics.map((s) => s['statistics-path'])).toEqual([path]);
    const report = await removeOrphans(env.lake(), 'todos', { olderThanMs: Date.now() + 3_600_000 });
    expect(report.orphans).not.toContain(path); // was: the referenced statistics file is deleted
    expect(await env.store.head(path)).not.toBeNull();

    // Once its snapshot is expired, the statistics entry leaves the metadata and its file is deleted.
    await env.push('client-a', [a('todos', 't2', 'insert', { title: 'y' })]);
    await env.lake().flush(env.source);
    const expired = await expireSnapshots(env.lake(), 'todos', { olderThanMs: Date.now() + 3_600_000, retainLast: 1 });
    expect(expired.expiredSnapshots).toBeGreaterThan(0);
    const after = await env.catalog.loadTable(env.lake().ident('todos'));
    expect((after?.metadata as unknown as Record<string, unknown>)['statistics']).toEqual([]);
    expect(await env.store.head(path)).toBeNull();
    expect(pyicebergScan(env, 'todos').rows.map((r) => r['_row_id']).sort()).toEqual(['t1', 't2']);
  });
});

const MANIFESTS = `
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table(args['table'])
out = []
for s in t.snapshots():
    out.append({'snapshot': str(s.snapshot_id), 'manifests': [
        {'path': m.manifest_path, 'added_snapshot': str(m.added_snapshot_id), 'live': m.added_files_count + m.existing_files_count, 'deleted': m.deleted_files_count}
        for m in s.manifests(t.io)]})
print(json.dumps(out))
`;

interface ManifestRow {
  path: string;
  added_snapshot: string;
  live: number;
  deleted: number;
}

describe('manifests after compaction', () => {
  it('manifests holding only deleted entries stay in the snapshot that deleted the files and are not carried into later ones', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 4; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` }), a('todos', 't0', 'update', { title: `e${r}` })]);
      await env.lake().flush(env.source);
    }
    const lake = env.lake();
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    await env.push('client-a', [a('todos', 't9', 'insert', { title: 'late' })]);
    await lake.flush(env.source);
    for (const table of ['todos', 'todos_changes']) {
      const snaps = pythonJson<{ snapshot: string; manifests: ManifestRow[] }[]>(MANIFESTS, [
        JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse, table: `lakesync.${table}` }),
      ]);
      const compaction = snaps.at(-2);
      const last = snaps.at(-1);
      // The compaction's snapshot records what it removed.
      expect(compaction?.manifests.some((m) => m.deleted > 0 && m.live === 0)).toBe(true);
      // The next snapshot only carries manifests with live files (as Java's writers do): was every
      // deleted-only manifest of every compaction, forever, growing each scan's manifest list.
      expect(last?.manifests.filter((m) => m.live === 0 && m.added_snapshot !== last.snapshot)).toEqual([]);
      expect(last?.manifests.length).toBeLessThanOrEqual(3);
    }
    expect(pyicebergScan(env, 'todos').rows.map((r) => r['_row_id']).sort()).toEqual(['t0', 't1', 't2', 't3', 't9']);
    // Expiring the compaction's snapshot deletes its deleted-only manifests too.
    await expireSnapshots(lake, 'todos', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    expect((await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 1000, dryRun: true })).orphans).toEqual([]);
  });
});

describe('compaction and orphan removal at once', () => {
  it('a compaction whose files orphan removal took (its rewrite outlasted the cut-off, then it lost a race) writes them again instead of committing missing files', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 3; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` })]);
      await env.lake().flush(env.source);
    }
    let interfere: (() => Promise<void>) | null = async () => {
      // A flush commits meanwhile (the compaction's first commit fails), and orphan
      // removal runs with a cut-off the compaction's files are older than.
      await env.push('client-a', [a('todos', 't3', 'insert', { title: 'v3' })]);
      await env.lake().flush(env.source);
      await removeOrphans(env.lake(), 'todos_changes', { olderThanMs: Date.now() + 3_600_000 });
    };
    const c = env.catalog;
    const catalog: Catalog = {
      kind: c.kind,
      createNamespace: (ns) => c.createNamespace(ns),
      listNamespaces: () => c.listNamespaces(),
      listTables: (ns) => c.listTables(ns),
      loadTable: (ident) => c.loadTable(ident),
      createTable: (ident, req) => c.createTable(ident, req),
      dropTable: (ident) => c.dropTable(ident),
      async commitTable(ident, requirements, updates) {
        const f = interfere;
        interfere = null;
        await f?.();
        return c.commitTable(ident, requirements, updates);
      },
    };
    await compactTable(env.lake({ catalog }), 'todos_changes', { targetFileBytes: 1 << 20 });
    expect(pyicebergScan(env, 'todos_changes').rows).toHaveLength(4); // was: a data file not found
  });
});

const TAG = `
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table('lakesync.todos')
t.manage_snapshots().create_tag(int(args['snapshot']), 'audit').commit()
print(json.dumps({}))
`;

describe('expiry racing another engine', () => {
  it('a tag another engine puts on a snapshot while expiry removes it goes with the snapshot, as in Java and pyiceberg: never a ref to a missing snapshot', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 3; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` })]);
      await env.lake().flush(env.source);
    }
    const first = (await env.catalog.loadTable(env.lake().ident('todos')))?.metadata.snapshots[0]?.['snapshot-id'];
    const c = env.catalog;
    let interfere: (() => void) | null = () => {
      pythonJson(TAG, [JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse, snapshot: String(first) })]);
    };
    const catalog: Catalog = {
      kind: c.kind,
      createNamespace: (ns) => c.createNamespace(ns),
      listNamespaces: () => c.listNamespaces(),
      listTables: (ns) => c.listTables(ns),
      loadTable: (ident) => c.loadTable(ident),
      createTable: (ident, req) => c.createTable(ident, req),
      dropTable: (ident) => c.dropTable(ident),
      commitTable(ident, requirements, updates) {
        const f = interfere;
        interfere = null;
        f?.();
        return c.commitTable(ident, requirements, updates);
      },
    };
    const report = await expireSnapshots(env.lake({ catalog }), 'todos', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    expect(report.expiredSnapshots).toBe(2);
    const m = (await env.catalog.loadTable(env.lake().ident('todos')))?.metadata;
    const ids = new Set(m?.snapshots.map((s) => s['snapshot-id']));
    for (const [name, ref] of Object.entries(m?.refs ?? {})) expect([name, ids.has(ref['snapshot-id'])]).toEqual([name, true]);
    expect(pyicebergScan(env, 'todos').rows).toHaveLength(3);
  });
});

describe('orphan removal and paths written by other engines', () => {
  it('keeps a file whose name holds a literal %XX, as Java names partition directories and pyarrow opens them', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 't1', 'insert', { title: 'x' })]);
    await env.lake().flush(env.source);
    const table = await env.catalog.loadTable(env.lake().ident('todos_changes'));
    if (table === null) throw new Error('no table');
    // Another engine adds a file in a directory named title=a%20b (its URL-encoded partition value).
    const path = `${table.metadata.location}/data/title=a%20b/foreign.parquet`;
    const disk = join(fileURLToPath(table.metadata.location), 'data', 'title=a%20b', 'foreign.parquet');
    mkdirSync(dirname(disk), { recursive: true });
    writeFileSync(disk, new Uint8Array([1, 2, 3]));
    const file = { content: 0, filePath: path, fileFormat: 'PARQUET', partition: [19000], recordCount: 1n, fileSizeInBytes: 3n } as const;
    const produced = await produceSnapshot(env.store, table, { operation: 'append', addedDataFiles: [file] }, Date.now());
    await env.catalog.commitTable(table.ident, produced.requirements, produced.updates);
    const report = await removeOrphans(env.lake(), 'todos_changes', { olderThanMs: Date.now() + 3_600_000 });
    expect(report.orphans).toEqual([]);
    expect(existsSync(disk)).toBe(true);
  });
});
