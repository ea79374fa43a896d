import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoDbBufferTable, DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import { itemBytes, unitsOf, WriteMeter } from '../../core/adapters/dynamodb-buffer-wcu.ts';
import { Packer, packSegment } from '../../core/codec/storage.ts';
import { makeDelta, type Columns, type Delta } from '../../core/index.ts';
import type { DeltaBuffer, LogEntryDraft, RowRef, RowWrite } from '../../core/engine/ports.ts';
import { applyDelta, type RowState } from '../../core/merge.ts';
import { motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';
import { chunk, hlcClock, now } from './support.ts';
import type { BenchRow } from './table.ts';

/**
 * `npm run bench -- ddb-wcu`: DynamoDB write units of the buffer per 1,000
 * deltas of about 200 bytes (packed), against moto, counted from the items
 * sent by DynamoDB's rules (core/adapters/dynamodb-buffer-wcu.ts): moto
 * reports no consumed capacity for transactions. Each workload pushes like
 * the engine does (loadRows, merge, append with expected versions) through
 * one buffer; materialization of the row and stamp index is included, the
 * trim after a flush is shown apart. Baseline: one item per delta (~0.3 KB:
 * 1 WCU each, 1,000 per 1,000 deltas, before any row state or stamp).
 */
export interface WcuWorkload {
  readonly name: string;
  readonly deltas: number;
  readonly push: number;
  /** Distinct rows; inserts when undefined (every delta a new row). */
  readonly hotRows?: number;
}

export const WCU_WORKLOADS: readonly WcuWorkload[] = [
  { name: 'inserts, distinct rows, pushes of 100', deltas: 3000, push: 100 },
  { name: 'inserts, distinct rows, pushes of 10', deltas: 3000, push: 10 },
  { name: 'updates, 50 hot rows, pushes of 100', deltas: 3000, push: 100, hotRows: 50 },
  { name: 'updates, 50 hot rows, pushes of 10', deltas: 3000, push: 10, hotRows: 50 },
];

export interface WcuResult {
  readonly workload: WcuWorkload;
  /** Packed bytes per log entry. */
  readonly entryBytes: number;
  /** Write units per 1,000 deltas, by item kind (log, row, stamp, meta) and in all. */
  readonly per1000: Readonly<Record<string, number>>;
  readonly total: number;
  /** The trim after flushing everything, per 1,000 deltas (0 with a TTL: expiry is free). */
  readonly trim: number;
  readonly baseline: number;
  readonly seconds: number;
}

/** Columns padded so a packed log entry is about `target` bytes. */
function padded(columns: Columns, base: Delta, target: number): Columns {
  const p = new Packer();
  packSegment(p, [{ delta: base, before: null, after: null, fresh: true }]);
  const pad = Math.max(0, target - p.pos);
  return { ...columns, note: 'n'.repeat(pad) };
}

function buildDeltas(w: WcuWorkload, clientId: string): Delta[] {
  const hlcAt = hlcClock();
  const out: Delta[] = [];
  for (let i = 0; i < w.deltas; i++) {
    const rowId = w.hotRows === undefined ? `r${i}` : `r${i % w.hotRows}`;
    const op = w.hotRows === undefined || i >= w.hotRows ? (w.hotRows === undefined ? 'insert' : 'update') : 'insert';
    const columns: Columns = op === 'insert' ? { title: `todo ${i}`, done: false, position: BigInt(i) } : { title: `todo ${i}`, done: i % 3 === 0 };
    const base = makeDelta({ table: 'todos', rowId, op, columns, hlc: hlcAt(i), clientId });
    out.push(makeDelta({ table: 'todos', rowId, op, columns: padded(columns, base, 200), hlc: hlcAt(i), clientId }));
  }
  return out;
}

/** One push the way the engine makes it: load the rows, merge, append with expected versions. */
async function push(b: DeltaBuffer, deltas: readonly Delta[]): Promise<void> {
  const refs: RowRef[] = [];
  const slot = new Map<string, number>();
  for (const d of deltas) {
    if (!slot.has(d.rowId)) {
      slot.set(d.rowId, refs.length);
      refs.push({ table: d.table, rowId: d.rowId });
    }
  }
  const stored = await b.loadRows(refs);
  const states: (RowState | undefined)[] = stored.map((s) => s?.state);
  const entries: LogEntryDraft[] = deltas.map((d) => {
    const s = slot.get(d.rowId) as number;
    const current = states[s];
    states[s] = applyDelta(current, d);
    return { delta: d, before: null, after: null, fresh: current === undefined };
  });
  const rows: RowWrite[] = refs.map((_, s) => ({ state: states[s] as RowState, expectedVersion: stored[s]?.version ?? 0 }));
  const r = await b.append(entries, rows);
  if (!r.ok) throw new Error('bench append conflicted');
}

/** Buffers to measure: this adapter by default; another design over the same table for comparisons. */
export type MakeBuffer = (client: DynamoDBClient, table: string) => DeltaBuffer;

export async function measureWcu(
  client: () => DynamoDBClient,
  workloads = WCU_WORKLOADS,
  make: MakeBuffer = (c, table) => new DynamoDbBuffer({ client: c, table }),
): Promise<WcuResult[]> {
  const out: WcuResult[] = [];
  let n = 0;
  for (const w of workloads) {
    const table = `ls-wcu-${process.pid}-${Date.now()}-${++n}`;
    await createDynamoDbBufferTable(client(), table);
    const meter = new WriteMeter();
    const b = make(meter.attach(client()), table);
    const deltas = buildDeltas(w, `wcu-${n}`);
    const p = new Packer();
    packSegment(p, deltas.map((delta) => ({ delta, before: null, after: null, fresh: true })));
    const entryBytes = p.pos / deltas.length;
    const t0 = now();
    for (const part of chunk(deltas, w.push)) await push(b, part);
    const seconds = (now() - t0) / 1000;
    const scale = 1000 / deltas.length;
    const per1000: Record<string, number> = {};
    for (const [kind, units] of meter.byPrefix) per1000[kind] = units * scale;
    const total = meter.units * scale;
    // Trim after a flush of everything: costs the log's size again (stubs), unless a TTL expires the items.
    meter.reset();
    const head = await b.head();
    await b.markFlushed(head);
    await b.trim(head);
    const trim = meter.units * scale;
    // The baseline: each delta its own log item (key, seq and the packed entry).
    let baseline = 0;
    for (const d of deltas) {
      p.reset();
      packSegment(p, [{ delta: d, before: null, after: null, fresh: true }]);
      baseline += unitsOf(itemBytes({ pk: { S: 'L#0' }, sk: { S: '00000000000000000001' }, b: { B: p.view(0) } }));
    }
    out.push({ workload: w, entryBytes, per1000, total, trim, baseline: baseline * scale, seconds });
  }
  return out;
}

export function formatWcu(results: readonly WcuResult[]): string {
  const kinds = ['L', 'R', 'S', 'M'];
  const head = ['workload', 'B/delta', 'log', 'rows', 'stamps', 'meta', 'WCU/1k', 'baseline', 'vs base', 'trim/1k'];
  const rows = results.map((r) => [
    r.workload.name,
    r.entryBytes.toFixed(0),
    ...kinds.map((k) => (r.per1000[k] ?? 0).toFixed(0)),
    r.total.toFixed(0),
    r.baseline.toFixed(0),
    `${(r.total / r.baseline).toFixed(2)}x`,
    r.trim.toFixed(0),
  ]);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

export async function benchDdbWcu(): Promise<BenchRow[]> {
  const moto: MotoServer = await startMoto();
  const clients: DynamoDBClient[] = [];
  try {
    const results = await measureWcu(() => {
      const c = new DynamoDBClient({ ...motoClientConfig(moto), maxAttempts: 3 });
      clients.push(c);
      return c;
    });
    console.log('DynamoDB write units per 1,000 deltas (target <= 300; baseline: one item per delta)');
    console.log(formatWcu(results));
    console.log('');
    return results.map((r) => ({
      name: `ddb-wcu ${r.workload.name}`,
      count: r.workload.deltas,
      unit: 'deltas',
      seconds: r.seconds,
      note: `${r.total.toFixed(0)} WCU/1k (baseline ${r.baseline.toFixed(0)}, target 300)`,
    }));
  } finally {
    for (const c of clients) c.destroy();
    await moto.stop();
  }
}
