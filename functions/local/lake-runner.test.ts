import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { Schema } from '../../core/schema.ts';
import { LakeRunner } from './lake-runner.ts';

const SCHEMA: Schema = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] };

function settings(dataDir: string) {
  return { dataDir, schema: SCHEMA, synchronous: 'normal' as const, checkpointEvery: 1, retainDeltas: 0 };
}

describe('LakeRunner', () => {
  it('starts its worker from any working directory (tsx is resolved from here, not the cwd)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lakesync-runner-'));
    const cwd = process.cwd();
    process.chdir(tmpdir()); // no node_modules here
    let runner: LakeRunner;
    try {
      runner = new LakeRunner(settings(dataDir));
      const r = await runner.cycle();
      expect(r.flush.deltas).toBe(0);
    } finally {
      process.chdir(cwd);
    }
    await runner.close();
  });

  it('rejects work and closes when its worker fails to start, instead of hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lakesync-runner-'));
    const notADir = join(dir, 'file');
    writeFileSync(notADir, 'x');
    const runner = new LakeRunner(settings(notADir));
    await expect(runner.cycle()).rejects.toThrow(/lake worker/);
    await expect(runner.maintain({ snapshotRetentionMs: 1, orphanAgeMs: 1 })).rejects.toThrow(/lake worker/);
    await runner.close(); // resolves: nothing left to stop
  }, 20_000);

  it('replaces a worker that died, so the buffer is flushed again', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lakesync-runner-'));
    const runner = new LakeRunner(settings(dataDir));
    expect((await runner.cycle()).flush.deltas).toBe(0);
    // A crash of the worker thread (wasm abort, out of memory, a bug).
    const inside = runner as unknown as { thread?: { worker: Worker }; worker?: Worker };
    await (inside.thread?.worker ?? inside.worker)?.terminate();
    expect((await runner.cycle()).flush.deltas).toBe(0);
    await runner.close();
  }, 20_000);
});
