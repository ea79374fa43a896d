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
    stdio: ['ignore', 'pipe', 'pipe'],
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

  it('queries hot and cold data with SQL (DuckDB), and travels back by HLC or time', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lakesync-cli-query-'));
    const config = join(dataDir, 'config.json');
    writeFileSync(config, JSON.stringify({ schema: LAKE_SCHEMA }));
    const local = openLocalLake(dataDir, LAKE_SCHEMA, { fsync: false });
    local.close();
    const buffer = new SqliteBuffer({ path: join(dataDir, 'buffer.sqlite'), synchronous: 'normal' });
    const gateway = new Gateway({ buffer, schema: LAKE_SCHEMA, rules: null, clock: new HybridLogicalClock() });
    const a = deltaMaker('cli-client', Date.now() - 60_000);
    const first = [a('todos', 'r1', 'insert', { title: 'milk' }), a('todos', 'r2', 'insert', { title: 'eggs' })];
    await gateway.push(principal('cli-client'), { clientId: 'cli-client', schemaVersion: 1, deltas: first });
    expect(lakesync(dataDir, config, 'flush')).toContain('flushed 2 deltas');
    const later = deltaMaker('cli-client', Date.now() - 30_000);
    const second = [later('todos', 'r1', 'update', { title: 'oat milk' }), later('todos', 'r2', 'delete'), later('todos', 'r3', 'insert', { title: 'bread' })];
    await gateway.push(principal('cli-client'), { clientId: 'cli-client', schemaVersion: 1, deltas: second });
    await buffer.close();

    const rows = (...args: string[]): unknown[][] =>
      lakesync(dataDir, config, 'query', 'SELECT _row_id, title FROM todos ORDER BY _row_id', '--json', ...args)
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => Object.values(JSON.parse(l) as Record<string, unknown>));
    // Now: the lake plus what the buffer holds beyond it.
    expect(rows()).toEqual([['r1', 'oat milk'], ['r3', 'bread']]);
    // --cold: only what the lake holds.
    expect(rows('--cold')).toEqual([['r1', 'milk'], ['r2', 'eggs']]);
    // --as-of: every delta stamped at or before then (an HLC or an ISO time), flushed or not.
    expect(rows('--as-of', String(first[1]?.hlc))).toEqual([['r1', 'milk'], ['r2', 'eggs']]);
    expect(rows('--as-of', new Date(Date.now() - 45_000).toISOString())).toEqual([['r1', 'milk'], ['r2', 'eggs']]);
    expect(lakesync(dataDir, config, 'query', 'SELECT _op, count(*) AS n FROM todos_changes GROUP BY _op ORDER BY _op')).toMatch(/delete\s+1\n\s*insert\s+3\n\s*update\s+1/);

    // Bad SQL and a bad --as-of are clear errors, exit code 1.
    const fail = (...args: string[]): string => {
      try {
        lakesync(dataDir, config, ...args);
      } catch (err) {
        const e = err as { status: number; stderr: string };
        expect(e.status).toBe(1);
        return e.stderr;
      }
      throw new Error('expected a failure');
    };
    expect(fail('query', 'SELEC nonsense')).toMatch(/^lakesync: .*syntax error/i);
    expect(fail('query', 'SELECT 1', '--as-of', 'yesterday')).toMatch(/^lakesync: --as-of: "yesterday" is neither an HLC nor an ISO-8601 time/);
  });
});
