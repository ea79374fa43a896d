import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import { LakeJobs } from '../../core/lake/jobs.ts';
import { currentSnapshot } from '../../core/lake/iceberg/metadata.ts';
import { compactTable, expireSnapshots, removeOrphans } from '../../core/lake/maintenance.ts';
import { parseAsOf } from '../../core/lake/analytics.ts';
import { scanTable } from '../../core/lake/scan.ts';
import { ConfigError, loadConfig } from './config.ts';
import { openLocalLake } from './lake.ts';

/**
 * `lakesync`: the embedded default's command line.
 *   lakesync start                      run the local server (same as npm start)
 *   lakesync flush                      one flush cycle now (safe while the server runs)
 *   lakesync tables                     the lake's tables with snapshot, rows and files
 *   lakesync snapshots <table>          a table's snapshots, newest last
 *   lakesync scan <table> [--limit N] [--snapshot ID] [--json]
 *   lakesync query "<sql>" [--as-of HLC|ISO-time] [--cold] [--json]
 *   lakesync compact [table...] [--target-mb N]
 *   lakesync expire [table...] --older-than 7d [--retain-last N]
 *   lakesync orphans [table...] --older-than 1h [--dry-run]
 * Reads lakesync.config.json and LAKESYNC_* like the server.
 */

const USAGE = `usage: lakesync <start|flush|tables|snapshots|scan|query|compact|expire|orphans> [args]
  lakesync flush                       flush the buffer to the lake now, checkpoint, trim
  lakesync tables
  lakesync snapshots <table>
  lakesync scan <table> [--limit N] [--snapshot ID] [--json]
  lakesync query "<sql>" [--as-of HLC|ISO-time] [--cold] [--json]
                                       DuckDB SQL; each table t is a view of its state (lake + unflushed
                                       buffer), t_changes of every delta; --as-of: the state then
  lakesync compact [table...] [--target-mb N]
  lakesync expire [table...] --older-than 7d [--retain-last N]
  lakesync orphans [table...] --older-than 1h [--dry-run]`;

/** --as-of: an HLC or an ISO-8601 time (see parseAsOf). */
function asOfOption(text: string): bigint {
  try {
    return parseAsOf(text);
  } catch (err) {
    throw new ConfigError(`--as-of: ${(err as Error).message}`);
  }
}

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (m === null) throw new ConfigError(`bad duration "${text}" (use e.g. 30m, 12h, 7d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}

/** A whole-number option (e.g. --limit), or the fallback when not given. */
function intOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new ConfigError(`--${name} must be a non-negative integer, not "${text}"`);
  return Number(text);
}

function table(rows: readonly (readonly unknown[])[]): string {
  const text = rows.map((r) => r.map((c) => (c === null || c === undefined ? '' : typeof c === 'object' ? JSON.stringify(c, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) : String(c))));
  const widths = text[0]?.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length))) ?? [];
  return text.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

/** The options of every command; a malformed one is a ConfigError (parseArgs throws TypeErrors). */
function parseOptions(rest: readonly string[]) {
  try {
    return parseArgs({
      args: [...rest],
      allowPositionals: true,
      options: {
        limit: { type: 'string' },
        snapshot: { type: 'string' },
        json: { type: 'boolean' },
        'as-of': { type: 'string' },
        cold: { type: 'boolean' },
        'target-mb': { type: 'string' },
        'older-than': { type: 'string' },
        'retain-last': { type: 'string' },
        'dry-run': { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

export async function runCli(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help') {
    out(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === 'start') {
    await import('./main.ts');
    return -1; // keeps running
  }
  const known = ['flush', 'tables', 'snapshots', 'scan', 'query', 'compact', 'expire', 'orphans'];
  if (!known.includes(command)) {
    out(`lakesync: unknown command "${command}"\n${USAGE}`);
    return 1;
  }
  const { values, positionals } = parseOptions(rest);
  // These commands serve nothing: the server's auth settings do not concern them.
  const { LAKESYNC_JWT_SECRET: _secret, LAKESYNC_JWKS_URL: _jwks, ...env } = process.env;
  const config = loadConfig({ ...env, LAKESYNC_DEV: '1' }, process.cwd());
  // Opening the lake creates it: a command run in the wrong directory would report an empty lake, and leave one behind.
  const bufferPath = join(config.dataDir, 'buffer.sqlite');
  const needed = command === 'flush' ? bufferPath : join(config.dataDir, 'lake', 'catalog.db');
  if (!existsSync(needed)) {
    throw new ConfigError(`no lake at ${config.dataDir} (${needed} is missing): run the server (npm start) first, or set LAKESYNC_DATA_DIR`);
  }
  const limit = intOption('limit', values.limit, 20);
  const retainLast = intOption('retain-last', values['retain-last'], 1);
  const targetMb = Number(values['target-mb'] ?? '128');
  if (!(targetMb > 0)) throw new ConfigError(`--target-mb must be a positive number, not "${values['target-mb']}"`);
  if (values.snapshot !== undefined && !/^-?\d+$/.test(values.snapshot)) {
    throw new ConfigError(`--snapshot must be a snapshot id (lakesync snapshots <table> lists them), not "${values.snapshot}"`);
  }
  const local = openLocalLake(config.dataDir, config.schema);
  const { lake } = local;
  try {
    // `tables` prints names with their namespace (lakesync.todos): take them either way.
    const prefix = `${lake.namespace.join('.')}.`;
    const bare = (name: string): string => (name.startsWith(prefix) ? name.slice(prefix.length) : name);
    const names = async (): Promise<string[]> =>
      positionals.length > 0 ? positionals.map(bare) : (await lake.catalog.listTables(lake.namespace)).map((t) => t.name);
    switch (command) {
      case 'flush': {
        // The buffer file is shared with a running server (WAL); concurrent flushes are safe (watermarks + OCC).
        const buffer = new SqliteBuffer({ path: bufferPath, synchronous: config.synchronous });
        try {
          const jobs = new LakeJobs({
            buffer,
            lake,
            checkpoints: local.checkpoints,
            schemaVersion: config.schema.version,
            ...(config.lake === null ? {} : { checkpointEvery: config.lake.checkpointEvery, retainDeltas: config.lake.retainDeltas }),
          });
          const r = await jobs.cycle();
          out(`flushed ${r.flush.deltas} deltas (${r.flush.from}..${r.flush.to}) in ${r.flush.snapshots} snapshots; checkpoint ${r.checkpoint ?? 'not needed'}; buffer floor ${r.floor}`);
        } finally {
          await buffer.close();
        }
        return 0;
      }
      case 'tables': {
        const rows: unknown[][] = [['table', 'snapshot', 'watermark', 'records', 'data files', 'delete files', 'location']];
        for (const ident of await lake.catalog.listTables(lake.namespace)) {
          const t = await lake.catalog.loadTable(ident);
          const s = t === null ? undefined : currentSnapshot(t.metadata);
          rows.push([
            [...ident.namespace, ident.name].join('.'),
            s?.['snapshot-id'] ?? '-',
            s?.summary['lakesync.watermark'] ?? '-',
            s?.summary['total-records'] ?? 0,
            s?.summary['total-data-files'] ?? 0,
            s?.summary['total-delete-files'] ?? 0,
            t?.metadata.location,
          ]);
        }
        out(table(rows));
        out(`catalog: ${local.catalogPath} (pyiceberg: SqlCatalog("lakesync", uri="sqlite:///${local.catalogPath}"))`);
        return 0;
      }
      case 'snapshots': {
        const name = positionals[0] === undefined ? undefined : bare(positionals[0]);
        if (name === undefined) throw new ConfigError('lakesync snapshots <table>');
        const t = await lake.catalog.loadTable(lake.ident(name));
        if (t === null) throw new ConfigError(`no table ${name}`);
        const rows: unknown[][] = [['snapshot', 'time', 'operation', 'watermark', 'added records', 'total records', 'parent']];
        for (const s of t.metadata.snapshots) {
          rows.push([
            s['snapshot-id'],
            new Date(s['timestamp-ms']).toISOString(),
            s.summary.operation,
            s.summary['lakesync.watermark'] ?? '-',
            s.summary['added-records'] ?? 0,
            s.summary['total-records'] ?? '-',
            s['parent-snapshot-id'] ?? '-',
          ]);
        }
        out(table(rows));
        return 0;
      }
      case 'scan': {
        const name = positionals[0] === undefined ? undefined : bare(positionals[0]);
        if (name === undefined) throw new ConfigError('lakesync scan <table>');
        const result = await scanTable(lake, name, {
          limit,
          ...(values.snapshot !== undefined ? { snapshotId: BigInt(values.snapshot) } : {}),
        });
        const cols = result.schema.fields.map((f) => f.name).filter((n) => n !== '_state');
        if (values.json === true) {
          for (const r of result.rows) {
            out(JSON.stringify(Object.fromEntries(cols.map((c) => [c, r[c]])), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
          }
        } else out(table([cols, ...result.rows.map((r) => cols.map((c) => r[c]))]));
        return 0;
      }
      case 'query': {
        const sql = positionals[0];
        if (sql === undefined || positionals.length > 1) throw new ConfigError('lakesync query "<sql>" (quote the statement as one argument)');
        const asOf = values['as-of'] === undefined ? undefined : asOfOption(values['as-of']);
        // The buffer holds what no flush has committed yet; without it (or with --cold) only the lake is read.
        const buffer = values.cold === true || !existsSync(bufferPath) ? undefined : new SqliteBuffer({ path: bufferPath, synchronous: config.synchronous });
        try {
          const { queryLake } = await import('./query.ts'); // DuckDB loads only for this command
          const result = await queryLake(lake, buffer, sql, asOf === undefined ? {} : { asOf });
          if (values.json === true) for (const r of result.rows) out(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
          else out(table([result.columns, ...result.rows.map((r) => result.columns.map((c) => r[c]))]));
        } finally {
          await buffer?.close();
        }
        return 0;
      }
      case 'compact': {
        const target = targetMb * 1024 * 1024;
        for (const name of await names()) {
          const r = await compactTable(lake, name, { targetFileBytes: target });
          out(`${name}: rewrote ${r.rewrittenDataFiles} data files and ${r.removedDeleteFiles} delete files into ${r.addedDataFiles} (${r.rows} rows)`);
        }
        return 0;
      }
      case 'expire': {
        const olderThan = Date.now() - parseDuration(values['older-than'] ?? '7d');
        for (const name of await names()) {
          const r = await expireSnapshots(lake, name, { olderThanMs: olderThan, retainLast });
          out(`${name}: expired ${r.expiredSnapshots} snapshots, deleted ${r.deletedFiles} files`);
        }
        return 0;
      }
      case 'orphans': {
        const olderThan = Date.now() - parseDuration(values['older-than'] ?? '1h');
        for (const name of await names()) {
          const r = await removeOrphans(lake, name, { olderThanMs: olderThan, dryRun: values['dry-run'] === true });
          out(`${name}: ${values['dry-run'] === true ? 'would delete' : 'deleted'} ${r.orphans.length} orphan files`);
          for (const o of r.orphans) out(`  ${o}`);
        }
        return 0;
      }
      default:
        return 1; // unreachable: checked above
    }
  } finally {
    local.close();
  }
}
