import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FsObjectStore } from '../../core/adapters/fs-object-store.ts';
import { SqlCatalog } from '../../core/adapters/sql-catalog.ts';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { Lake } from '../../core/lake/flush.ts';
import type { Schema } from '../../core/schema.ts';

/**
 * The embedded default's lake: Parquet + Iceberg on local disk under
 * `<dataDir>/lake/warehouse`, catalogued in `<dataDir>/lake/catalog.db`
 * (pyiceberg: `SqlCatalog("lakesync", uri="sqlite:///<dataDir>/lake/catalog.db")`).
 */
export interface LocalLake {
  readonly lake: Lake;
  readonly checkpoints: Checkpoints;
  readonly catalogPath: string;
  readonly warehouse: string;
  close(): void;
}

export function openLocalLake(dataDir: string, schema: Schema, options: { fsync?: boolean } = {}): LocalLake {
  const root = join(dataDir, 'lake');
  mkdirSync(join(root, 'warehouse'), { recursive: true });
  const store = new FsObjectStore({ fsync: options.fsync ?? true });
  const catalogPath = join(root, 'catalog.db');
  const catalog = new SqlCatalog(catalogPath, store);
  const warehouse = FsObjectStore.uriFor(join(root, 'warehouse'));
  const lake = new Lake({ catalog, store, schema, warehouse });
  return {
    lake,
    checkpoints: new Checkpoints(lake, checkpointRoot(lake, warehouse)),
    catalogPath,
    warehouse,
    close: () => catalog.close(),
  };
}
