import { describe, expect, it } from 'vitest';
import { makeDelta } from './delta.ts';
import { SchemaRegistry } from './schema.ts';
import type { Columns } from './values.ts';

const registry = new SchemaRegistry({
  version: 2,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 's', type: 'string' },
        { name: 'i', type: 'integer' },
        { name: 'n', type: 'number' },
        { name: 'b', type: 'boolean' },
        { name: 'j', type: 'json' },
        { name: 'req', type: 'string', nullable: false },
      ],
    },
  ],
});

const delta = (columns: Columns, op: 'insert' | 'update' | 'delete' = 'insert', table = 'todos') =>
  makeDelta({ table, rowId: 'r', op, columns, hlc: 1n, clientId: 'c' });

describe('SchemaRegistry.validate', () => {
  it('accepts every type', () => {
    expect(() => registry.validate(delta({ s: 'x', i: 2n ** 62n, n: 1.5, b: false, j: { json: '{"a":1}' }, req: 'y' }))).not.toThrow();
    expect(() => registry.validate(delta({ s: null }))).not.toThrow();
  });

  it.each([
    [{ s: 1 }, 'INVALID_VALUE'],
    [{ i: 1.5 }, 'INVALID_VALUE'],
    [{ i: 2n ** 63n }, 'INVALID_VALUE'],
    [{ n: Number.POSITIVE_INFINITY }, 'INVALID_VALUE'],
    [{ n: 1n }, 'INVALID_VALUE'],
    [{ b: 'true' }, 'INVALID_VALUE'],
    [{ j: { json: '{nope' } }, 'INVALID_VALUE'],
    [{ j: 'plain string' }, 'INVALID_VALUE'],
    [{ req: null }, 'INVALID_VALUE'],
    [{ zz: 1n }, 'UNKNOWN_COLUMN'],
    [JSON.parse('{"__proto__": "x"}') as Columns, 'UNKNOWN_COLUMN'],
  ] as [Columns, string][])('refuses %o with %s', (columns, code) => {
    const cols = Object.assign(Object.create(null) as object, columns) as Columns;
    expect(() => registry.validate(delta(cols))).toThrowError(expect.objectContaining({ code }) as Error);
  });

  it('refuses unknown tables, empty updates and deletes with columns', () => {
    expect(() => registry.validate(delta({}, 'insert', 'nope'))).toThrowError(expect.objectContaining({ code: 'UNKNOWN_TABLE' }) as Error);
    expect(() => registry.validate(delta({}, 'update'))).toThrowError(expect.objectContaining({ code: 'INVALID_REQUEST' }) as Error);
    expect(() => registry.validate(delta({ s: 'x' }, 'delete'))).toThrowError(expect.objectContaining({ code: 'INVALID_REQUEST' }) as Error);
  });

  it('refuses bad schemas at construction', () => {
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 'bad name', columns: [] }] })).toThrow();
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 't', columns: [{ name: 'id', type: 'string' }] }] })).toThrow();
  });

  it('refuses names that SQLite (the client, the local server) would take for another: case, "ID", sqlite_ tables', () => {
    const col = (name: string) => ({ name, type: 'string' as const });
    // SQLite names are case-insensitive: "ID" is the client's id column, "Title" the same column as "title".
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 't', columns: [col('ID')] }] })).toThrow(/invalid column name/);
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 't', columns: [col('title'), col('Title')] }] })).toThrow(/duplicate column/);
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 'Todos', columns: [] }, { name: 'todos', columns: [] }] })).toThrow(/duplicate table/);
    // SQLite reserves table names starting with sqlite_.
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 'SQLite_things', columns: [] }] })).toThrow(/invalid table name/);
    expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 'Things', columns: [col('Title'), col('sqlite_x')] }] })).not.toThrow();
  });

  it('refuses names of Object.prototype members: records keyed by column names would read them as columns', () => {
    // merge.ts keeps columns in plain objects: a "toString" column read the inherited function as its register.
    for (const name of ['toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']) {
      expect(() => new SchemaRegistry({ version: 1, tables: [{ name: 't', columns: [{ name, type: 'string' }] }] })).toThrow(/invalid column name/);
      expect(() => new SchemaRegistry({ version: 1, tables: [{ name, columns: [] }] })).toThrow(/invalid table name/);
    }
  });
});
