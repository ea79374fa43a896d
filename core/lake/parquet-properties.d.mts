import type * as pw from 'parquet-wasm';
import type { WriterSpec } from './parquet.ts';

export declare function propertiesFromSpec(spec: WriterSpec): pw.WriterProperties;
