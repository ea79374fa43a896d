import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLakeError } from '../lake/errors.ts';
import type { TableIdent } from '../lake/ports.ts';
import { FsObjectStore } from './fs-object-store.ts';
import { SqlCatalog } from './sql-catalog.ts';

const IDENT: TableIdent = { namespace: ['lakesync'], name: 't' };

describe('SqlCatalog', () => {
  it('two connections committing at once: each commit lands once or fails with COMMIT_CONFLICT, none is lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lakesync-sqlcat-'));
    const store = new FsObjectStore({ fsync: false });
    const a = new SqlCatalog(join(dir, 'catalog.db'), store);
    const b = new SqlCatalog(join(dir, 'catalog.db'), store);
    await a.createNamespace(IDENT.namespace);
    await a.createTable(IDENT, {
      location: FsObjectStore.uriFor(join(dir, 'warehouse/t')),
      schema: { type: 'struct', 'schema-id': 0, fields: [] },
      spec: { 'spec-id': 0, fields: [] },
    });
    await expect(b.createTable(IDENT, { location: 'file:///x', schema: { type: 'struct', 'schema-id': 0, fields: [] }, spec: { 'spec-id': 0, fields: [] } })).rejects.toThrow(/exists/);
    let conflicts = 0;
    const commit = async (k: number): Promise<void> => {
      for (;;) {
        try {
          await (k % 2 === 0 ? a : b).commitTable(IDENT, [], [{ action: 'set-properties', updates: { [`k${k}`]: 'v' } }]);
          return;
        } catch (err) {
          if (!isLakeError(err, 'COMMIT_CONFLICT')) throw err;
          conflicts++;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, k) => commit(k)));
    expect(conflicts).toBeGreaterThan(0); // the race did happen
    const t = await b.loadTable(IDENT);
    for (let k = 0; k < 16; k++) expect(t?.metadata.properties[`k${k}`]).toBe('v');
    expect(t?.metadata['metadata-log']).toHaveLength(16);
    a.close();
    b.close();
  });
});
