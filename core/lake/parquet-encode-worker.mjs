// A worker thread that turns Arrow record batches into Parquet bytes with
// its own parquet-wasm instance, for core/lake/parquet-encode-pool.ts. Plain JavaScript so it
// loads without a TypeScript loader (tests, bundles). Each job carries the
// writer settings as plain data (see `WriterSpec` in parquet.ts), applied
// with the same propertiesFromSpec (parquet-properties.mjs) as the main thread.
import { parentPort } from 'node:worker_threads';
import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm';
import { propertiesFromSpec } from './parquet-properties.mjs';

/** The Arrow Data tree back from the parts core/lake/parquet-encode-pool.ts sent (buffers transferred, not copied). */
function rebuild(type, parts) {
  const children = parts.children.map((c, i) => rebuild(type.children[i].type, c));
  return new arrow.Data(type, 0, parts.length, parts.nullCount, parts.buffers, children);
}

parentPort.on('message', (job) => {
  try {
    const schema = arrow.tableFromIPC(job.schema).schema;
    const batch = new arrow.RecordBatch(schema, rebuild(new arrow.Struct(schema.fields), job.parts));
    const ipc = arrow.tableToIPC(new arrow.Table(schema, [batch]), 'stream');
    const bytes = pw.writeParquet(pw.Table.fromIPCStream(ipc), propertiesFromSpec(job.spec));
    // The wasm memory size lets the pool replace a worker that grew large (wasm memory never shrinks).
    parentPort.postMessage({ id: job.id, bytes, memoryBytes: pw.wasmMemory().buffer.byteLength }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: job.id, error: String(e && e.message ? e.message : e) });
  }
});
parentPort.postMessage({ ready: true });
