/**
 * Bundle size and module init time of each Lambda function, bundled exactly
 * as the CDK construct bundles it (infra/bundling.ts), then imported in a
 * fresh Node.js process several times (median reported).
 *
 *   node --import tsx scripts/measure-bundles.ts                 # functions/aws
 *   node --import tsx scripts/measure-bundles.ts --dir <entries> # another entry directory
 *   node --import tsx scripts/measure-bundles.ts --runs 9 --top 15 --json
 *
 * Sizes are bytes of the minified index.mjs plus any .wasm shipped next to
 * it; KB = 1000 bytes. "SDK bundled" is the same build with the AWS SDK
 * inside the bundle (the `bundleAwsSdk` prop) instead of the runtime's copy.
 * Init is the time from `import()` to the module's `handler` export being a
 * function, split into loading the packages left external (the AWS SDK) and
 * evaluating the bundle itself; Node's own start-up and the Lambda runtime's
 * bootstrap are not in it. The machine's load skews it: run it twice. Handlers that build their clients on the first invocation do that
 * work outside this figure, as do packages loaded by import() on demand
 * (listed per function below the table). The http function loads no SDK:
 * it speaks DynamoDB and S3 over fetch (core/adapters/aws-fetch.ts); its
 * first request pays for undici's first fetch instead (~20 ms on Node 20,
 * after the Request/Response classes the handler needs anyway).
 */
import { spawnSync } from 'node:child_process';
import { isBuiltin } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import {
  DEFAULT_FUNCTIONS_DIR,
  FUNCTION_NAMES,
  PARQUET_WASM_FILE,
  bundleSpec,
  needsParquetWasm,
  parquetWasmPath,
  type FunctionName,
} from '../infra/bundling.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Inside the repository so external `@aws-sdk/*` imports resolve from node_modules, as from the runtime's. */
const OUT = join(ROOT, '.tmp', 'bundles');

/** Targets from the issue; KB = 1000 bytes. */
const TARGETS: Partial<Record<FunctionName, { bytes: number; initMs?: number }>> = {
  http: { bytes: 250_000, initMs: 50 },
  flush: { bytes: 6_000_000 },
  jobs: { bytes: 6_000_000 },
};
/** The http function must stay free of the lake's heavy codecs. */
const HTTP_FORBIDDEN = ['parquet-wasm', 'apache-arrow', 'avsc'];

/** Plausible values: handlers read the environment lazily, but some parse it at import. */
const FAKE_ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'measure',
  AWS_SECRET_ACCESS_KEY: 'measure',
  LAKESYNC_DDB_TABLE: 'lakesync-buffer',
  LAKESYNC_BUCKET: 'lakesync-lake',
  LAKESYNC_WAREHOUSE: 's3://lakesync-lake/warehouse',
  LAKESYNC_GLUE_DATABASE: 'lakesync',
  LAKESYNC_FLUSH_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/flush.fifo',
  LAKESYNC_JOBS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/jobs',
  LAKESYNC_CONFIG_JSON: readFileSync(join(ROOT, 'lakesync.config.json'), 'utf8'),
  LAKESYNC_JWT_SECRET: 'measure-bundles-secret-measure-bundles-secret',
};

export interface BundleResult {
  readonly name: FunctionName;
  readonly dir: string;
  /** index.mjs bytes (minified). */
  readonly jsBytes: number;
  /** parquet_wasm_bg.wasm bytes when shipped, else 0. */
  readonly wasmBytes: number;
  readonly totalBytes: number;
  readonly gzipBytes: number;
  readonly metafile: Metafile;
}

export async function bundleFunction(name: FunctionName, entryDir: string, outDir: string, bundleAwsSdk: boolean): Promise<BundleResult> {
  const spec = bundleSpec({ bundleAwsSdk, function: name });
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, spec.outfile);
  const result = await build({
    entryPoints: [join(entryDir, `${name}.ts`)],
    bundle: true,
    outfile,
    platform: spec.platform,
    format: spec.format,
    target: spec.target,
    minify: spec.minify,
    sourcemap: spec.sourcemap,
    mainFields: [...spec.mainFields],
    banner: { js: spec.banner },
    external: [...spec.external],
    metafile: true,
    logLevel: 'warning',
  });
  const js = readFileSync(outfile);
  let wasmBytes = 0;
  let zipped = gzipSync(js).length;
  if (needsParquetWasm(js.toString('utf8'))) {
    const wasm = join(outDir, PARQUET_WASM_FILE);
    copyFileSync(parquetWasmPath(), wasm);
    wasmBytes = statSync(wasm).size;
    zipped += gzipSync(readFileSync(wasm)).length;
  }
  return { name, dir: outDir, jsBytes: js.length, wasmBytes, totalBytes: js.length + wasmBytes, gzipBytes: zipped, metafile: result.metafile };
}

/**
 * Imports the bundle's external packages first (the AWS SDK, which the
 * Lambda runtime provides), then the bundle: the split shows what our own
 * code costs and what the SDK costs.
 */
const RUNNER = `
const [url, ...externals] = process.argv.slice(2);
const t0 = performance.now();
for (const p of externals) await import(p);
const t1 = performance.now();
const m = await import(url);
if (typeof m.handler !== 'function') throw new Error('no handler export');
const t2 = performance.now();
process.stdout.write(JSON.stringify({ externalMs: t1 - t0, ownMs: t2 - t1 }));
`;

export interface InitTimes {
  /** Median of external (SDK) load + bundle evaluation, per run. */
  readonly medianMs: number;
  readonly medianExternalMs: number;
  readonly medianOwnMs: number;
  readonly allMs: number[];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Bare packages the bundle loads at import from the runtime (node: built-ins and lazy import()s excluded). */
export function externalPackages(metafile: Metafile): string[] {
  const out = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) {
      if (imp.external === true && imp.kind !== 'dynamic-import' && !imp.path.startsWith('node:') && !isBuiltin(imp.path)) out.add(imp.path);
    }
  }
  return [...out].sort();
}

/** Bare packages the bundle loads only when its code calls import() (not in the init figure). */
export function lazyPackages(metafile: Metafile): string[] {
  const out = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) if (imp.external === true && imp.kind === 'dynamic-import' && !isBuiltin(imp.path)) out.add(imp.path);
  }
  return [...out].sort();
}

/** Median milliseconds from import() to a callable handler, each run in a fresh process. */
export function measureInit(bundleDir: string, externals: readonly string[], runs: number): InitTimes {
  const runner = join(OUT, 'init-runner.mjs');
  writeFileSync(runner, RUNNER);
  const url = pathToFileURL(join(bundleDir, 'index.mjs')).href;
  const samples: Array<{ externalMs: number; ownMs: number }> = [];
  // One discarded run warms the OS file cache, as a warm Lambda host would be.
  for (let i = 0; i <= runs; i++) {
    const r = spawnSync(process.execPath, [runner, url, ...externals], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...FAKE_ENV } });
    if (r.status !== 0) throw new Error(`importing ${url} failed:\n${r.stderr}`);
    if (i > 0) samples.push(JSON.parse(r.stdout) as { externalMs: number; ownMs: number });
  }
  const all = samples.map((x) => x.externalMs + x.ownMs);
  return {
    medianMs: median(all),
    medianExternalMs: median(samples.map((x) => x.externalMs)),
    medianOwnMs: median(samples.map((x) => x.ownMs)),
    allMs: all,
  };
}

/** Output bytes per package (node_modules/<pkg>) or per source directory, largest first. */
export function topInputs(metafile: Metafile, top: number): Array<{ module: string; bytes: number }> {
  const byModule = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
      const key = m !== null ? (m[1] ?? path) : dirname(relative(ROOT, resolve(ROOT, path)));
      byModule.set(key, (byModule.get(key) ?? 0) + bytesInOutput);
    }
  }
  return [...byModule.entries()]
    .map(([module, bytes]) => ({ module, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top);
}

function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} KB`;
}

function argValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const entryDir = resolve(argValue(args, '--dir') ?? DEFAULT_FUNCTIONS_DIR);
  const runs = Number(argValue(args, '--runs') ?? '7');
  const top = Number(argValue(args, '--top') ?? '12');
  const json = args.includes('--json');
  mkdirSync(OUT, { recursive: true });

  console.log(`entries: ${entryDir}`);
  console.log(`node ${process.version}; esbuild settings from infra/bundling.ts (${bundleSpec().target}, ${bundleSpec().format}, minified, external ${bundleSpec().external.join(' ') || 'none'})`);
  console.log(`init: median of ${runs} fresh-process imports after 1 warm-up\n`);

  const rows: string[][] = [['function', 'bundle (SDK external)', 'of which .wasm', 'gzip', 'init', 'SDK load', 'own code', 'SDK bundled', 'its init', 'target', 'result']];
  const report: Array<Record<string, unknown>> = [];
  let missed = 0;
  const details: string[] = [];
  for (const name of FUNCTION_NAMES) {
    if (!existsSync(join(entryDir, `${name}.ts`))) {
      rows.push([name, 'missing']);
      continue;
    }
    const deployed = await bundleFunction(name, entryDir, join(OUT, name), false);
    const selfContained = await bundleFunction(name, entryDir, join(OUT, `${name}-sdk`), true);
    const externals = externalPackages(deployed.metafile);
    const init = measureInit(deployed.dir, externals, runs);
    const initBundled = measureInit(selfContained.dir, externalPackages(selfContained.metafile), runs);
    const target = TARGETS[name];
    const problems: string[] = [];
    if (target !== undefined && deployed.totalBytes > target.bytes) problems.push(`size > ${kb(target.bytes)}`);
    if (target?.initMs !== undefined && init.medianMs > target.initMs) problems.push(`init > ${target.initMs} ms`);
    if (name === 'http') {
      const inputs = Object.keys(deployed.metafile.inputs);
      for (const pkg of HTTP_FORBIDDEN) if (inputs.some((p) => p.includes(`node_modules/${pkg}/`))) problems.push(`imports ${pkg}`);
    }
    if (problems.length > 0) missed++;
    rows.push([
      name,
      kb(deployed.totalBytes),
      deployed.wasmBytes > 0 ? kb(deployed.wasmBytes) : '-',
      kb(deployed.gzipBytes),
      `${init.medianMs.toFixed(1)} ms`,
      `${init.medianExternalMs.toFixed(1)} ms`,
      `${init.medianOwnMs.toFixed(1)} ms`,
      kb(selfContained.totalBytes),
      `${initBundled.medianMs.toFixed(1)} ms`,
      target === undefined ? '-' : `<= ${kb(target.bytes)}${target.initMs !== undefined ? `, <= ${target.initMs} ms` : ''}`,
      target === undefined && problems.length === 0 ? '' : problems.length === 0 ? 'PASS' : `MISS (${problems.join('; ')})`,
    ]);
    report.push({
      name,
      bytes: deployed.totalBytes,
      jsBytes: deployed.jsBytes,
      wasmBytes: deployed.wasmBytes,
      gzipBytes: deployed.gzipBytes,
      sdkBundledBytes: selfContained.totalBytes,
      sdkBundledInitMedianMs: Number(initBundled.medianMs.toFixed(2)),
      initMedianMs: Number(init.medianMs.toFixed(2)),
      initSdkMedianMs: Number(init.medianExternalMs.toFixed(2)),
      initOwnMedianMs: Number(init.medianOwnMs.toFixed(2)),
      externals,
      initRunsMs: init.allMs.map((ms) => Number(ms.toFixed(2))),
      problems,
    });
    // What fills the bundle: always for http (the tight target), else on a miss.
    if (name === 'http' || problems.length > 0) {
      details.push(`\n${name}: loads at import: ${externals.join(', ') || 'no external package'}; later, on demand: ${lazyPackages(deployed.metafile).join(', ') || 'nothing'}`);
      details.push(`${name}: largest contributors to index.mjs (SDK external)`);
      for (const { module, bytes } of topInputs(deployed.metafile, top)) details.push(`  ${kb(bytes).padStart(10)}  ${module}`);
      details.push(`${name}: with the AWS SDK bundled`);
      for (const { module, bytes } of topInputs(selfContained.metafile, Math.min(top, 6))) details.push(`  ${kb(bytes).padStart(10)}  ${module}`);
    }
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  for (const line of details) console.log(line);
  if (json) console.log(`\n${JSON.stringify(report, null, 2)}`);
  console.log(`\n${missed === 0 ? 'all targets met' : `${missed} function(s) missed a target`}`);
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
