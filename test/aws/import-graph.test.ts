import { builtinModules } from 'node:module';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, bundleSpec, type FunctionName } from '../../infra/bundling.ts';
import { ROOT } from '../support/server.ts';

const BUILTINS = new Set(builtinModules);

/**
 * The small functions must not load the lake's heavy dependencies: esbuild's
 * metafile lists every module a bundle pulls in. (Sizes and init times are
 * measured by scripts/measure-bundles.ts.) The AWS SDK is left out as the
 * Lambda Node.js runtime provides it.
 */
const HEAVY = /node_modules\/(parquet-wasm|apache-arrow|avsc)\//;

async function inputs(entry: string): Promise<string[]> {
  const r = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    write: false,
    metafile: true,
    external: ['@aws-sdk/*'],
    outfile: 'out.mjs',
    logLevel: 'silent',
  });
  return Object.keys(r.metafile.inputs);
}

/** A function bundled as the CDK construct bundles it (infra/bundling.ts), in memory. */
function constructBundle(name: FunctionName, options: { minify?: boolean } = {}) {
  const spec = bundleSpec({ function: name });
  return build({
    absWorkingDir: ROOT,
    entryPoints: [`functions/aws/${name}.ts`],
    bundle: true,
    platform: spec.platform,
    format: spec.format,
    target: spec.target,
    minify: options.minify ?? spec.minify,
    mainFields: [...spec.mainFields],
    banner: { js: spec.banner },
    external: [...spec.external],
    outfile: 'index.mjs',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
}

describe('function import graphs', () => {
  it.each(['functions/aws/http.ts', 'functions/aws/stream.ts', 'functions/aws/maintenance.ts'])('%s loads no Parquet, Arrow or Avro', async (entry) => {
    const all = await inputs(entry);
    expect(all.length).toBeGreaterThan(3);
    expect(all.filter((i) => HEAVY.test(i))).toEqual([]);
    // The checkpoint path reads objects only: the builder (and flush) stay out.
    expect(all.filter((i) => /core\/lake\/(checkpoint|flush|parquet|maintenance)\.ts$/.test(i))).toEqual([]);
  });

  it('the flush function does load them (the check above is not vacuous)', async () => {
    expect((await inputs('functions/aws/flush.ts')).some((i) => HEAVY.test(i))).toBe(true);
  });

  it('the http function loads no AWS SDK at import (DynamoDB and S3 over fetch; SQS only on an admin flush)', async () => {
    const r = await build({
      absWorkingDir: ROOT,
      entryPoints: ['functions/aws/http.ts'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      metafile: true,
      external: ['@aws-sdk/*', '@smithy/*'],
      outfile: 'out.mjs',
      logLevel: 'silent',
    });
    const imports = Object.values(r.metafile.outputs).flatMap((o) => o.imports);
    const sdk = imports.filter((i) => /^@(aws-sdk|smithy)\//.test(i.path));
    expect(sdk.filter((i) => i.kind !== 'dynamic-import')).toEqual([]);
    expect(sdk.map((i) => i.path).sort()).toEqual(['@aws-sdk/client-dynamodb', '@aws-sdk/client-sqs']);
  });

  it('the http function bundles, as the CDK construct builds it, to at most 250 KB, the issue target', async () => {
    const r = await constructBundle('http');
    const bytes = r.outputFiles.reduce((n, f) => n + f.contents.length, 0);
    expect(bytes).toBeLessThanOrEqual(250_000);
  });

  it('every function leaves only @aws-sdk/client-* packages to the runtime (lib-storage and the rest are bundled)', async () => {
    for (const name of FUNCTION_NAMES) {
      const r = await constructBundle(name);
      const left = Object.values(r.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external && !i.path.startsWith('node:')).map((i) => i.path));
      expect({ name, left: [...new Set(left)].filter((p) => !/^@aws-sdk\/client-[a-z0-9-]+$/.test(p) && !BUILTINS.has(p)) }).toEqual({ name, left: [] });
    }
  });

  it('functions bundled without the CommonJS banner reference no require, __filename or __dirname (they would throw in the Lambda)', async () => {
    for (const name of FUNCTION_NAMES) {
      if (bundleSpec({ function: name }).banner !== '') continue;
      const r = await constructBundle(name, { minify: false });
      const code = r.outputFiles.map((f) => f.text).join('');
      expect({ name, free: [...new Set(code.match(/(?<![.\w$"'-])(?:require|__filename|__dirname)(?![\w$"'-])/g) ?? [])] }).toEqual({ name, free: [] });
    }
    // The check is not vacuous: the flush function needs the banner.
    expect(bundleSpec({ function: 'flush' }).banner).not.toBe('');
  });
});

