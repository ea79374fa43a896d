import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { LakeJobs } from '../../core/lake/jobs.ts';
import type { Catalog } from '../../core/lake/ports.ts';
import { compactTable, expireSnapshots, removeOrphans } from '../../core/lake/maintenance.ts';
import { deltaMaker, makeLakeEnv, pyicebergScan, type LakeEnv } from '../support/lake.ts';

function stateOf(env: LakeEnv, table = 'todos'): Map<string, unknown> {
  return new Map(pyicebergScan(env, table).rows.map((r) => [r['_row_id'] as string, r['title']]));
}

function expectedTitles(env: LakeEnv): Map<string, unknown> {
  return new Map([...env.expected('todos')].map(([id, v]) => [id, v['title'] ?? null]));
}

async function churn(env: LakeEnv, rounds: number): Promise<void> {
  const a = deltaMaker('client-a');
  for (let r = 0; r < rounds; r++) {
    const batch = [];
    for (let i = 0; i < 20; i++) batch.push(a('todos', `t${i + r * 5}`, r === 0 ? 'insert' : 'update', { title: `r${r} ${i}` }));
    if (r > 0) batch.push(a('todos', `t${r}`, 'delete'));
    batch.push(a('todos', `fresh${r}`, 'insert', { title: `fresh ${r}` }));
    await env.push('client-a', batch);
    await env.lake().flush(env.source);
  }
}

describe('compaction, expiry and orphan removal', () => {
  it('compaction folds data and delete files into base files; tables stay equal and readable', async () => {
    const env = makeLakeEnv();
    await churn(env, 5);
    const lake = env.lake();
    const before = stateOf(env);
    expect(before).toEqual(expectedTitles(env));
    const snapsBefore = pyicebergScan(env, 'todos').snapshots;
    expect(snapsBefore.at(-1)?.[2]['total-delete-files']).not.toBe('0');

    const report = await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(report.removedDeleteFiles).toBeGreaterThan(0);
    expect(report.addedDataFiles).toBe(1);
    const after = pyicebergScan(env, 'todos');
    expect(new Map(after.rows.map((r) => [r['_row_id'], r['title']]))).toEqual(before);
    const last = after.snapshots.at(-1);
    expect(last?.[1]).toBe('replace');
    expect(last?.[2]['total-delete-files']).toBe('0');
    expect(last?.[2]['total-data-files']).toBe('1');
    expect(last?.[2]['lakesync.watermark']).toBe(String(await env.buffer.head()));

    const changes = await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    expect(changes.rewrittenDataFiles).toBeGreaterThan(1);
    expect(pyicebergScan(env, 'todos_changes').rows).toHaveLength(env.pushed.length);

    // The lake keeps working after compaction: a later flush updates and deletes compacted rows.
    await churn(env, 2);
    expect(stateOf(env)).toEqual(expectedTitles(env));
  });

  it('expiry drops old snapshots and the files only they used; the current state is untouched', async () => {
    const env = makeLakeEnv();
    await churn(env, 4);
    const lake = env.lake();
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    const before = stateOf(env);
    const files = async (): Promise<number> => {
      let n = 0;
      for await (const o of env.store.list(env.warehouse + '/')) if (o.uri.includes('/todos/data/')) n++;
      return n;
    };
    const filesBefore = await files();
    const report = await expireSnapshots(lake, 'todos', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    expect(report.expiredSnapshots).toBeGreaterThan(0);
    expect(report.deletedFiles).toBeGreaterThan(0);
    expect(await files()).toBeLessThan(filesBefore);
    const after = pyicebergScan(env, 'todos');
    expect(after.snapshots).toHaveLength(1);
    expect(new Map(after.rows.map((r) => [r['_row_id'], r['title']]))).toEqual(before);
    // The watermark survives expiry, so the next flush neither repeats nor skips.
    await churn(env, 1);
    expect(stateOf(env)).toEqual(expectedTitles(env));
    const ids = pyicebergScan(env, 'todos_changes').rows.map((r) => r['_delta_id']);
    expect(new Set(ids).size).toBe(env.pushed.length);
  });

  it('orphan removal deletes what a dead flush left, but not files younger than the cut-off', async () => {
    const env = makeLakeEnv();
    await churn(env, 2);
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'late', 'insert', { title: 'late' })]);
    await expect(
      env
        .lake({
          fault: (step) => {
            if (step === 'state-files-written') throw new Error('killed');
          },
        })
        .flush(env.source),
    ).rejects.toThrow('killed');
    const lake = env.lake();
    const young = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() - 60_000 });
    expect(young.orphans).toEqual([]);
    const dry = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 1000, dryRun: true });
    expect(dry.orphans.filter((o) => o.endsWith('.parquet')).length).toBe(1); // the dead attempt's data file
    const real = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 1000 });
    expect(real.orphans.sort()).toEqual(dry.orphans.sort());
    for (const o of real.orphans) expect(await env.store.head(o)).toBeNull();
    // Still readable, and the retried flush completes normally.
    await lake.flush(env.source);
    expect(stateOf(env)).toEqual(expectedTitles(env));
  });

  it('orphan removal also deletes the temporary file of a write killed before its rename', async () => {
    const env = makeLakeEnv();
    await churn(env, 1);
    const lake = env.lake();
    const t = await env.catalog.loadTable(lake.ident('todos'));
    // What FsObjectStore leaves when the process dies between writing a temporary file and renaming it.
    const dir = fileURLToPath(`${t?.metadata.location}/data`);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, 'x.parquet.4242.abc123.tmp');
    writeFileSync(tmp, new Uint8Array(100));
    const report = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 1000 });
    expect(report.orphans).toEqual([pathToFileURL(tmp).href]);
    expect(existsSync(tmp)).toBe(false);
    expect(stateOf(env)).toEqual(expectedTitles(env));
  });

  it('LakeJobs.maintain() looks after LakeSync\'s own tables only: another engine\'s table in the namespace is left alone', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 't1', 'insert', { title: 'x' })]);
    const lake = env.lake();
    await lake.flush(env.source);
    const location = `${env.warehouse}/lakesync/theirs`;
    await env.catalog.createTable(lake.ident('theirs'), {
      schema: { type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'id', required: true, type: 'string' }] },
      spec: { 'spec-id': 0, fields: [] },
      location,
    });
    // A file their writer has not committed yet (to our orphan removal, an orphan).
    await env.store.put(`${location}/data/in-flight.parquet`, new Uint8Array([1, 2, 3]));
    const jobs = new LakeJobs({ buffer: env.buffer, lake, checkpoints: new Checkpoints(lake, checkpointRoot(lake, env.warehouse)), schemaVersion: 1, now: () => Date.now() + 86_400_000 });
    const log = await jobs.maintain({ snapshotRetentionMs: 3_600_000, orphanAgeMs: 60_000 });
    expect(log.map((l) => l.split(':')[0]).sort()).toEqual(['notes', 'notes_changes', 'todos', 'todos_changes']);
    expect(await env.store.head(`${location}/data/in-flight.parquet`)).not.toBeNull();
  });

  it('a compaction that loses its commit to a flush commits the files it wrote on top when the flush only added files, and rewrites again when the flush deleted rows it rewrote', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    for (let r = 0; r < 3; r++) {
      await env.push('client-a', [a('todos', `t${r}`, 'insert', { title: `v${r}` })]);
      await env.lake().flush(env.source);
    }
    // The compaction's first commit meets a flush that committed while it rewrote.
    let interfere: (() => Promise<void>) | null = null;
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
    const lake = env.lake({ catalog });
    const compactedFiles = async (table: string): Promise<number> => {
      let n = 0;
      for await (const o of env.store.list(`${env.warehouse}/lakesync/${table}/data/`)) if (o.uri.includes('/compacted-')) n++;
      return n;
    };

    // The change table only gets appends: the files written once are committed on top.
    interfere = async () => {
      await env.push('client-a', [a('todos', 't3', 'insert', { title: 'v3' })]);
      await env.lake().flush(env.source);
    };
    const changes = await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    expect(changes).toMatchObject({ rewrittenDataFiles: 3, addedDataFiles: 1 });
    expect(await compactedFiles('todos_changes')).toBe(1);
    expect(pyicebergScan(env, 'todos_changes').rows).toHaveLength(4);

    // The state table: the flush deletes t0's old row from a file the compaction rewrote: rewrite again.
    interfere = async () => {
      await env.push('client-a', [a('todos', 't0', 'update', { title: 'edited' })]);
      await env.lake().flush(env.source);
    };
    const state = await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    expect(state.addedDataFiles).toBe(1);
    expect(await compactedFiles('todos')).toBe(2); // the first attempt's file is an orphan now
    expect(stateOf(env)).toEqual(new Map([['t0', 'edited'], ['t1', 'v1'], ['t2', 'v2'], ['t3', 'v3']]));
    expect(stateOf(env)).toEqual(expectedTitles(env));
  });
});
