import { describe, expect, it } from 'vitest';
import { LakeError, isLakeError, type LakeErrorCode } from '../errors.ts';
import { newTableMetadata } from '../iceberg/metadata.ts';
import type { Catalog, LoadedTable, TableIdent } from '../ports.ts';
import { commitWithRetry, type TableChange } from './commit.ts';

const IDENT: TableIdent = { namespace: ['lake'], name: 't' };

function table(version: number): LoadedTable {
  const metadata = newTableMetadata({
    uuid: 'u',
    location: 'mem://t',
    schema: { type: 'struct', 'schema-id': 0, fields: [] },
    spec: { 'spec-id': 0, fields: [] },
    properties: { version: String(version) },
    nowMs: 0,
  });
  return { ident: IDENT, metadataLocation: `mem://t/${version}.json`, metadata };
}

/** A catalog whose commits fail as scripted; `landed` lists scripted outcomes that still applied. */
function fakeCatalog(script: (LakeErrorCode | 'ok')[], opts: { landed?: number[]; loadFails?: number[] } = {}) {
  let version = 0;
  let loads = 0;
  let commits = 0;
  const catalog: Catalog = {
    kind: 'fake',
    createNamespace: () => Promise.resolve(),
    listNamespaces: () => Promise.resolve([]),
    listTables: () => Promise.resolve([]),
    loadTable: () => {
      loads++;
      if (opts.loadFails?.includes(loads)) return Promise.reject(new LakeError('CATALOG_ERROR', 'catalog down'));
      return Promise.resolve(table(version));
    },
    createTable: () => Promise.reject(new Error('unused')),
    commitTable: () => {
      const outcome = script[commits] ?? 'ok';
      commits++;
      if (outcome === 'ok' || opts.landed?.includes(commits)) version++;
      return outcome === 'ok' ? Promise.resolve(table(version)) : Promise.reject(new LakeError(outcome, outcome));
    },
    dropTable: () => Promise.resolve(),
  };
  return { catalog, counts: () => ({ loads, commits, version }) };
}

const change: TableChange = { requirements: [], updates: [{ action: 'set-properties', updates: { x: 'y' } }] };
const noSleep = { sleep: () => Promise.resolve() };

async function code(p: Promise<unknown>): Promise<LakeErrorCode | 'none'> {
  return p.then(
    () => 'none' as const,
    (e: unknown) => (isLakeError(e) ? e.code : Promise.reject(e)),
  );
}

describe('commitWithRetry', () => {
  it('reloads and rebuilds after each conflict', async () => {
    const { catalog, counts } = fakeCatalog(['COMMIT_CONFLICT', 'COMMIT_CONFLICT', 'ok']);
    const seen: string[] = [];
    const sleeps: number[] = [];
    const result = await commitWithRetry(
      catalog,
      IDENT,
      (t) => {
        seen.push(t.metadataLocation);
        return change;
      },
      { baseDelayMs: 100, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) },
    );
    expect(result.metadataLocation).toBe('mem://t/1.json');
    expect(counts()).toMatchObject({ loads: 3, commits: 3 });
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]).toBeGreaterThanOrEqual(100);
  });

  it('after an unknown outcome, build decides: null means it landed', async () => {
    const { catalog, counts } = fakeCatalog(['COMMIT_STATE_UNKNOWN'], { landed: [1] });
    const result = await commitWithRetry(catalog, IDENT, (t) => (t.metadata.properties['version'] === '1' ? null : change), noSleep);
    expect(result.metadataLocation).toBe('mem://t/1.json');
    expect(counts()).toMatchObject({ loads: 2, commits: 1, version: 1 });
  });

  it('after an unknown outcome that did not land, commits again (async build)', async () => {
    const { catalog, counts } = fakeCatalog(['COMMIT_STATE_UNKNOWN', 'ok']);
    const result = await commitWithRetry(catalog, IDENT, (t) => Promise.resolve(t.metadata.properties['version'] === '1' ? null : change), noSleep);
    expect(result.metadataLocation).toBe('mem://t/1.json');
    expect(counts()).toMatchObject({ commits: 2, version: 1 });
  });

  it('gives up after maxAttempts with the conflict', async () => {
    const { catalog, counts } = fakeCatalog(Array<LakeErrorCode>(10).fill('COMMIT_CONFLICT'));
    expect(await code(commitWithRetry(catalog, IDENT, () => change, { maxAttempts: 3, ...noSleep }))).toBe('COMMIT_CONFLICT');
    expect(counts().commits).toBe(3);
  });

  it('stays COMMIT_STATE_UNKNOWN when an unknown attempt was never settled', async () => {
    const conflicts = fakeCatalog(['COMMIT_STATE_UNKNOWN', 'COMMIT_CONFLICT', 'COMMIT_CONFLICT']);
    expect(await code(commitWithRetry(conflicts.catalog, IDENT, () => change, { maxAttempts: 3, ...noSleep }))).toBe('COMMIT_STATE_UNKNOWN');
    // The reload after the unknown attempt fails: still unknown, not "catalog down".
    const down = fakeCatalog(['COMMIT_STATE_UNKNOWN'], { loadFails: [2] });
    expect(await code(commitWithRetry(down.catalog, IDENT, () => change, noSleep))).toBe('COMMIT_STATE_UNKNOWN');
  });

  it('a build that fails after an unknown attempt leaves it unknown (it was to decide whether that attempt landed)', async () => {
    const { catalog } = fakeCatalog(['COMMIT_STATE_UNKNOWN']);
    let builds = 0;
    const build = (): Promise<TableChange> => (++builds === 1 ? Promise.resolve(change) : Promise.reject(new LakeError('STORE_ERROR', 'manifest list unreadable')));
    expect(await code(commitWithRetry(catalog, IDENT, build, noSleep))).toBe('COMMIT_STATE_UNKNOWN');
  });

  it('other errors end the loop at once', async () => {
    const { catalog, counts } = fakeCatalog(['CATALOG_ERROR']);
    expect(await code(commitWithRetry(catalog, IDENT, () => change, noSleep))).toBe('CATALOG_ERROR');
    expect(counts().commits).toBe(1);
  });

  it('a missing table is NOT_FOUND; a null build on the first load commits nothing', async () => {
    const { catalog, counts } = fakeCatalog([]);
    const missing: Catalog = { ...catalog, loadTable: () => Promise.resolve(null) };
    expect(await code(commitWithRetry(missing, IDENT, () => change, noSleep))).toBe('NOT_FOUND');
    const result = await commitWithRetry(catalog, IDENT, () => null, noSleep);
    expect(result.metadataLocation).toBe('mem://t/0.json');
    expect(counts().commits).toBe(0);
  });
});
