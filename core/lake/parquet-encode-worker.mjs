// A worker thread that turns Arrow IPC streams into Parquet bytes with
// parquet-wasm, for core/lake/parquet-encode-pool.ts. Plain JavaScript so it
// loads without a TypeScript loader (tests, bundles). Each job carries the
// writer settings as plain data (see `WriterSpec` in parquet.ts), applied
// here the same way `writerProperties` applies them on the main thread.
import { parentPort } from 'node:worker_threads';
import * as pw from 'parquet-wasm';

function properties(spec) {
  let b = new pw.WriterPropertiesBuilder()
    .setCompression(spec.compression)
    .setStatisticsEnabled(spec.statistics)
    .setDictionaryEnabled(spec.dictionary)
    .setMaxRowGroupBytes(spec.rowGroupBytes)
    .setMaxRowGroupSize(spec.rowGroupRows)
    .setCreatedBy(spec.createdBy);
  for (const c of spec.columns) {
    if (c.dictionary !== undefined) b = b.setColumnDictionaryEnabled(c.name, c.dictionary);
    if (c.encoding !== undefined) b = b.setColumnEncoding(c.name, c.encoding);
  }
  if (spec.writerVersion !== undefined) b = b.setWriterVersion(spec.writerVersion);
  if (spec.keyValueMetadata !== undefined) b = b.setKeyValueMetadata(new Map(spec.keyValueMetadata));
  return b.build();
}

parentPort.on('message', (job) => {
  try {
    const bytes = pw.writeParquet(pw.Table.fromIPCStream(job.ipc), properties(job.spec));
    // The wasm memory size lets the pool replace a worker that grew large (wasm memory never shrinks).
    parentPort.postMessage({ id: job.id, bytes, memoryBytes: pw.wasmMemory().buffer.byteLength }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: job.id, error: String(e && e.message ? e.message : e) });
  }
});
parentPort.postMessage({ ready: true });
