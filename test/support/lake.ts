import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsObjectStore } from '../../core/adapters/fs-object-store.ts';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import { SqlCatalog } from '../../core/adapters/sql-catalog.ts';
import type { Principal } from '../../core/auth/principal.ts';
import { makeDelta, type Delta, type Op } from '../../core/delta.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { rowKey, type ReadResult, type RowRef, type StoredRow } from '../../core/engine/ports.ts';
import { encodeHlc, HybridLogicalClock } from '../../core/hlc.ts';
import { Lake, type FlushSource, type LakeOptions } from '../../core/lake/flush.ts';
import { applyDelta, isLive, visibleValues, type RowState } from '../../core/merge.ts';
import type { Schema } from '../../core/schema.ts';
import type { Columns } from '../../core/values.ts';
import { PY_CONV, pythonJson } from './python.ts';

export const LAKE_SCHEMA: Schema = {
  version: 1,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'done', type: 'boolean' },
        { name: 'position', type: 'integer' },
        { name: 'score', type: 'number' },
        { name: 'meta', type: 'json' },
      ],
    },
    { name: 'notes', columns: [{ name: 'body', type: 'string' }] },
  ],
};

/** The flush side of a MemoryBuffer, with its flushed mark readable for assertions. */
export class TestFlushSource implements FlushSource {
  flushed = 0n;
  constructor(readonly buffer: MemoryBuffer) {}
  read(after: bigint, limit: number): Promise<ReadResult> {
    return this.buffer.read(after, limit);
  }
  loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    return this.buffer.loadRows(keys);
  }
  head(): Promise<bigint> {
    return this.buffer.head();
  }
  flushedThrough(): Promise<bigint> {
    return this.buffer.flushedThrough();
  }
  async markFlushed(seq: bigint): Promise<void> {
    await this.buffer.markFlushed(seq);
    this.flushed = await this.buffer.flushedThrough();
  }
}

export interface LakeEnv {
  readonly dir: string;
  readonly catalogPath: string;
  readonly warehouse: string;
  readonly store: FsObjectStore;
  readonly catalog: SqlCatalog;
  readonly buffer: MemoryBuffer;
  readonly source: TestFlushSource;
  readonly gateway: Gateway;
  readonly pushed: Delta[];
  lake(options?: Partial<LakeOptions>): Lake;
  push(clientId: string, deltas: Delta[]): Promise<void>;
  /** The engine's merged live rows of a table, by row id. */
  expected(table: string): Map<string, Record<string, unknown>>;
}

export function principal(clientId: string): Principal {
  return { clientId, userId: clientId, claims: { sub: clientId }, admin: true };
}

export function makeLakeEnv(schema: Schema = LAKE_SCHEMA): LakeEnv {
  const dir = mkdtempSync(join(tmpdir(), 'lakesync-lake-'));
  const store = new FsObjectStore({ fsync: false });
  const catalogPath = join(dir, 'catalog.db');
  const catalog = new SqlCatalog(catalogPath, store);
  const warehouse = FsObjectStore.uriFor(join(dir, 'warehouse'));
  const buffer = new MemoryBuffer();
  const source = new TestFlushSource(buffer);
  const gateway = new Gateway({ buffer, schema, rules: null, clock: new HybridLogicalClock({ maxDriftMs: 60_000 }) });
  const pushed: Delta[] = [];
  return {
    dir,
    catalogPath,
    warehouse,
    store,
    catalog,
    buffer,
    source,
    gateway,
    pushed,
    lake: (options = {}) => new Lake({ catalog, store, schema, warehouse, ...options }),
    async push(clientId, deltas) {
      for (let i = 0; i < deltas.length; i += 1000) {
        await gateway.push(principal(clientId), { clientId, schemaVersion: schema.version, deltas: deltas.slice(i, i + 1000) });
      }
      pushed.push(...deltas);
    },
    expected(table) {
      const rows = new Map<string, RowState>();
      for (const d of pushed) {
        if (d.table !== table) continue;
        rows.set(d.rowId, applyDelta(rows.get(d.rowId), d));
      }
      const out = new Map<string, Record<string, unknown>>();
      for (const [id, r] of rows) if (isLive(r)) out.set(id, visibleValues(r) ?? {});
      return out;
    },
  };
}

let hlcCounter = 0;
/** Deltas by one client with increasing HLCs a little in the past. */
export function deltaMaker(clientId: string, baseMs = Date.now() - 5000): (table: string, rowId: string, op: Op, columns?: Columns) => Delta {
  return (table, rowId, op, columns = {}) =>
    makeDelta({ table, rowId, op, columns, hlc: encodeHlc(baseMs + Math.floor(hlcCounter / 1000), hlcCounter++ % 1000), clientId });
}

export { rowKey };

const SCAN_PY = `${PY_CONV}
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
args = json.loads(sys.argv[1])
cat = SqlCatalog('lakesync', uri='sqlite:///' + args['catalog'], warehouse=args['warehouse'])
t = cat.load_table(args['table'])
scan = t.scan(snapshot_id=int(args['snapshot'])) if args.get('snapshot') else t.scan()
rows = scan.to_arrow().to_pylist()
print(json.dumps({
  'rows': [{k: conv(v) for k, v in r.items()} for r in rows],
  'schema': [[f.field_id, f.name, str(f.field_type), f.required] for f in t.schema().fields],
  'snapshots': [[str(s.snapshot_id), s.summary.operation.value, dict(s.summary.additional_properties)] for s in t.snapshots()],
}))
`;

export interface ScanResult {
  readonly rows: Record<string, unknown>[];
  readonly schema: [number, string, string, boolean][];
  readonly snapshots: [string, string, Record<string, string>][];
}

/** pyiceberg (SqlCatalog on our catalog file) scans a table. */
export function pyicebergScan(env: Pick<LakeEnv, 'catalogPath' | 'warehouse'>, table: string, snapshot?: bigint): ScanResult {
  return pythonJson<ScanResult>(SCAN_PY, [
    JSON.stringify({ catalog: env.catalogPath, warehouse: env.warehouse, table: `lakesync.${table}`, snapshot: snapshot?.toString() }),
  ]);
}

/** Lake rows (as pyiceberg returns them) keyed by row id, reduced to some columns. */
export function comparable(rows: Record<string, unknown>[], columns: readonly string[]): Map<string, Record<string, unknown>> {
  return new Map(rows.map((r) => [r['_row_id'] as string, Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))]));
}

/** The engine's merged live rows in the same shape: bigints and JSON as pyiceberg prints them. */
export function expectedComparable(env: LakeEnv, table: string, columns: readonly string[]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const [id, values] of env.expected(table)) {
    out.set(
      id,
      Object.fromEntries(
        columns.map((c) => {
          const v = values[c];
          if (v === undefined || v === null) return [c, null];
          if (typeof v === 'bigint') return [c, v.toString()];
          if (typeof v === 'object') return [c, (v as { json: string }).json];
          return [c, v];
        }),
      ),
    );
  }
  return out;
}
