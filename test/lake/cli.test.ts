import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import { openLocalLake } from '../../functions/local/lake.ts';
import { LAKE_SCHEMA, TestFlushSource, deltaMaker, principal } from '../support/lake.ts';

const root = join(import.meta.dirname, '../..');

function lakesync(dataDir: string, config: string, ...args: string[]): string {
  return execFileSync('node', [join(root, 'bin/lakesync.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, LAKESYNC_DATA_DIR: dataDir, LAKESYNC_CONFIG: config },
  });
}

describe('lakesync CLI', () => {
  it('lists tables and snapshots, scans a table, and compacts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lakesync-cli-'));
    const config = join(dataDir, 'config.json');
    writeFileSync(config, JSON.stringify({ schema: LAKE_SCHEMA }));
    const local = openLocalLake(dataDir, LAKE_SCHEMA, { fsync: false });
    const buffer = new MemoryBuffer();
    const gateway = new Gateway({ buffer, schema: LAKE_SCHEMA, rules: null, clock: new HybridLogicalClock() });
    const a = deltaMaker('cli-client');
    const deltas = [a('todos', 'r1', 'insert', { title: 'milk', done: false }), a('todos', 'r2', 'insert', { title: 'eggs' })];
    await gateway.push(principal('cli-client'), { clientId: 'cli-client', schemaVersion: 1, deltas });
    const source = new TestFlushSource(buffer);
    await local.lake.flush(source);
    await gateway.push(principal('cli-client'), { clientId: 'cli-client', schemaVersion: 1, deltas: [a('todos', 'r1', 'update', { done: true })] });
    await local.lake.flush(source);
    local.close();

    const tables = lakesync(dataDir, config, 'tables');
    // total-records counts data file rows; the position delete hides one of them
    expect(tables).toMatch(/lakesync\.todos\s+\d+\s+3\s+3\s+2\s+1/);
    expect(tables).toMatch(/lakesync\.todos_changes\s+\d+\s+3\s+3/);
    expect(tables).toContain('SqlCatalog("lakesync"');
    const snapshots = lakesync(dataDir, config, 'snapshots', 'todos');
    expect(snapshots.split('\n').filter((l) => /^\d+ /.test(l))).toHaveLength(2);
    expect(snapshots).toContain('overwrite');
    const scan = lakesync(dataDir, config, 'scan', 'todos', '--json')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(scan.map((r) => [r['_row_id'], r['title'], r['done']]).sort()).toEqual([
      ['r1', 'milk', true],
      ['r2', 'eggs', null],
    ]);
    expect(lakesync(dataDir, config, 'compact', 'todos')).toContain('todos: rewrote 2 data files and 1 delete files into 1');
    expect(lakesync(dataDir, config, 'scan', 'todos')).toMatch(/r1\s+\d+\s+\d+\s+\S+\s+milk\s+true/);
  });

  it('flushes the local server\'s SQLite buffer on demand', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lakesync-cli-flush-'));
    const config = join(dataDir, 'config.json');
    writeFileSync(config, JSON.stringify({ schema: LAKE_SCHEMA }));
    const buffer = new SqliteBuffer({ path: join(dataDir, 'buffer.sqlite'), synchronous: 'normal' });
    const gateway = new Gateway({ buffer, schema: LAKE_SCHEMA, rules: null, clock: new HybridLogicalClock() });
    const a = deltaMaker('cli-client');
    const deltas = Array.from({ length: 12 }, (_, i) => a('todos', `r${i}`, 'insert', { title: `t${i}` }));
    await gateway.push(principal('cli-client'), { clientId: 'cli-client', schemaVersion: 1, deltas });
    await buffer.close();
    expect(lakesync(dataDir, config, 'flush')).toContain('flushed 12 deltas (0..12)');
    expect(lakesync(dataDir, config, 'flush')).toContain('flushed 0 deltas');
    expect(lakesync(dataDir, config, 'tables')).toMatch(/lakesync\.todos\s+\d+\s+12\s+12/);
  });
});
