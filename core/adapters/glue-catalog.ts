import {
  CreateDatabaseCommand,
  CreateTableCommand,
  DeleteTableCommand,
  GetDatabasesCommand,
  GetTableCommand,
  GetTablesCommand,
  UpdateTableCommand,
  type Column,
  type GlueClient,
  type Table,
  type TableInput,
} from '@aws-sdk/client-glue';
import { PointerCatalog, type PointerRecord } from '../lake/catalog/pointer-catalog.ts';
import { LakeError } from '../lake/errors.ts';
import { parseTableMetadata } from '../lake/iceberg/metadata.ts';
import type { IcebergType, TableMetadata } from '../lake/iceberg/types.ts';
import type { ObjectInfo, ObjectStore, TableIdent } from '../lake/ports.ts';
import { awsError } from './s3-object-store.ts';

/**
 * The AWS Glue Data Catalog as an Iceberg catalog, laid out as Apache
 * Iceberg's GlueCatalog and pyiceberg's do (so Athena, EMR, Spark and
 * pyiceberg open the same tables): a namespace is a Glue database (one level
 * only), a table is an EXTERNAL_TABLE whose Parameters hold table_type=ICEBERG,
 * metadata_location and previous_metadata_location, with the Iceberg
 * columns in its StorageDescriptor for Athena's and the console's sake.
 *
 * The pointer swap is UpdateTable with the VersionId read just before: Glue
 * refuses it with ConcurrentModificationException when the table changed
 * in between. Right before the swap the table is read again and its
 * metadata_location compared with the one the commit started from (a
 * mismatch is a conflict without a wasted write, and a change to Parameters
 * alone is not one), and within one process the re-read and UpdateTable of
 * a table run one at a time. That makes the swap a true compare-and-set
 * for writers in one process even where VersionId is not enforced (moto
 * 5.2.5 accepts any VersionId); across processes it rests on Glue's check.
 */
export interface GlueCatalogOptions {
  /** The account whose catalog to use (Glue's CatalogId); default: the caller's. */
  readonly catalogId?: string;
  /**
   * Ask Glue not to archive the previous table version on every commit
   * (Glue keeps a bounded number; a streaming writer would hit the limit).
   * Default true, as in Iceberg's and pyiceberg's GlueCatalog.
   */
  readonly skipArchive?: boolean;
  /** Write the Iceberg schema as the table's Glue columns. Default true. */
  readonly columns?: boolean;
}

// Glue stores names in lower case; Iceberg's GlueCatalog refuses anything else rather than fold case.
const DATABASE_NAME = /^[a-z0-9_]{1,252}$/;
const TABLE_NAME = /^[a-z0-9_]{1,255}$/;

const TABLE_TYPE = 'table_type';
const METADATA_LOCATION = 'metadata_location';
const PREVIOUS_METADATA_LOCATION = 'previous_metadata_location';

export class GlueCatalog extends PointerCatalog {
  readonly kind = 'glue';
  protected readonly store: ObjectStore;
  private readonly written: RecentMetadata;
  private readonly catalogId: { CatalogId?: string };
  private readonly skipArchive: boolean;
  private readonly withColumns: boolean;

  constructor(
    private readonly client: GlueClient,
    store: ObjectStore,
    options: GlueCatalogOptions = {},
  ) {
    super();
    this.written = new RecentMetadata(store);
    this.store = this.written;
    this.catalogId = options.catalogId === undefined ? {} : { CatalogId: options.catalogId };
    this.skipArchive = options.skipArchive ?? true;
    this.withColumns = options.columns ?? true;
  }

  async createNamespace(namespace: readonly string[]): Promise<void> {
    const name = databaseName(namespace);
    try {
      await this.client.send(new CreateDatabaseCommand({ ...this.catalogId, DatabaseInput: { Name: name } }));
    } catch (e) {
      if (awsError(e).name === 'AlreadyExistsException') return;
      throw catalogError(`create database ${name}`, e);
    }
  }

  async listNamespaces(): Promise<string[][]> {
    const out: string[][] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new GetDatabasesCommand({ ...this.catalogId, ...(token === undefined ? {} : { NextToken: token }) }));
      } catch (e) {
        throw catalogError('list databases', e);
      }
      for (const db of page.DatabaseList ?? []) if (db.Name !== undefined) out.push([db.Name]);
      token = page.NextToken === '' ? undefined : page.NextToken;
    } while (token !== undefined);
    return out.sort((a, b) => (a[0] as string).localeCompare(b[0] as string));
  }

  /** Iceberg tables only; an unknown database has none. */
  async listTables(namespace: readonly string[]): Promise<TableIdent[]> {
    const db = databaseName(namespace);
    const names: string[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new GetTablesCommand({ ...this.catalogId, DatabaseName: db, ...(token === undefined ? {} : { NextToken: token }) }),
        );
      } catch (e) {
        if (awsError(e).name === 'EntityNotFoundException') return [];
        throw catalogError(`list tables of ${db}`, e);
      }
      for (const t of page.TableList ?? []) if (isIceberg(t)) names.push(t.Name as string);
      token = page.NextToken === '' ? undefined : page.NextToken;
    } while (token !== undefined);
    return names.sort().map((name) => ({ namespace: [db], name }));
  }

  /** Removes the catalog entry only (files stay, as with the SQL catalog); a missing table is not an error. */
  async dropTable(ident: TableIdent): Promise<void> {
    const [db, name] = glueName(ident);
    try {
      await this.client.send(new DeleteTableCommand({ ...this.catalogId, DatabaseName: db, Name: name }));
    } catch (e) {
      if (awsError(e).name === 'EntityNotFoundException') return;
      throw catalogError(`drop table ${db}.${name}`, e);
    }
  }

  protected async readPointer(ident: TableIdent): Promise<PointerRecord | null> {
    const table = await this.getTable(ident);
    if (table === null) return null;
    return { metadataLocation: pointerOf(table), version: table.VersionId ?? '' };
  }

  protected async insertPointer(ident: TableIdent, metadataLocation: string): Promise<void> {
    const [db, name] = glueName(ident);
    const input = this.tableInput(name, {}, metadataLocation, undefined, await this.metadataOf(metadataLocation));
    try {
      await this.client.send(new CreateTableCommand({ ...this.catalogId, DatabaseName: db, TableInput: input }));
    } catch (e) {
      const { name: code } = awsError(e);
      if (code === 'AlreadyExistsException') throw new LakeError('ALREADY_EXISTS', `table ${db}.${name} exists`, { cause: e });
      if (code === 'EntityNotFoundException') throw new LakeError('NOT_FOUND', `database ${db} does not exist`, { cause: e });
      throw catalogError(`create table ${db}.${name}`, e);
    }
  }

  protected async swapPointer(ident: TableIdent, expected: PointerRecord, metadataLocation: string): Promise<void> {
    const [db, name] = glueName(ident);
    const metadata = await this.metadataOf(metadataLocation);
    await serialized(`${this.catalogId.CatalogId ?? ''}/${db}/${name}`, async () => {
      const current = await this.getTable(ident);
      if (current === null) throw new LakeError('NOT_FOUND', `table ${db}.${name} was dropped during the commit`);
      if (pointerOf(current) !== expected.metadataLocation) {
        throw new LakeError('COMMIT_CONFLICT', `table ${db}.${name} changed during the commit`);
      }
      const input = this.tableInput(name, current.Parameters ?? {}, metadataLocation, expected.metadataLocation, metadata);
      try {
        await this.client.send(
          new UpdateTableCommand({
            ...this.catalogId,
            DatabaseName: db,
            TableInput: input,
            SkipArchive: this.skipArchive,
            ...(current.VersionId === undefined ? {} : { VersionId: current.VersionId }),
          }),
        );
      } catch (e) {
        const { name: code, status } = awsError(e);
        if (code === 'EntityNotFoundException') throw new LakeError('NOT_FOUND', `table ${db}.${name} was dropped during the commit`, { cause: e });
        const conflict = code === 'ConcurrentModificationException';
        // No answer, or a server fault: it may have landed. So may a conflict, when the
        // SDK's retry of our own request found it done. Look once before saying.
        if (conflict || status === undefined || status >= 500) {
          const landed = await this.pointsTo(ident, metadataLocation);
          if (landed === true) return;
          // A conflict is only known to be one when the re-read shows another pointer.
          if (conflict && landed === false) throw new LakeError('COMMIT_CONFLICT', `table ${db}.${name} changed during the commit`, { cause: e });
          throw new LakeError('COMMIT_STATE_UNKNOWN', `update table ${db}.${name}: ${describe(e)}`, { cause: e });
        }
        throw catalogError(`update table ${db}.${name}`, e);
      }
    });
  }

  private async getTable(ident: TableIdent): Promise<Table | null> {
    const [db, name] = glueName(ident);
    let table: Table | undefined;
    try {
      table = (await this.client.send(new GetTableCommand({ ...this.catalogId, DatabaseName: db, Name: name }))).Table;
    } catch (e) {
      if (awsError(e).name === 'EntityNotFoundException') return null;
      throw catalogError(`get table ${db}.${name}`, e);
    }
    if (table === undefined) throw new LakeError('CATALOG_ERROR', `get table ${db}.${name}: no table in the answer`);
    if (!isIceberg(table)) {
      throw new LakeError('CATALOG_ERROR', `${db}.${name} is a Glue table but not an Iceberg table (table_type is ${table.Parameters?.[TABLE_TYPE] ?? 'unset'})`);
    }
    return table;
  }

  /** Whether the table points at `location` now (null when it cannot be read). */
  private async pointsTo(ident: TableIdent, location: string): Promise<boolean | null> {
    try {
      const t = await this.getTable(ident);
      return t !== null && pointerOf(t) === location;
    } catch {
      return null;
    }
  }

  /** The metadata just written at `location`, for the Glue columns: kept from the write, else read back. */
  private async metadataOf(location: string): Promise<TableMetadata | null> {
    if (!this.withColumns) return null;
    const bytes = this.written.take(location) ?? (await this.written.get(location));
    return parseTableMetadata(new TextDecoder().decode(bytes));
  }

  private tableInput(
    name: string,
    parameters: Readonly<Record<string, string>>,
    metadataLocation: string,
    previous: string | undefined,
    metadata: TableMetadata | null,
  ): TableInput {
    // UpdateTable replaces the whole definition: keep the Parameters others set.
    const params: Record<string, string> = { ...parameters, [TABLE_TYPE]: 'ICEBERG', [METADATA_LOCATION]: metadataLocation };
    if (previous === undefined) delete params[PREVIOUS_METADATA_LOCATION];
    else params[PREVIOUS_METADATA_LOCATION] = previous;
    return {
      Name: name,
      TableType: 'EXTERNAL_TABLE',
      Parameters: params,
      ...(metadata === null ? {} : { StorageDescriptor: { Location: metadata.location, Columns: glueColumns(metadata) } }),
    };
  }
}

function databaseName(namespace: readonly string[]): string {
  if (namespace.length !== 1) {
    throw new LakeError(
      'CATALOG_ERROR',
      `Glue databases have one level: namespace ${JSON.stringify(namespace.join('.'))} has ${namespace.length}`,
    );
  }
  const db = namespace[0] as string;
  if (!DATABASE_NAME.test(db)) {
    throw new LakeError('CATALOG_ERROR', `Glue database name ${JSON.stringify(db)}: use lower-case letters, digits and _`);
  }
  return db;
}

function glueName(ident: TableIdent): [string, string] {
  const db = databaseName(ident.namespace);
  if (!TABLE_NAME.test(ident.name)) {
    throw new LakeError('CATALOG_ERROR', `Glue table name ${JSON.stringify(ident.name)}: use lower-case letters, digits and _`);
  }
  return [db, ident.name];
}

function isIceberg(t: Table): boolean {
  return t.Parameters?.[TABLE_TYPE]?.toLowerCase() === 'iceberg';
}

function pointerOf(t: Table): string {
  const location = t.Parameters?.[METADATA_LOCATION];
  if (location === undefined || location === '') {
    throw new LakeError('CORRUPT_METADATA', `Glue table ${t.DatabaseName ?? '?'}.${t.Name ?? '?'} has no ${METADATA_LOCATION}`);
  }
  return location;
}

/** Columns of every schema, the current one first (as Iceberg's GlueCatalog writes them). */
export function glueColumns(m: TableMetadata): Column[] {
  const out = new Map<string, Column>();
  const current = m.schemas.filter((s) => s['schema-id'] === m['current-schema-id']);
  const older = m.schemas.filter((s) => s['schema-id'] !== m['current-schema-id']).reverse();
  for (const [schemas, isCurrent] of [[current, true], [older, false]] as const) {
    for (const s of schemas) {
      for (const f of s.fields) {
        if (out.has(f.name)) continue;
        out.set(f.name, {
          Name: f.name,
          Type: glueType(f.type),
          // Glue limits a column comment to 255 characters.
          ...(f.doc === undefined ? {} : { Comment: f.doc.slice(0, 255) }),
          Parameters: {
            'iceberg.field.id': String(f.id),
            'iceberg.field.optional': String(!f.required),
            'iceberg.field.current': String(isCurrent),
          },
        });
      }
    }
  }
  return [...out.values()];
}

/** Hive type names, as Athena reads them. */
function glueType(t: IcebergType): string {
  if (typeof t === 'string') {
    switch (t) {
      case 'int':
        return 'int';
      case 'long':
        return 'bigint';
      case 'timestamptz':
      case 'timestamp':
        return 'timestamp';
      case 'time':
      case 'uuid':
        return 'string';
      default:
        return t;
    }
  }
  if (t.type === 'list') return `array<${glueType(t.element)}>`;
  return `struct<${t.fields.map((f) => `${f.name}:${glueType(f.type)}`).join(',')}>`;
}

function describe(e: unknown): string {
  const { name, status } = awsError(e);
  const message = e instanceof Error ? e.message : String(e);
  return `${name || 'error'}${status === undefined ? '' : ` (${status})`}: ${message}`;
}

function catalogError(what: string, e: unknown): LakeError {
  if (e instanceof LakeError) return e;
  return new LakeError('CATALOG_ERROR', `${what}: ${describe(e)}`, { cause: e });
}

/** The swaps of one table in this process, one after another. */
const swapQueues = new Map<string, Promise<void>>();

async function serialized<T>(key: string, f: () => Promise<T>): Promise<T> {
  const before = swapQueues.get(key) ?? Promise.resolve();
  const run = before.then(f);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  swapQueues.set(key, tail);
  try {
    return await run;
  } finally {
    if (swapQueues.get(key) === tail) swapQueues.delete(key);
  }
}

/**
 * The store as the base class sees it: it remembers the metadata files just
 * written, so the swap that follows can list the new columns without
 * reading the file back. Bounded: entries nobody takes fall out.
 */
class RecentMetadata implements ObjectStore {
  private readonly recent = new Map<string, Uint8Array>();
  constructor(private readonly inner: ObjectStore) {}

  take(uri: string): Uint8Array | undefined {
    const bytes = this.recent.get(uri);
    this.recent.delete(uri);
    return bytes;
  }

  async put(uri: string, bytes: Uint8Array): Promise<void> {
    await this.inner.put(uri, bytes);
    if (!uri.endsWith('.metadata.json')) return;
    this.recent.set(uri, bytes);
    if (this.recent.size > 32) this.recent.delete(this.recent.keys().next().value as string);
  }

  putIfAbsent(uri: string, bytes: Uint8Array): Promise<boolean> {
    return this.inner.putIfAbsent(uri, bytes);
  }

  get(uri: string): Promise<Uint8Array> {
    return this.inner.get(uri);
  }

  head(uri: string): Promise<ObjectInfo | null> {
    return this.inner.head(uri);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  delete(uris: readonly string[]): Promise<void> {
    return this.inner.delete(uris);
  }
}
