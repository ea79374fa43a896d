import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delta } from '../../core/delta.ts';
import { parquetEncodePool } from '../../core/lake/parquet-encode-pool.ts';
import { compactTable, expireSnapshots, removeOrphans } from '../../core/lake/maintenance.ts';
import type { Schema } from '../../core/schema.ts';
import { json } from '../../core/values.ts';
import { ICEBERG_JAVA_SETUP_TIMEOUT_MS, javaRequest, startJavaReader, type JavaReader, type JavaScan } from '../support/iceberg-java.ts';
import { LAKE_SCHEMA, comparable, deltaMaker, expectedComparable, makeLakeEnv, pyicebergScan, type LakeEnv } from '../support/lake.ts';

/**
 * Apache Iceberg's Java implementation (the reader Spark, Flink and Trino
 * build on, stricter than pyiceberg about metadata) reads what LakeSync
 * writes: every scan must equal the engine's merged state and pyiceberg's scan.
 */
// One JVM for the file (started once, about a second), fed table after table.
let java: JavaReader;
let stop: (() => Promise<void>) | undefined;
beforeAll(() => {
  java = startJavaReader(); // resolves the jars with Maven and compiles the reader on first use
  stop = () => java.stop();
}, ICEBERG_JAVA_SETUP_TIMEOUT_MS);
afterAll(async () => {
  await stop?.();
});

const COLUMNS = ['title', 'done', 'position', 'score', 'meta'];

function byKey(rows: Record<string, unknown>[], key: string): Record<string, unknown>[] {
  return [...rows].sort((x, y) => (String(x[key]) < String(y[key]) ? -1 : String(x[key]) > String(y[key]) ? 1 : 0));
}

/** Java and pyiceberg return the same rows, every column (state tables by row id, change tables by delta id). */
function expectSameRows(got: JavaScan, py: Record<string, unknown>[], key = '_row_id'): void {
  expect(got.rows).toHaveLength(py.length);
  expect(byKey(got.rows, key)).toEqual(byKey(py, key));
}

/** The change table holds every pushed delta of the table exactly once. */
function expectEveryDeltaOnce(got: JavaScan, pushed: readonly Delta[], table: string): void {
  const ids = got.rows.map((r) => r['_delta_id'] as string);
  expect(ids.sort()).toEqual(pushed.filter((d) => d.table === table).map((d) => d.deltaId).sort());
}

/** Inserts, updates (some setting null) and deletes of every column type, one flush per round. */
async function churn(env: LakeEnv, rounds: number, options: { chunkDeltas?: number; parquetDataPageV2?: boolean } = {}): Promise<void> {
  const a = deltaMaker('client-a');
  const b = deltaMaker('client-b');
  for (let r = 0; r < rounds; r++) {
    const batch: Delta[] = [];
    const other: Delta[] = [];
    for (let i = 0; i < 12; i++) {
      const id = `t${i + r * 6}`;
      batch.push(
        a('todos', id, 'insert', {
          // Longer than the 16 characters a string bound keeps, with multi-byte characters around the cut.
          title: i % 3 === 0 ? `r${r} ${i} ${'😀'.repeat(20)}` : `r${r} ${i} — ünï 😀`,
          done: i % 2 === 0,
          position: i === 0 ? -(2n ** 62n) : BigInt(i) * 9_007_199_254_740_993n,
          score: i === 1 ? null : i === 2 ? -0 : i / 3,
          meta: json({ r, i, nested: [i, 'x'] }),
        }),
      );
    }
    if (r > 0) {
      other.push(b('todos', `t${r}`, 'update', { title: null, meta: null }));
      other.push(b('todos', `t${r + 2}`, 'update', { score: -r, done: true }));
      other.push(b('todos', `t${r + 3}`, 'delete'));
    }
    batch.push(a('notes', `n${r}`, 'insert', { body: `note ${r}` }));
    await env.push('client-a', batch);
    if (other.length > 0) await env.push('client-b', other);
    await env.lake(options).flush(env.source);
  }
}

describe('Apache Iceberg Java reads what LakeSync writes', () => {
  it.each([false, true])('inserts, updates and deletes over several flushes (position deletes), state and change tables (data page v2: %s)', async (v2) => {
    const env = makeLakeEnv();
    await churn(env, 4, { chunkDeltas: 7, parquetDataPageV2: v2 });
    const [todos, changes, notes] = await java.read([
      await javaRequest(env, 'todos'),
      await javaRequest(env, 'todos_changes'),
      await javaRequest(env, 'notes'),
    ]);
    expect(comparable(todos!.rows, COLUMNS)).toEqual(expectedComparable(env, 'todos', COLUMNS));
    expect(comparable(notes!.rows, ['body'])).toEqual(expectedComparable(env, 'notes', ['body']));
    const py = pyicebergScan(env, 'todos');
    expectSameRows(todos!, py.rows);
    expectSameRows(changes!, pyicebergScan(env, 'todos_changes').rows, '_delta_id');
    expectEveryDeltaOnce(changes!, env.pushed, 'todos');
    // Position deletes were written and applied.
    expect(Number(todos!.snapshots.at(-1)?.summary['total-position-deletes'])).toBeGreaterThan(0);
    expect(todos!.snapshots.map((s) => s.id)).toEqual(py.snapshots.map(([id]) => id));
    expect(todos!.schema).toEqual(py.schema.map(([id, name, , required]) => [id, name, expect.any(String), required]));
    expect(todos!.metadataTables).toMatchObject({ files: expect.any(Number), entries: expect.any(Number) });
    expect(todos!.metadataTables['files']).toBeGreaterThan(1);

    // Filters on every column type: Java skips files by their lower and upper bounds, so a wrong bound loses rows.
    const rows = [...expectedComparable(env, 'todos', COLUMNS)];
    const filters: [string, string | null][] = [];
    for (const c of COLUMNS) {
      for (const [, v] of rows.slice(0, 4)) filters.push([c, v[c] === null ? null : String(Object.is(v[c], -0) ? '-0' : v[c])]);
    }
    // t4 is live, t5 deleted; 'zzz' sorts after every title.
    filters.push(['_row_id', 't4'], ['_row_id', 't5'], ['score', '0'], ['score', '-0'], ['title', 'zzz']);
    const filtered = await java.read(await Promise.all(filters.map((f) => javaRequest(env, 'todos', { filter: f }))));
    filters.forEach(([c, value], i) => {
      const matches = (x: unknown): boolean =>
        value === null ? x === null : typeof x === 'number' ? Object.is(x, Number(value)) : String(x) === value;
      const want = rows.filter(([id, v]) => matches(c === '_row_id' ? id : v[c])).map(([id]) => id).sort();
      expect(filtered[i]!.rows.map((r) => r['_row_id']).sort(), `${c} = ${value}`).toEqual(want);
    });
    // -0.0 is in several files, next to 0.0 (Iceberg orders -0.0 first).
    expect(filtered.at(-2)!.rows.length).toBeGreaterThan(1);

    // An incremental consumer: each snapshot's rows plus what was appended after it are every delta, once.
    const changeSnapshots = changes!.snapshots.map((snap) => BigInt(snap.id));
    expect(changeSnapshots.length).toBeGreaterThan(2);
    const increments = await java.read(
      await Promise.all(
        // Java refuses appends after the current snapshot (nothing to read).
        changeSnapshots.slice(0, -1).flatMap((id) => [javaRequest(env, 'todos_changes', { snapshot: id }), javaRequest(env, 'todos_changes', { appendsAfter: id })]),
      ),
    );
    for (let k = 0; k < changeSnapshots.length - 1; k++) {
      const [upTo, after] = [increments[2 * k]!, increments[2 * k + 1]!];
      expect(after.rows.length).toBeGreaterThan(0);
      expectEveryDeltaOnce({ ...upTo, rows: [...upTo.rows, ...after.rows] }, env.pushed, 'todos');
    }

    // The change table by its day(_hlc_time) partition and its system columns.
    const some = changes!.rows.filter((_, i) => i % 9 === 0);
    const changeFilters: [string, string][] = some.flatMap((r) => [['_hlc_time', r['_hlc_time'] as string], ['_seq', r['_seq'] as string], ['_delta_id', r['_delta_id'] as string]]);
    changeFilters.push(['_op', 'delete'], ['_client_id', 'client-b']);
    const changeReads = await java.read(await Promise.all(changeFilters.map((f) => javaRequest(env, 'todos_changes', { filter: f }))));
    changeFilters.forEach(([c, value], i) => {
      const want = changes!.rows.filter((r) => r[c] === value).map((r) => r['_delta_id']).sort();
      expect(want.length).toBeGreaterThan(0);
      expect(changeReads[i]!.rows.map((r) => r['_delta_id']).sort(), `${c} = ${value}`).toEqual(want);
    });
  });

  it('files in several row groups, encoded in pieces on worker threads: position deletes land on the right rows, filters skip row groups', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const first: Delta[] = [];
    for (let i = 0; i < 3000; i++) {
      first.push(a('todos', `t${String(i).padStart(5, '0')}`, 'insert', { title: `todo ${i} ${'x'.repeat(i % 50)}`, position: BigInt(i), score: i * 1.5 }));
    }
    await env.push('client-a', first);
    const options = { chunkDeltas: 5000, parquetPieceRows: 400, rowGroupBytes: 16 * 1024 };
    const encoded = parquetEncodePool()?.encoded ?? 0;
    await env.lake(options).flush(env.source);
    expect(parquetEncodePool()?.encoded).toBeGreaterThan(encoded);
    // Updates and deletes spread over every row group of the first file.
    const second: Delta[] = [];
    for (let i = 7; i < 3000; i += 97) {
      const id = `t${String(i).padStart(5, '0')}`;
      second.push(i % 2 === 0 ? a('todos', id, 'delete') : a('todos', id, 'update', { title: `edited ${i}` }));
    }
    await env.push('client-a', second);
    await env.lake(options).flush(env.source);

    const ids = ['t00000', 't00007', 't00104', 't01500', 't02999', 't02917'];
    const [todos, changes, ...filtered] = await java.read([
      await javaRequest(env, 'todos'),
      await javaRequest(env, 'todos_changes', { filter: ['_op', 'delete'] }),
      ...(await Promise.all(ids.map((id) => javaRequest(env, 'todos', { filter: ['_row_id', id] })))),
      await javaRequest(env, 'todos', { filter: ['position', '2500'] }),
    ]);
    expect(Number(todos!.snapshots.at(-1)?.summary['total-position-deletes'])).toBe(second.length);
    expect(Math.max(...todos!.rowGroups)).toBeGreaterThan(1);
    expect(comparable(todos!.rows, COLUMNS)).toEqual(expectedComparable(env, 'todos', COLUMNS));
    expect(changes!.rows.map((r) => r['_row_id']).sort()).toEqual(second.filter((d) => d.op === 'delete').map((d) => d.rowId).sort());
    const live = env.expected('todos');
    ids.forEach((id, i) => expect(filtered[i]!.rows.map((r) => r['_row_id']), id).toEqual(live.has(id) ? [id] : []));
    expect(filtered.at(-1)!.rows.map((r) => r['_row_id'])).toEqual(['t02500']);
  });

  it('schema evolution: a column added later reads as null in old rows, with its value in new ones', async () => {
    const env = makeLakeEnv();
    await churn(env, 2);
    const beforeDue = BigInt((await java.read([await javaRequest(env, 'todos')]))[0]!.current!);
    const v2: Schema = {
      version: 2,
      tables: LAKE_SCHEMA.tables.map((t) => (t.name === 'todos' ? { ...t, columns: [...t.columns, { name: 'due', type: 'string' }] } : t)),
    };
    const { Gateway } = await import('../../core/engine/gateway.ts');
    const { HybridLogicalClock } = await import('../../core/hlc.ts');
    const g2 = new Gateway({ buffer: env.buffer, schema: v2, rules: null, clock: new HybridLogicalClock() });
    const a = deltaMaker('client-a');
    const added = [a('todos', 'new', 'insert', { title: 'after', due: 'friday' }), a('todos', 't0', 'update', { due: 'monday' })];
    await g2.push({ clientId: 'client-a', userId: 'a', claims: {}, admin: true }, { clientId: 'client-a', schemaVersion: 2, deltas: added });
    env.pushed.push(...added);
    await env.lake({ schema: v2 }).flush(env.source);

    const [todos, changes, travelled] = await java.read([
      await javaRequest(env, 'todos'),
      await javaRequest(env, 'todos_changes'),
      await javaRequest(env, 'todos', { snapshot: beforeDue }),
    ]);
    // Time travel to before the column existed reads that snapshot's schema.
    expect(travelled!.rows.length).toBeGreaterThan(0);
    for (const r of travelled!.rows) expect(r).not.toHaveProperty('due');
    expectSameRows(travelled!, pyicebergScan(env, 'todos', beforeDue).rows);
    const cols = [...COLUMNS, 'due'];
    expect(comparable(todos!.rows, cols)).toEqual(expectedComparable(env, 'todos', cols));
    expect(todos!.schema.find(([, name]) => name === 'due')).toEqual([Math.max(...todos!.schema.map(([id]) => id)), 'due', 'string', false]);
    expectSameRows(todos!, pyicebergScan(env, 'todos').rows);
    expectSameRows(changes!, pyicebergScan(env, 'todos_changes').rows, '_delta_id');
    expectEveryDeltaOnce(changes!, env.pushed, 'todos');
  });

  it('compaction, time travel to an older snapshot, snapshot expiry and orphan removal', async () => {
    const env = makeLakeEnv();
    await churn(env, 3);
    const lake = env.lake();
    const old = await javaRequest(env, 'todos');
    const [before] = await java.read([old]);
    const oldSnapshot = BigInt(before!.current!);
    const oldState = expectedComparable(env, 'todos', COLUMNS);
    const oldChanges = BigInt((await java.read([await javaRequest(env, 'todos_changes')]))[0]!.current!);
    const pushedBefore = env.pushed.length;
    await churn(env, 1);

    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    const [compacted, changes, travelled, appended] = await java.read([
      await javaRequest(env, 'todos'),
      await javaRequest(env, 'todos_changes'),
      await javaRequest(env, 'todos', { snapshot: oldSnapshot }),
      await javaRequest(env, 'todos_changes', { appendsAfter: oldChanges }),
    ]);
    // An incremental reader of the change table skips the compaction (a replace): only the last round's deltas.
    expect(changes!.snapshots.at(-1)?.operation).toBe('replace');
    expect(appended!.rows.map((r) => r['_delta_id']).sort()).toEqual(env.pushed.slice(pushedBefore).filter((d) => d.table === 'todos').map((d) => d.deltaId).sort());
    expect(compacted!.snapshots.at(-1)?.operation).toBe('replace');
    expect(compacted!.snapshots.at(-1)?.summary['total-position-deletes']).toBe('0');
    expect(comparable(compacted!.rows, COLUMNS)).toEqual(expectedComparable(env, 'todos', COLUMNS));
    expectSameRows(compacted!, pyicebergScan(env, 'todos').rows);
    expectEveryDeltaOnce(changes!, env.pushed, 'todos');
    expectSameRows(changes!, pyicebergScan(env, 'todos_changes').rows, '_delta_id');
    // Time travel: the snapshot before the last flush, from the current metadata.
    expect(comparable(travelled!.rows, COLUMNS)).toEqual(oldState);
    expectSameRows(travelled!, pyicebergScan(env, 'todos', oldSnapshot).rows);

    const expired = await expireSnapshots(lake, 'todos', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    expect(expired.deletedFiles).toBeGreaterThan(0);
    await expireSnapshots(lake, 'todos_changes', { olderThanMs: Date.now() + 1000, retainLast: 1 });
    // A dead flush leaves files behind; orphan removal deletes them.
    const a = deltaMaker('client-a');
    await env.push('client-a', [a('todos', 'late', 'insert', { title: 'late' })]);
    await expect(
      env.lake({ fault: (step) => { if (step === 'state-files-written') throw new Error('killed'); } }).flush(env.source),
    ).rejects.toThrow('killed');
    const orphans = await removeOrphans(lake, 'todos', { olderThanMs: Date.now() + 1000 });
    expect(orphans.orphans.length).toBeGreaterThan(0);
    await removeOrphans(lake, 'todos_changes', { olderThanMs: Date.now() + 1000 });
    const [afterExpiry] = await java.read([await javaRequest(env, 'todos')]);
    expect(afterExpiry!.snapshots).toHaveLength(1);
    // The dead flush's delta is in the change table (committed first) but not yet in the state.
    const withoutLate = expectedComparable(env, 'todos', COLUMNS);
    withoutLate.delete('late');
    expect(comparable(afterExpiry!.rows, COLUMNS)).toEqual(withoutLate);
    expectSameRows(afterExpiry!, pyicebergScan(env, 'todos').rows);

    // The retried flush completes on the expired, cleaned table.
    await lake.flush(env.source);
    const [todos, changesAfter] = await java.read([await javaRequest(env, 'todos'), await javaRequest(env, 'todos_changes')]);
    expect(comparable(todos!.rows, COLUMNS)).toEqual(expectedComparable(env, 'todos', COLUMNS));
    expectEveryDeltaOnce(changesAfter!, env.pushed, 'todos');
    expectSameRows(changesAfter!, pyicebergScan(env, 'todos_changes').rows, '_delta_id');
  });

  it('partitioned: identity of a user column with values that need escaping and of a number (-0.0 and 0.0 apart) (state), day(_hlc_time) (changes); filters prune by partition', async () => {
    const env = makeLakeEnv({
      version: 1,
      tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }, { name: 'score', type: 'number' }] }],
    });
    const lake = env.lake({ partitioning: { state: 'identity(owner); identity(score)' } });
    const OWNERS = ['ann', 'a:b c/😀', '100%=ok?#&', 'null', '', '..', 'x/../y'];
    const SCORES = [0, -0, 1.5, -0, 0, 0, -0];
    const a = deltaMaker('client-a');
    await env.push('client-a', [
      ...OWNERS.map((owner, i) => a('todos', `r${i}`, 'insert', { title: `t${i}`, owner, score: SCORES[i] ?? null })),
      a('todos', 'nobody', 'insert', { title: 'no owner' }),
    ]);
    await lake.flush(env.source);
    // r0 moves to another owner (its old position is deleted in ann's partition); r1 is deleted; r2 changes in place.
    await env.push('client-a', [
      a('todos', 'r0', 'update', { owner: 'a:b c/😀' }),
      a('todos', 'r1', 'delete'),
      a('todos', 'r2', 'update', { title: 'edited' }),
    ]);
    await lake.flush(env.source);

    const COLS = ['title', 'owner', 'score'];
    const FILTERS: [string, string | null][] = [
      ...[...OWNERS, null].map((o): [string, string | null] => ['owner', o]),
      ['score', '0'],
      ['score', '-0'],
      ['score', null],
    ];
    const check = async (): Promise<void> => {
      const expected = expectedComparable(env, 'todos', COLS);
      const reads = await java.read([
        await javaRequest(env, 'todos'),
        await javaRequest(env, 'todos_changes'),
        ...(await Promise.all(FILTERS.map((f) => javaRequest(env, 'todos', { filter: f })))),
      ]);
      const [todos, changes, ...filtered] = reads;
      expect(todos!.spec).toEqual([['owner', 'identity'], ['score', 'identity']]);
      expect(changes!.spec).toEqual([['_hlc_time_day', 'day']]);
      expect(comparable(todos!.rows, COLS)).toEqual(expected);
      expectSameRows(todos!, pyicebergScan(env, 'todos').rows);
      expectEveryDeltaOnce(changes!, env.pushed, 'todos');
      expectSameRows(changes!, pyicebergScan(env, 'todos_changes').rows, '_delta_id');
      FILTERS.forEach(([c, value], i) => {
        const matches = (x: unknown): boolean => (value === null ? x === null : typeof x === 'number' ? Object.is(x, Number(value)) : x === value);
        const want = [...expected].filter(([, v]) => matches(v[c])).map(([id]) => id).sort();
        expect(filtered[i]!.rows.map((r) => r['_row_id']).sort(), `${c} = ${value}`).toEqual(want);
      });
    };
    await check();
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    await compactTable(lake, 'todos_changes', { targetFileBytes: 1 << 20 });
    await check();
    // After compaction only the partitions of live rows have files; Java reads their values from the manifests.
    const [todos] = await java.read([await javaRequest(env, 'todos')]);
    const key = (owner: unknown, score: unknown): string => JSON.stringify([owner, Object.is(score, -0) ? '-0' : score]);
    const partitions = [...expectedComparable(env, 'todos', ['owner', 'score']).values()].map((v) => key(v['owner'], v['score']));
    expect(todos!.partitions.map((p) => key(p['owner'], p['score'])).sort()).toEqual([...new Set(partitions)].sort());
  });

  it('bucket and truncate partitions: Java prunes by its own transform of the filter value, so ours must agree with it', async () => {
    const env = makeLakeEnv({
      version: 1,
      tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'n', type: 'integer' }] }],
    });
    const lake = env.lake({ partitioning: { changes: 'hour(_hlc_time); bucket(3, _row_id)', state: 'bucket(5, n); truncate(2, title)' } });
    const a = deltaMaker('client-a');
    const TITLES = ['😀😁x', '😀y', 'ab', 'a', '\uFF21\uFF21\uFF21', 'é́', ''];
    const NS = [0n, -1n, 1n, 2n ** 40n, -(2n ** 62n), 123_456_789n, 7n];
    const ids = TITLES.map((_, i) => `row-${i}-😀`);
    await env.push('client-a', ids.map((id, i) => a('todos', id, 'insert', { title: TITLES[i] ?? null, n: NS[i] ?? null })));
    await lake.flush(env.source);
    await env.push('client-a', [a('todos', ids[0]!, 'update', { n: 99n }), a('todos', ids[1]!, 'delete')]);
    await lake.flush(env.source);
    const expected = expectedComparable(env, 'todos', ['title', 'n']);
    const filters: [string, string][] = [...TITLES.map((t): [string, string] => ['title', t]), ...[...NS, 99n].map((n): [string, string] => ['n', n.toString()])];
    const reads = await java.read([
      ...(await Promise.all(filters.map((f) => javaRequest(env, 'todos', { filter: f })))),
      ...(await Promise.all(ids.map((id) => javaRequest(env, 'todos_changes', { filter: ['_row_id', id] })))),
      await javaRequest(env, 'todos'),
    ]);
    expect(reads.at(-1)!.spec.map(([, transform]) => transform)).toEqual(['bucket[5]', 'truncate[2]']);
    expect(comparable(reads.at(-1)!.rows, ['title', 'n'])).toEqual(expected);
    filters.forEach(([c, value], i) => {
      const want = [...expected].filter(([, v]) => v[c] === value).map(([id]) => id).sort();
      expect(reads[i]!.rows.map((r) => r['_row_id']).sort(), `${c} = ${value}`).toEqual(want);
    });
    ids.forEach((id, i) => {
      const want = env.pushed.filter((d) => d.rowId === id).map((d) => d.deltaId).sort();
      expect(reads[filters.length + i]!.rows.map((r) => r['_delta_id']).sort(), `changes of ${id}`).toEqual(want);
    });
  });

  it('writers whose clocks disagree by an hour either way make metadata Java loads (its timestamps must not run backwards)', async () => {
    const env = makeLakeEnv();
    const a = deltaMaker('client-a');
    const HOUR = 3_600_000;
    for (const [i, skew] of [0, HOUR, -HOUR, 0, -2 * HOUR].entries()) {
      await env.push('client-a', [a('todos', `r${i}`, 'insert', { title: `t${i}` }), ...(i > 0 ? [a('todos', `r${i - 1}`, 'update', { title: 'again' })] : [])]);
      await env.lake({ now: () => Date.now() + skew }).flush(env.source);
    }
    const lake = env.lake({ now: () => Date.now() - 3 * HOUR });
    await compactTable(lake, 'todos', { targetFileBytes: 1 << 20 });
    const [todos, changes] = await java.read([await javaRequest(env, 'todos'), await javaRequest(env, 'todos_changes')]);
    expect(comparable(todos!.rows, ['title'])).toEqual(expectedComparable(env, 'todos', ['title']));
    expectEveryDeltaOnce(changes!, env.pushed, 'todos');
  });
});
