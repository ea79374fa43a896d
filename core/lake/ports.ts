import type { TableRequirement, TableUpdate } from './iceberg/metadata.ts';
import type { IcebergSchema, PartitionSpec, SortOrder, TableMetadata } from './iceberg/types.ts';

/**
 * The lake's ports. Object stores: local disk (embedded default), S3, R2.
 * Catalogs: the local SQL catalog (pyiceberg's SqlCatalog layout), any
 * Iceberg REST catalog, AWS Glue. Everything is addressed by full URIs
 * (file:///..., s3://bucket/...), because Iceberg metadata stores full paths.
 */
export interface ObjectInfo {
  readonly uri: string;
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly lastModified: number;
}

export interface ObjectStore {
  /** Write a whole object; visible to readers only once complete. */
  put(uri: string, bytes: Uint8Array): Promise<void>;
  /** Write only if absent; false when the object already exists. */
  putIfAbsent(uri: string, bytes: Uint8Array): Promise<boolean>;
  /** Throws LakeError NOT_FOUND when absent. */
  get(uri: string): Promise<Uint8Array>;
  head(uri: string): Promise<ObjectInfo | null>;
  /** Every object whose URI starts with the prefix. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Missing objects are not an error. */
  delete(uris: readonly string[]): Promise<void>;
}

export interface TableIdent {
  readonly namespace: readonly string[];
  readonly name: string;
}

export interface LoadedTable {
  readonly ident: TableIdent;
  readonly metadataLocation: string;
  readonly metadata: TableMetadata;
}

export interface CreateTableRequest {
  readonly schema: IcebergSchema;
  readonly spec: PartitionSpec;
  readonly sortOrder?: SortOrder;
  readonly properties?: Readonly<Record<string, string>>;
  /** Table root; catalogs that choose locations themselves may ignore it. */
  readonly location: string;
}

export interface Catalog {
  /** A short name for logs and CLI output: "sql", "rest", "glue". */
  readonly kind: string;
  /** Idempotent. */
  createNamespace(namespace: readonly string[]): Promise<void>;
  listNamespaces(): Promise<string[][]>;
  listTables(namespace: readonly string[]): Promise<TableIdent[]>;
  /** null when the table does not exist. */
  loadTable(ident: TableIdent): Promise<LoadedTable | null>;
  /** Throws LakeError ALREADY_EXISTS when the table exists. */
  createTable(ident: TableIdent, request: CreateTableRequest): Promise<LoadedTable>;
  /**
   * Apply updates atomically if every requirement holds against the
   * catalog's current metadata. Throws LakeError COMMIT_CONFLICT when one does
   * not (reload and retry), COMMIT_STATE_UNKNOWN when the outcome cannot be
   * known (reload and look before retrying; keep the files).
   */
  commitTable(ident: TableIdent, requirements: readonly TableRequirement[], updates: readonly TableUpdate[]): Promise<LoadedTable>;
  dropTable(ident: TableIdent): Promise<void>;
}
