import { LakeError } from '../errors.ts';
import {
  applyUpdates,
  checkRequirements,
  newTableMetadata,
  parseTableMetadata,
  serializeTableMetadata,
  type TableRequirement,
  type TableUpdate,
} from '../iceberg/metadata.ts';
import type { Catalog, CreateTableRequest, LoadedTable, ObjectStore, TableIdent } from '../ports.ts';

/**
 * The shared half of catalogs that only store a pointer to the current
 * metadata file (the local SQL catalog, AWS Glue): the writer applies updates
 * itself, writes a new metadata file, then swaps the pointer with optimistic
 * concurrency. A lost swap leaves an unreferenced metadata file (an orphan
 * that maintenance removes), never a broken table.
 */
export interface PointerRecord {
  readonly metadataLocation: string;
  /** Opaque token the store compares on swap (the location itself, or Glue's VersionId). */
  readonly version: string;
}

export abstract class PointerCatalog implements Catalog {
  abstract readonly kind: string;
  protected abstract readonly store: ObjectStore;
  protected readonly now: () => number = () => Date.now();

  abstract createNamespace(namespace: readonly string[]): Promise<void>;
  abstract listNamespaces(): Promise<string[][]>;
  abstract listTables(namespace: readonly string[]): Promise<TableIdent[]>;
  abstract dropTable(ident: TableIdent): Promise<void>;
  /** The current pointer, or null when the table does not exist. */
  protected abstract readPointer(ident: TableIdent): Promise<PointerRecord | null>;
  /** Create the pointer; ALREADY_EXISTS when the table exists. */
  protected abstract insertPointer(ident: TableIdent, metadataLocation: string): Promise<void>;
  /** Swap the pointer if it is still `expected`; COMMIT_CONFLICT otherwise. */
  protected abstract swapPointer(ident: TableIdent, expected: PointerRecord, metadataLocation: string): Promise<void>;

  async loadTable(ident: TableIdent): Promise<LoadedTable | null> {
    const pointer = await this.readPointer(ident);
    if (pointer === null) return null;
    return this.read(ident, pointer.metadataLocation);
  }

  private async read(ident: TableIdent, metadataLocation: string): Promise<LoadedTable> {
    const bytes = await this.store.get(metadataLocation);
    return { ident, metadataLocation, metadata: parseTableMetadata(new TextDecoder().decode(bytes)) };
  }

  async createTable(ident: TableIdent, request: CreateTableRequest): Promise<LoadedTable> {
    if ((await this.readPointer(ident)) !== null) {
      throw new LakeError('ALREADY_EXISTS', `table ${ident.namespace.join('.')}.${ident.name} exists`);
    }
    const metadata = newTableMetadata({
      uuid: crypto.randomUUID(),
      location: request.location,
      schema: request.schema,
      spec: request.spec,
      ...(request.sortOrder === undefined ? {} : { sortOrder: request.sortOrder }),
      properties: request.properties ?? {},
      nowMs: this.now(),
    });
    const location = metadataPath(metadata.location, 0);
    await this.store.put(location, new TextEncoder().encode(serializeTableMetadata(metadata)));
    await this.insertPointer(ident, location);
    return { ident, metadataLocation: location, metadata };
  }

  async commitTable(
    ident: TableIdent,
    requirements: readonly TableRequirement[],
    updates: readonly TableUpdate[],
  ): Promise<LoadedTable> {
    const pointer = await this.readPointer(ident);
    if (pointer === null) throw new LakeError('NOT_FOUND', `table ${ident.name} does not exist`);
    const base = await this.read(ident, pointer.metadataLocation);
    checkRequirements(base.metadata, requirements);
    const next = applyUpdates(base.metadata, updates, this.now(), base.metadataLocation);
    const location = metadataPath(next.location, parseMetadataVersion(base.metadataLocation) + 1);
    await this.store.put(location, new TextEncoder().encode(serializeTableMetadata(next)));
    await this.swapPointer(ident, pointer, location);
    return { ident, metadataLocation: location, metadata: next };
  }
}

/** `<table>/metadata/00001-<uuid>.metadata.json`, the layout Java and pyiceberg use. */
export function metadataPath(tableLocation: string, version: number): string {
  return `${tableLocation}/metadata/${String(version).padStart(5, '0')}-${crypto.randomUUID()}.metadata.json`;
}

export function parseMetadataVersion(location: string): number {
  const m = /\/(\d+)-[0-9a-f-]+\.metadata\.json$/.exec(location);
  return m === null ? 0 : Number(m[1]);
}
