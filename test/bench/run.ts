/**
 * `npm run bench`: throughput benchmarks of the engine, the HTTP path and the
 * client's apply, plus small codec benchmarks for diagnosis. Prints a table;
 * a missed target is reported, never a failure (exit 0). Only a crashed
 * benchmark (a broken sanity check) sets a non-zero exit code.
 *
 *   npm run bench                       # everything (~2 minutes on 2 cores)
 *   npm run bench -- engine-memory apply-inserts  # a subset
 *   npm run bench -- --markdown         # also print the table as markdown
 *   BENCH_VERBOSE=1 npm run bench       # every run's timings on stderr
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { benchClientApply } from './client-apply.ts';
import { benchDdbWcu } from './ddb.ts';
import { benchDdbShards } from './ddb-shards.ts';
import { benchEngine } from './engine.ts';
import { benchHttp } from './http.ts';
import { benchInitialSync } from './initial-sync.ts';
import { benchLake } from './lake.ts';
import { benchLive } from './live.ts';
import { benchMicro } from './micro.ts';
import { formatMarkdown, formatTable, status, type BenchRow } from './table.ts';

const SUITES: Readonly<Record<string, () => Promise<BenchRow[]>>> = {
  'engine-memory': () => benchEngine(['memory']),
  'engine-sqlite': () => benchEngine(['sqlite']),
  // One client pushing its batches one after another, then two clients pushing at once: the server's throughput.
  'http-proto': async () => [...(await benchHttp({ formats: ['proto'] })), ...(await benchHttp({ formats: ['proto'], streams: 2 }))],
  'http-json': () => benchHttp({ formats: ['json'] }),
  'apply-inserts': () => benchClientApply(['inserts']),
  'apply-updates': () => benchClientApply(['updates']),
  micro: () => benchMicro(),
  lake: () => benchLake(),
  'initial-sync': () => benchInitialSync(),
  'ddb-wcu': () => benchDdbWcu(),
  'ddb-shards': () => benchDdbShards(),
  live: () => benchLive(),
};

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const markdown = args.includes('--markdown');
  const wanted = args.filter((a) => !a.startsWith('--'));
  const unknown = wanted.filter((w) => !(w in SUITES));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(SUITES).join(', ')}`);
    return 2;
  }
  const selected = Object.keys(SUITES).filter((name) => wanted.length === 0 || wanted.includes(name));

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`LakeSync benchmarks  ${new Date().toISOString()}`);
  console.log(`node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} cores (${cpu})`);
  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`load average at start: ${load()} (other processes on the machine skew the figures)`);
  console.log('each figure: median of 3 runs after 1 warm-up\n');

  const rows: BenchRow[] = [];
  let crashed = false;
  const started = performance.now();
  for (const name of selected) {
    const t0 = performance.now();
    process.stderr.write(`running ${name} ... `);
    try {
      const got = await (SUITES[name] as () => Promise<BenchRow[]>)();
      rows.push(...got);
      process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      crashed = true;
      process.stderr.write('crashed\n');
      console.error(err);
    }
  }
  console.log(formatTable(rows));
  if (markdown) console.log(`\n${formatMarkdown(rows)}`);
  const missed = rows.filter((r) => status(r) === 'MISS').map((r) => r.name);
  console.log(`\ntargets: ${rows.filter((r) => status(r) !== '').length - missed.length} met, ${missed.length} missed${missed.length > 0 ? ` (${missed.join('; ')})` : ''}`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s; load average at end: ${load()}`);
  return crashed ? 1 : 0;
}

process.exitCode = await main();
