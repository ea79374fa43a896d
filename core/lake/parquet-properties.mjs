// The parquet-wasm writer properties for a WriterSpec (core/lake/parquet.ts).
// Plain JavaScript, so the encoder worker (parquet-encode-worker.mjs), which
// loads without a TypeScript loader, applies the settings with the same code
// as the calling thread.
import * as pw from 'parquet-wasm';

export function propertiesFromSpec(spec) {
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
