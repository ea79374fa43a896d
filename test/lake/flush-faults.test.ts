import { describe, expect, it } from 'vitest';
import { LakeError } from '../../core/lake/errors.ts';
import { WATERMARK, type FlushStep } from '../../core/lake/flush.ts';
import { liveFiles, produceSnapshot } from '../../core/lake/iceberg/snapshot.ts';
import { Lake } from '../../core/lake/flush.ts';
import { readParquetTable } from '../../core/lake/parquet.ts';
import { expireSnapshots } from '../../core/lake/maintenance.ts';
import type { LoadedTable } from '../../core/lake/ports.ts';
import { deltaMaker, LAKE_SCHEMA, makeLakeEnv, pyicebergScan, type LakeEnv } from '../support/lake.ts';

/**
 * Exactly once under crashes: a flush that dies after any step (the fault
 * hook throws, and nothing after it runs, like a killed process) and is then
 * retried leaves every delta once in the change table and the state table
 * equal to the engine's. Files of the dead attempt are orphans, never data.
 */
const STEPS: FlushStep[] = ['changes-files-written', 'changes-committed', 'state-files-written', 'state-committed', 'chunk-done'];

async function seed(env: LakeEnv): Promise<void> {
  const a = deltaMaker('client-a');
  const batch = [];
  for (let i = 0; i < 30; i++) batch.push(a('todos', `t${i}`, 'insert', { title: `todo ${i}`, position: BigInt(i) }));
  await env.push('client-a', batch);
}

async function more(env: LakeEnv): Promise<void> {
  const b = deltaMaker('client-b');
  const batch = [];
  for (let i = 0; i < 10; i++) batch.push(b('todos', `t${i}`, 'update', { title: `edited ${i}` }));
  for (let i = 10; i < 15; i++) batch.push(b('todos', `t${i}`, 'delete'));
  for (let i = 30; i < 35; i++) batch.push(b('todos', `t${i}`, 'insert', { title: `new ${i}` }));
  await env.push('client-b', batch);
}

function check(env: LakeEnv): void {
  const changes = pyicebergScan(env, 'todos_changes').rows.map((r) => r['_delta_id'] as string);
  expect(changes.length).toBe(new Set(changes).size);
  expect(new Set(changes)).toEqual(new Set(env.pushed.map((d) => d.deltaId)));
  const state = pyicebergScan(env, 'todos').rows;
  const expected = env.expected('todos');
  expect(new Set(state.map((r) => r['_row_id']))).toEqual(new Set(expected.keys()));
  expect(state.length).toBe(expected.size);
  for (const r of state) expect(r['title']).toBe(expected.get(r['_row_id'] as string)?.['title'] ?? null);
}

describe('flush fault injection', () => {
  for (const step of STEPS) {
    for (const table of ['todos', 'todos_changes', '*']) {
      if ((step === 'chunk-done') !== (table === '*')) continue;
      if (step.startsWith('changes') && table !== 'todos_changes') continue;
      if (step.startsWith('state') && table !== 'todos') continue;
      it(`dies after ${step} (${table}), on the first and on a later flush, and a retry lands everything once`, async () => {
        const env = makeLakeEnv();
        const crash = (s: FlushStep, t: string): void => {
          if (s === step && t === table) throw new Error(`injected crash after ${s}`);
        };
        await seed(env);
        await expect(env.lake({ fault: crash, chunkDeltas: 7 }).flush(env.source)).rejects.toThrow(/injected crash/);
        await env.lake({ chunkDeltas: 7 }).flush(env.source);
        check(env);
        await more(env);
        await expect(env.lake({ fault: crash, chunkDeltas: 7 }).flush(env.source)).rejects.toThrow(/injected crash/);
        // A second crash at the same step of the retry, then a clean retry.
        await expect(env.lake({ fault: crash, chunkDeltas: 7 }).flush(env.source)).rejects.toThrow(/injected crash/);
        await env.lake({ chunkDeltas: 7 }).flush(env.source);
        check(env);
        expect(env.source.flushed).toBe(await env.buffer.head());
      });
    }
  }

  for (const applied of [true, false]) {
    it(`a commit whose outcome is unknown (${applied ? 'it landed' : 'it did not'}) is settled by reloading, never duplicated`, async () => {
      const env = makeLakeEnv();
      await seed(env);
      await more(env);
      const real = env.catalog.commitTable.bind(env.catalog);
      let failures = 0;
      env.catalog.commitTable = async (ident, requirements, updates) => {
        if (failures < 3 && failures++ % 2 === 0) {
          if (applied) await real(ident, requirements, updates);
          throw new LakeError('COMMIT_STATE_UNKNOWN', 'gateway timeout');
        }
        return real(ident, requirements, updates);
      };
      await env.lake({ chunkDeltas: 11 }).flush(env.source);
      expect(failures).toBe(3);
      check(env);
    });
  }

  it('never blocks push: pushes land while a flush is paused mid-way, and the next flush takes them', async () => {
    const env = makeLakeEnv();
    await seed(env);
    let release: () => void = () => {};
    let paused: () => void = () => {};
    const pausedAt = new Promise<void>((r) => (paused = r));
    const gate = new Promise<void>((r) => (release = r));
    const flushing = env
      .lake({
        fault: async (step) => {
          if (step === 'state-files-written') {
            paused();
            await gate;
          }
        },
      })
      .flush(env.source);
    await pausedAt;
    const headBefore = await env.buffer.head();
    await more(env); // pushes while the flush holds its files, uncommitted
    expect(await env.buffer.head()).toBeGreaterThan(headBefore);
    release();
    await flushing;
    await env.lake().flush(env.source);
    check(env);
  });

  it('two flushers racing on the same buffer land every delta once', async () => {
    const env = makeLakeEnv();
    await seed(env);
    await more(env);
    await Promise.all([env.lake({ chunkDeltas: 5 }).flush(env.source), env.lake({ chunkDeltas: 3 }).flush(env.source)]);
    check(env);
  });

  it('a retried flush adds nothing twice even after expiry removed every snapshot that carried the watermark (another engine committed the newest ones)', async () => {
    const env = makeLakeEnv();
    await seed(env);
    // Dies after both tables committed, before the buffer learnt it.
    const crash = (s: FlushStep, t: string): void => {
      if (s === 'state-committed' && t === 'todos') throw new Error('injected crash');
    };
    await expect(env.lake({ fault: crash }).flush(env.source)).rejects.toThrow(/injected crash/);
    const lake = env.lake();
    for (const name of ['todos', 'todos_changes']) {
      for (let i = 0; i < 6; i++) {
        const t = (await env.catalog.loadTable(lake.ident(name))) as LoadedTable;
        const p = await produceSnapshot(env.store, t, { operation: 'append', summary: { 'engine-name': 'another' } }, Date.now());
        await env.catalog.commitTable(lake.ident(name), p.requirements, p.updates);
      }
      await expireSnapshots(lake, name, { olderThanMs: Date.now() + 1, retainLast: 5 });
      const t = (await env.catalog.loadTable(lake.ident(name))) as LoadedTable;
      expect(t.metadata.snapshots.some((s) => s.summary[WATERMARK] !== undefined)).toBe(false);
    }
    await lake.flush(env.source);
    check(env);
  });

  it('a schema added between writing files and committing them (a rolling upgrade) makes the commit conflict and write again with the new columns', async () => {
    const env = makeLakeEnv();
    await seed(env);
    const upgraded = {
      ...LAKE_SCHEMA,
      version: 2,
      tables: LAKE_SCHEMA.tables.map((t) => (t.name === 'todos' ? { ...t, columns: [...t.columns, { name: 'due', type: 'string' as const }] } : t)),
    };
    let upgrades = 0;
    const upgrade = async (s: FlushStep, t: string): Promise<void> => {
      if (s === 'state-files-written' && t === 'todos' && upgrades++ === 0) {
        await new Lake({ catalog: env.catalog, store: env.store, schema: upgraded, warehouse: env.warehouse }).ensureTables();
      }
    };
    await env.lake({ fault: upgrade }).flush(env.source);
    expect(upgrades).toBeGreaterThan(1);
    const t = (await env.catalog.loadTable(env.lake().ident('todos'))) as LoadedTable;
    const snap = t.metadata.snapshots.at(-1);
    expect(snap?.['schema-id']).toBe(t.metadata['current-schema-id']);
    const live = await liveFiles(env.store, t.metadata);
    for (const e of live.data) {
      const fields = readParquetTable(await env.store.get(e.dataFile.filePath)).schema.fields.map((f) => f.name);
      expect(fields).toContain('due');
    }
    check(env);
  });
});
