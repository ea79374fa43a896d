// A worker thread that turns Arrow record batches into Parquet bytes with
// its own parquet-wasm instance, for core/lake/parquet-encode-pool.ts. Plain JavaScript so it
// loads without a TypeScript loader (tests, bundles). Each job carries the
// writer settings as plain data (see `WriterSpec` in parquet.ts), applied
// here the same way `writerProperties` applies them on the main thread.
import { parentPort } from 'node:worker_threads';
import * as arrow from 'apache-arrow';
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
    const bytes = pw.writeParquet(pw.Table.fromIPCStream(ipc), properties(job.spec));
    // The wasm memory size lets the pool replace a worker that grew large (wasm memory never shrinks).
    parentPort.postMessage({ id: job.id, bytes, memoryBytes: pw.wasmMemory().buffer.byteLength }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: job.id, error: String(e && e.message ? e.message : e) });
  }
});
parentPort.postMessage({ ready: true });
