import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import { makeDelta } from '../../core/delta.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { encodeHlc, HybridLogicalClock } from '../../core/hlc.ts';
import type { Schema } from '../../core/schema.ts';
import { ConfigError } from './config.ts';
import { runCli } from './cli.ts';

const SCHEMA: Schema = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] };
const saved = { ...process.env };

/** Runs the CLI against a data dir; returns its exit code and output. */
async function cli(dataDir: string, ...argv: string[]): Promise<{ code: number; out: string }> {
  const config = join(mkdtempSync(join(tmpdir(), 'lakesync-cli-config-')), 'config.json');
  writeFileSync(config, JSON.stringify({ schema: SCHEMA }));
  process.env['LAKESYNC_DATA_DIR'] = dataDir;
  process.env['LAKESYNC_CONFIG'] = config;
  const lines: string[] = [];
  const code = await runCli(argv, (l) => lines.push(l));
  return { code, out: lines.join('\n') };
}

describe('lakesync CLI errors', () => {
  let dataDir: string;
  beforeAll(async () => {
    // A lake with one flushed table, made the way the local server makes it.
    dataDir = mkdtempSync(join(tmpdir(), 'lakesync-cli-'));
    const buffer = new SqliteBuffer({ path: join(dataDir, 'buffer.sqlite'), synchronous: 'normal' });
    const gateway = new Gateway({ buffer, schema: SCHEMA, rules: null, clock: new HybridLogicalClock() });
    const deltas = [1, 2, 3].map((i) =>
      makeDelta({ table: 'todos', rowId: `r${i}`, op: 'insert', columns: { title: `t${i}` }, hlc: encodeHlc(Date.now() - 1000, i), clientId: 'c' }),
    );
    await gateway.push({ clientId: 'c', userId: 'u', claims: {}, admin: true }, { clientId: 'c', schemaVersion: 1, deltas });
    await buffer.close();
    expect((await cli(dataDir, 'flush')).out).toContain('flushed 3 deltas');
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  it('scans a table (the fixture works)', async () => {
    const { code, out } = await cli(dataDir, 'scan', 'todos', '--json', '--limit', '2');
    expect(code).toBe(0);
    expect(out.split('\n')).toHaveLength(2);
  });

  it.each([
    [['scan', 'todos', '--limit', 'abc'], /--limit must be a non-negative integer/],
    [['scan', 'todos', '--limit', '-1'], /--limit/],
    [['scan', 'todos', '--snapshot', 'xyz'], /--snapshot must be a snapshot id/],
    [['compact', '--target-mb', 'big'], /--target-mb must be a positive number/],
    [['expire', '--retain-last', 'x'], /--retain-last must be a non-negative integer/],
  ])('refuses a bad argument: %j', async (argv, message) => {
    await expect(cli(dataDir, ...argv)).rejects.toThrow(ConfigError);
    await expect(cli(dataDir, ...argv)).rejects.toThrow(message);
  });

  it('takes a table by the qualified name `lakesync tables` prints', async () => {
    expect((await cli(dataDir, 'tables')).out).toMatch(/^lakesync\.todos /m);
    const { code, out } = await cli(dataDir, 'scan', 'lakesync.todos', '--json');
    expect(code).toBe(0);
    expect(out.split('\n')).toHaveLength(3);
    expect((await cli(dataDir, 'snapshots', 'lakesync.todos')).code).toBe(0);
  });

  it('names an unknown table', async () => {
    await expect(cli(dataDir, 'scan', 'nope')).rejects.toThrow(/no table nope/);
    await expect(cli(dataDir, 'snapshots', 'nope')).rejects.toThrow(/no table nope/);
  });

  it.each([['tables'], ['snapshots', 'todos'], ['scan', 'todos'], ['compact'], ['flush']])(
    'says there is no lake (and creates none) when the data dir holds none: %j',
    async (...argv) => {
      const missing = join(mkdtempSync(join(tmpdir(), 'lakesync-cli-')), 'nothing-here');
      await expect(cli(missing, ...argv)).rejects.toThrow(new RegExp(`no lake at ${missing}.*LAKESYNC_DATA_DIR`));
      expect(existsSync(missing)).toBe(false);
    },
  );

  it('answers an unknown command with the usage and exit code 1', async () => {
    const { code, out } = await cli(dataDir, 'frobnicate');
    expect(code).toBe(1);
    expect(out).toMatch(/unknown command "frobnicate"[\s\S]*usage: lakesync/);
  });
});
