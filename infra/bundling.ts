import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How each Lambda entry is bundled: one description shared by the CDK
 * construct (NodejsFunction, local esbuild) and scripts/measure-bundles.ts,
 * so the measured bundle is the deployed bundle. No aws-cdk-lib import here:
 * the measuring script stays light.
 */

export const FUNCTION_NAMES = ['http', 'stream', 'flush', 'jobs', 'maintenance', 'live'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** Node.js major version of the Lambda runtime (and the esbuild target). */
export const NODE_MAJOR = 24;

/** The repository's functions/aws directory (the default entry directory). */
export const DEFAULT_FUNCTIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'functions', 'aws');

/**
 * ESM has no require/__filename/__dirname; CommonJS packages inside the
 * bundle (parquet-wasm's Node build reads its .wasm from __dirname) need them.
 * Names are the free globals esbuild leaves unbound, so nothing collides.
 */
export const ESM_BANNER =
  "import{createRequire as __lsRequire}from'node:module';import{fileURLToPath as __lsPath}from'node:url';import{dirname as __lsDir}from'node:path';" +
  'const require=__lsRequire(import.meta.url);const __filename=__lsPath(import.meta.url);const __dirname=__lsDir(__filename);';

/**
 * Functions whose bundles hold CommonJS code that needs the banner's
 * require/__filename/__dirname (parquet-wasm's Node build). The others go
 * without it: the http function is held to 250 KB, and
 * test/aws/import-graph.test.ts checks that their bundles reference none of
 * the three, so a new CommonJS dependency fails a test, not a Lambda.
 */
export const CJS_SHIM_FUNCTIONS: ReadonlySet<FunctionName> = new Set(['flush', 'jobs']);

/** The WebAssembly file parquet-wasm's Node build loads from next to the bundle. */
export const PARQUET_WASM_FILE = 'parquet_wasm_bg.wasm';

export interface BundleSpec {
  readonly target: string;
  readonly format: 'esm';
  readonly platform: 'node';
  readonly minify: true;
  /** Off: no inline maps in the deployed code (they would double its size). */
  readonly sourcemap: false;
  /** Prefer packages' ESM builds so tree shaking works. */
  readonly mainFields: readonly string[];
  readonly banner: string;
  /** Packages left to the Lambda runtime (the AWS SDK v3 ships with Node.js runtimes). */
  readonly external: readonly string[];
  /** Bundle file name inside the asset directory (the handler is `index.handler`). */
  readonly outfile: 'index.mjs';
}

export interface BundleChoices {
  /** Bundle the AWS SDK instead of using the runtime's copy (pins versions; larger bundles). */
  readonly bundleAwsSdk?: boolean;
  /** The function bundled: decides whether it needs the banner (default: assume it does). */
  readonly function?: FunctionName;
  readonly nodeMajor?: number;
}

export function bundleSpec(choices: BundleChoices = {}): BundleSpec {
  return {
    target: `node${choices.nodeMajor ?? NODE_MAJOR}`,
    format: 'esm',
    platform: 'node',
    minify: true,
    sourcemap: false,
    mainFields: ['module', 'main'],
    // A bundled SDK may carry CommonJS too: every function keeps the banner then.
    banner: choices.function === undefined || choices.bundleAwsSdk === true || CJS_SHIM_FUNCTIONS.has(choices.function) ? ESM_BANNER : '',
    // The runtime's SDK clients stay out of the bundle. Helper libraries (lib-storage) are
    // bundled: AWS documents only the clients as part of the Node.js runtime.
    external: choices.bundleAwsSdk === true ? [] : ['@aws-sdk/client-*'],
    outfile: 'index.mjs',
  };
}

/**
 * The bundle references parquet-wasm's Node loader exactly when it contains
 * the .wasm file name; only then is the file copied next to it.
 */
export function needsParquetWasm(bundleText: string): boolean {
  return bundleText.includes(PARQUET_WASM_FILE);
}

/** Absolute path of parquet-wasm's Node .wasm (resolved from this package's node_modules). */
export function parquetWasmPath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('parquet-wasm')), PARQUET_WASM_FILE);
}
