import Database from 'better-sqlite3';
import { LakeError } from '../lake/errors.ts';
import { PointerCatalog, type PointerRecord } from '../lake/catalog/pointer-catalog.ts';
import type { ObjectStore, TableIdent } from '../lake/ports.ts';

/**
 * The embedded default's catalog: a SQLite file with exactly the tables of
 * pyiceberg's SqlCatalog (and Java's JdbcCatalog), so a user can open the
 * lake with `SqlCatalog("lakesync", uri="sqlite:///.lakesync/lake/catalog.db")`.
 * The pointer swap is a compare-and-set UPDATE on metadata_location.
 */
export class SqlCatalog extends PointerCatalog {
  readonly kind = 'sql';
  private readonly db: Database.Database;

  constructor(
    path: string,
    protected readonly store: ObjectStore,
    private readonly catalogName = 'lakesync',
  ) {
    super();
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS iceberg_tables (
        catalog_name VARCHAR(255) NOT NULL,
        table_namespace VARCHAR(255) NOT NULL,
        table_name VARCHAR(255) NOT NULL,
        metadata_location VARCHAR(1000),
        previous_metadata_location VARCHAR(1000),
        iceberg_type VARCHAR(5),
        PRIMARY KEY (catalog_name, table_namespace, table_name)
      );
      CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
        catalog_name VARCHAR(255) NOT NULL,
        namespace VARCHAR(255) NOT NULL,
        property_key VARCHAR(255) NOT NULL,
        property_value VARCHAR(1000) NOT NULL,
        PRIMARY KEY (catalog_name, namespace, property_key)
      );
    `);
  }

  close(): void {
    this.db.close();
  }

  createNamespace(namespace: readonly string[]): Promise<void> {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)
         VALUES (?, ?, 'exists', 'true')`,
      )
      .run(this.catalogName, namespace.join('.'));
    return Promise.resolve();
  }

  listNamespaces(): Promise<string[][]> {
    const rows = this.db
      .prepare(
        `SELECT DISTINCT namespace AS ns FROM iceberg_namespace_properties WHERE catalog_name = ?
         UNION SELECT DISTINCT table_namespace AS ns FROM iceberg_tables WHERE catalog_name = ? ORDER BY 1`,
      )
      .all(this.catalogName, this.catalogName) as { ns: string }[];
    return Promise.resolve(rows.map((r) => r.ns.split('.')));
  }

  listTables(namespace: readonly string[]): Promise<TableIdent[]> {
    const rows = this.db
      .prepare(
        `SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ?
         AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) ORDER BY table_name`,
      )
      .all(this.catalogName, namespace.join('.')) as { table_name: string }[];
    return Promise.resolve(rows.map((r) => ({ namespace: [...namespace], name: r.table_name })));
  }

  dropTable(ident: TableIdent): Promise<void> {
    this.db
      .prepare('DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?')
      .run(this.catalogName, ident.namespace.join('.'), ident.name);
    return Promise.resolve();
  }

  protected readPointer(ident: TableIdent): Promise<PointerRecord | null> {
    const row = this.db
      .prepare(
        `SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?`,
      )
      .get(this.catalogName, ident.namespace.join('.'), ident.name) as { metadata_location: string | null } | undefined;
    if (row?.metadata_location === undefined || row.metadata_location === null) return Promise.resolve(null);
    return Promise.resolve({ metadataLocation: row.metadata_location, version: row.metadata_location });
  }

  protected insertPointer(ident: TableIdent, metadataLocation: string): Promise<void> {
    const r = this.db
      .prepare(
        `INSERT OR IGNORE INTO iceberg_tables
           (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type)
         VALUES (?, ?, ?, ?, NULL, 'TABLE')`,
      )
      .run(this.catalogName, ident.namespace.join('.'), ident.name, metadataLocation);
    if (r.changes === 0) return Promise.reject(new LakeError('ALREADY_EXISTS', `table ${ident.name} exists`));
    return Promise.resolve();
  }

  protected swapPointer(ident: TableIdent, expected: PointerRecord, metadataLocation: string): Promise<void> {
    const r = this.db
      .prepare(
        `UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ?
         WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?`,
      )
      .run(metadataLocation, expected.metadataLocation, this.catalogName, ident.namespace.join('.'), ident.name, expected.version);
    if (r.changes === 0) {
      return Promise.reject(new LakeError('COMMIT_CONFLICT', `table ${ident.name} changed during the commit`));
    }
    return Promise.resolve();
  }
}
