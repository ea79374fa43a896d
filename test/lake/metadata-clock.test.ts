import { describe, expect, it } from 'vitest';
import { SqlCatalog } from '../../core/adapters/sql-catalog.ts';
import { expireSnapshots } from '../../core/lake/maintenance.ts';
import { deltaMaker, makeLakeEnv } from '../support/lake.ts';

/** A second writer whose clock is five minutes behind (another machine). */
class LateCatalog extends SqlCatalog {
  protected override readonly now = (): number => Date.now() - 300_000;
}

/**
 * Java's TableMetadata refuses to load metadata whose last-updated-ms is more
 * than a minute before its newest snapshot-log or metadata-log entry
 * ("Invalid update timestamp"): Spark, Trino and Flink could not open the table.
 */
describe('metadata timestamps with clock skew between writers', () => {
  it('last-updated-ms never goes back: a writer with a slow clock keeps the table loadable by Java', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 't1', 'insert', { title: 'x' })]);
    await env.lake().flush(env.source);
    await env.push('client-a', [a('todos', 't2', 'insert', { title: 'y' })]);
    await env.lake().flush(env.source);
    const late = new LateCatalog(env.catalogPath, env.store);
    const lake = env.lake({ catalog: late });
    await env.push('client-a', [a('todos', 't3', 'insert', { title: 'z' })]);
    await lake.flush(env.source);
    await expireSnapshots(lake, 'todos', { olderThanMs: Date.now() - 60_000, retainLast: 1 });
    const m = (await env.catalog.loadTable(env.lake().ident('todos')))?.metadata;
    if (m === undefined) throw new Error('no table');
    const logged = [...m['snapshot-log'].map((e) => e['timestamp-ms']), ...m['metadata-log'].map((e) => e['timestamp-ms'])];
    expect(m['last-updated-ms']).toBeGreaterThanOrEqual(Math.max(...logged));
    const metaLog = m['metadata-log'].map((e) => e['timestamp-ms']);
    expect(metaLog).toEqual([...metaLog].sort((x, y) => x - y));
    late.close();
  });
});
