import {
  AlreadyExistsException,
  ConcurrentModificationException,
  EntityNotFoundException,
  InvalidInputException,
  type GlueClient,
  type Table,
} from '@aws-sdk/client-glue';
import { describe, expect, it } from 'vitest';
import { isLakeError, LakeError } from '../lake/errors.ts';
import type { ObjectInfo, ObjectStore } from '../lake/ports.ts';
import { GlueCatalog, glueColumns } from './glue-catalog.ts';

/**
 * The Glue catalog's error branches against a stub client: what moto cannot
 * show (it ignores VersionId and never answers ConcurrentModificationException).
 * The adapter against a real Glue API is in test/lake/aws.test.ts.
 */
class MapStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();
  put(uri: string, bytes: Uint8Array): Promise<void> {
    this.objects.set(uri, bytes);
    return Promise.resolve();
  }
  putIfAbsent(uri: string, bytes: Uint8Array): Promise<boolean> {
    if (this.objects.has(uri)) return Promise.resolve(false);
    this.objects.set(uri, bytes);
    return Promise.resolve(true);
  }
  get(uri: string): Promise<Uint8Array> {
    const b = this.objects.get(uri);
    return b === undefined ? Promise.reject(new LakeError('NOT_FOUND', uri)) : Promise.resolve(b);
  }
  head(uri: string): Promise<ObjectInfo | null> {
    const b = this.objects.get(uri);
    return Promise.resolve(b === undefined ? null : { uri, size: b.length, lastModified: 0 });
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const [uri, b] of this.objects) if (uri.startsWith(prefix)) yield { uri, size: b.length, lastModified: 0 };
  }
  delete(uris: readonly string[]): Promise<void> {
    for (const u of uris) this.objects.delete(u);
    return Promise.resolve();
  }
}

type Input = Record<string, unknown> & { TableInput?: { Parameters?: Record<string, string> } };
type Handler = (input: Input, stub: StubGlue) => unknown;

/** A Glue API that holds one table in memory; handlers override single operations. */
class StubGlue {
  table: Table | null = null;
  calls: { op: string; input: Input }[] = [];
  constructor(readonly overrides: Record<string, Handler> = {}) {}

  send(command: { constructor: { name: string }; input: Input }): Promise<unknown> {
    const op = command.constructor.name.replace(/Command$/, '');
    this.calls.push({ op, input: command.input });
    return Promise.resolve().then(() => (this.overrides[op] ?? this.default(op))(command.input, this));
  }

  private default(op: string): Handler {
    switch (op) {
      case 'CreateDatabase':
        return () => ({});
      case 'GetTable':
        return () => {
          if (this.table === null) throw new EntityNotFoundException({ message: 'no table', $metadata: { httpStatusCode: 400 } });
          return { Table: this.table };
        };
      case 'CreateTable':
        return (input) => {
          this.table = { ...(input['TableInput'] as Table), DatabaseName: input['DatabaseName'] as string, VersionId: '1' };
          return {};
        };
      case 'UpdateTable':
        return (input) => this.update(input);
      default:
        throw new Error(`stub has no ${op}`);
    }
  }

  update(input: Input): unknown {
    this.table = { ...(input['TableInput'] as Table), DatabaseName: input['DatabaseName'] as string, VersionId: String(Number(this.table?.VersionId) + 1) };
    return {};
  }

  /** Someone else changes the table (a commit of theirs, or Parameters only). */
  touch(parameters: Record<string, string>): void {
    const t = this.table as Table;
    this.table = { ...t, Parameters: { ...t.Parameters, ...parameters }, VersionId: String(Number(t.VersionId) + 1) };
  }
}

const IDENT = { namespace: ['db'], name: 't' };
const SCHEMA = {
  type: 'struct' as const,
  'schema-id': 0,
  fields: [
    { id: 1, name: 'id', required: true, type: 'string' as const },
    { id: 2, name: 'at', required: false, type: 'timestamptz' as const, doc: 'when' },
  ],
};

async function setup(overrides: Record<string, Handler> = {}, options = {}): Promise<{ stub: StubGlue; catalog: GlueCatalog; store: MapStore }> {
  const stub = new StubGlue(overrides);
  const store = new MapStore();
  const catalog = new GlueCatalog(stub as unknown as GlueClient, store, options);
  await catalog.createTable(IDENT, { schema: SCHEMA, spec: { 'spec-id': 0, fields: [] }, location: 's3://b/db/t' });
  stub.calls = [];
  return { stub, catalog, store };
}

function commit(catalog: GlueCatalog): Promise<unknown> {
  return catalog.commitTable(IDENT, [], [{ action: 'set-properties', updates: { k: 'v' } }]);
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isLakeError(e) ? e.code : `not a LakeError: ${String(e)}`;
  }
}

describe('GlueCatalog', () => {
  it('swaps with UpdateTable at the VersionId read just before, keeping Parameters others set', async () => {
    const { stub, catalog } = await setup({}, { catalogId: '123456789012' });
    const before = stub.table?.Parameters?.['metadata_location'];
    // Someone sets a parameter between our load and our swap: not a conflict.
    stub.overrides['GetTable'] = (_input, s) => {
      if (s.calls.filter((c) => c.op === 'GetTable').length === 2) s.touch({ owner: 'ops' });
      return { Table: s.table };
    };
    await commit(catalog);
    const update = stub.calls.find((c) => c.op === 'UpdateTable')?.input;
    expect(update?.['VersionId']).toBe('2');
    expect(update?.['SkipArchive']).toBe(true);
    expect(update?.['CatalogId']).toBe('123456789012');
    expect(update?.TableInput?.Parameters).toMatchObject({ owner: 'ops', table_type: 'ICEBERG', previous_metadata_location: before });
    expect(stub.calls.every((c) => c.input['CatalogId'] === '123456789012')).toBe(true);
  });

  it('ConcurrentModificationException is COMMIT_CONFLICT, unless the table already points at our file', async () => {
    const { catalog } = await setup({
      UpdateTable: () => {
        throw new ConcurrentModificationException({ message: 'version moved', $metadata: { httpStatusCode: 400 } });
      },
    });
    expect(await codeOf(commit(catalog))).toBe('COMMIT_CONFLICT');

    // The SDK retried our own UpdateTable after the first attempt had landed.
    const { stub, catalog: c2 } = await setup({
      UpdateTable: (input, s) => {
        s.update(input);
        throw new ConcurrentModificationException({ message: 'version moved', $metadata: { httpStatusCode: 400 } });
      },
    });
    await commit(c2);
    expect((await c2.loadTable(IDENT))?.metadata.properties['k']).toBe('v');
    expect(stub.table?.VersionId).toBe('2');
  });

  it('a ConcurrentModificationException whose re-read fails is COMMIT_STATE_UNKNOWN: the SDK\'s retry may have met our own landed update', async () => {
    const { stub, catalog } = await setup({
      UpdateTable: (input, s) => {
        s.update(input);
        throw new ConcurrentModificationException({ message: 'version moved', $metadata: { httpStatusCode: 400 } });
      },
    });
    stub.overrides['GetTable'] = (_input, s) => {
      if (s.calls.filter((c) => c.op === 'GetTable').length === 3) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      return { Table: s.table };
    };
    // It did land: COMMIT_CONFLICT would say it did not.
    expect(await codeOf(commit(catalog))).toBe('COMMIT_STATE_UNKNOWN');
  });

  it('a base that moved before the swap is a conflict without an UpdateTable', async () => {
    const { stub, catalog } = await setup();
    stub.overrides['GetTable'] = (_input, s) => {
      if (s.calls.filter((c) => c.op === 'GetTable').length === 2) s.touch({ metadata_location: 's3://b/db/t/metadata/00001-other.metadata.json' });
      return { Table: s.table };
    };
    expect(await codeOf(commit(catalog))).toBe('COMMIT_CONFLICT');
    expect(stub.calls.some((c) => c.op === 'UpdateTable')).toBe(false);
  });

  it('no answer or a 5xx is COMMIT_STATE_UNKNOWN unless a re-read shows it landed; a 4xx is CATALOG_ERROR', async () => {
    const network = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    const { catalog } = await setup({
      UpdateTable: () => {
        throw network;
      },
    });
    expect(await codeOf(commit(catalog))).toBe('COMMIT_STATE_UNKNOWN');

    const { catalog: landed } = await setup({
      UpdateTable: (input, s) => {
        s.update(input);
        throw Object.assign(new Error('internal'), { name: 'InternalServiceException', $metadata: { httpStatusCode: 500 } });
      },
    });
    await commit(landed);

    const { catalog: invalid } = await setup({
      UpdateTable: () => {
        throw new InvalidInputException({ message: 'bad', $metadata: { httpStatusCode: 400 } });
      },
    });
    expect(await codeOf(commit(invalid))).toBe('CATALOG_ERROR');
  });

  it('maps create and lookup errors', async () => {
    const { stub, catalog } = await setup();
    stub.overrides['CreateTable'] = () => {
      throw new AlreadyExistsException({ message: 'exists', $metadata: { httpStatusCode: 400 } });
    };
    stub.table = null;
    expect(await codeOf(catalog.createTable(IDENT, { schema: SCHEMA, spec: { 'spec-id': 0, fields: [] }, location: 's3://b/db/t' }))).toBe(
      'ALREADY_EXISTS',
    );
    stub.overrides['CreateTable'] = () => {
      throw new EntityNotFoundException({ message: 'no database', $metadata: { httpStatusCode: 400 } });
    };
    expect(await codeOf(catalog.createTable(IDENT, { schema: SCHEMA, spec: { 'spec-id': 0, fields: [] }, location: 's3://b/db/t' }))).toBe(
      'NOT_FOUND',
    );
    stub.overrides['GetTable'] = () => {
      throw Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
    };
    expect(await codeOf(catalog.loadTable(IDENT))).toBe('CATALOG_ERROR');
    stub.overrides['GetTable'] = () => ({ Table: { Name: 't', DatabaseName: 'db', Parameters: { table_type: 'ICEBERG' } } });
    expect(await codeOf(catalog.loadTable(IDENT))).toBe('CORRUPT_METADATA');
  });

  it('writes the columns of every schema, current first, in Hive types', async () => {
    const { stub, store } = await setup();
    const location = stub.table?.Parameters?.['metadata_location'] as string;
    expect(store.objects.has(location)).toBe(true);
    expect(stub.table?.StorageDescriptor?.Columns).toEqual([
      { Name: 'id', Type: 'string', Parameters: { 'iceberg.field.id': '1', 'iceberg.field.optional': 'false', 'iceberg.field.current': 'true' } },
      {
        Name: 'at',
        Type: 'timestamp',
        Comment: 'when',
        Parameters: { 'iceberg.field.id': '2', 'iceberg.field.optional': 'true', 'iceberg.field.current': 'true' },
      },
    ]);
    const evolved = glueColumns({
      'current-schema-id': 1,
      schemas: [
        { ...SCHEMA, 'schema-id': 0, fields: [...SCHEMA.fields, { id: 3, name: 'gone', required: false, type: 'long' }] },
        {
          ...SCHEMA,
          'schema-id': 1,
          fields: [SCHEMA.fields[0] as never, { id: 4, name: 's', required: false, type: { type: 'struct', fields: [{ id: 5, name: 'x', required: true, type: 'int' }] } }],
        },
      ],
    } as never);
    expect(evolved.map((c) => [c.Name, c.Type, c.Parameters?.['iceberg.field.current']])).toEqual([
      ['id', 'string', 'true'],
      ['s', 'struct<x:int>', 'true'],
      ['at', 'timestamp', 'false'],
      ['gone', 'bigint', 'false'],
    ]);
  });
});
