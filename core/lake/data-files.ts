import type { FileContent} from './iceberg/types.ts';
import { type DataFile, type PartitionSpec, type PartitionValue } from './iceberg/types.ts';
import { writeParquetFileParallel, type ParquetColumn, type ParquetWriteOptions } from './parquet.ts';
import type { LoadedTable, ObjectStore } from './ports.ts';

/**
 * Writing one Parquet file into a table's data directory and describing it
 * for a manifest: shared by flush (data and position deletes) and compaction,
 * so every writer lays files out and fills metrics the same way.
 */

/**
 * `name=value/` per partition field (days as dates), as Hive-style engines
 * expect. Only for people reading the directory: readers take partition
 * values from the manifests. Never a '%' in it: readers open file_path as
 * written (pyarrow, Hadoop), while a file: URI is percent-decoded on its way
 * to disk (FsObjectStore), so "a%3Ab" named a file they could not find. Other
 * characters are escaped as ~XX (UTF-8 bytes) instead.
 */
export function partitionPath(spec: PartitionSpec, partition: readonly PartitionValue[]): string {
  if (spec.fields.length === 0) return '';
  return (
    spec.fields
      .map((pf, i) => {
        const v = partition[i];
        const text =
          v === null || v === undefined ? 'null' : pf.transform === 'day' ? new Date(Number(v) * 86_400_000).toISOString().slice(0, 10) : String(v);
        return `${pf.name}=${encodeURIComponent(text).replace(/%/g, '~')}`;
      })
      .join('/') + '/'
  );
}

export interface TableFile {
  readonly content: FileContent;
  readonly partition: readonly PartitionValue[];
  /** File name prefix (for people reading the directory; not interpreted). */
  readonly tag: string;
  readonly columns: readonly ParquetColumn[];
  /** Column-major values: values[i] belongs to columns[i]. */
  readonly values: readonly (readonly unknown[])[];
}

export async function writeTableFile(
  store: ObjectStore,
  table: LoadedTable,
  spec: PartitionSpec,
  file: TableFile,
  options: ParquetWriteOptions = {},
): Promise<DataFile> {
  const out = await writeParquetFileParallel(file.columns, file.values, options);
  const path = `${table.metadata.location}/data/${partitionPath(spec, file.partition)}${file.tag}-${crypto.randomUUID()}.parquet`;
  await store.put(path, out.bytes);
  return {
    content: file.content,
    filePath: path,
    fileFormat: 'PARQUET',
    partition: file.partition,
    recordCount: BigInt(out.recordCount),
    fileSizeInBytes: BigInt(out.bytes.length),
    valueCounts: out.metrics.valueCounts,
    nullValueCounts: out.metrics.nullValueCounts,
    nanValueCounts: out.metrics.nanValueCounts,
    lowerBounds: out.metrics.lowerBounds,
    upperBounds: out.metrics.upperBounds,
  };
}
