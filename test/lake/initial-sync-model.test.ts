import { describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../../core/adapters/memory-buffer.ts';
import type { Principal } from '../../core/auth/principal.ts';
import { CheckpointService } from '../../core/engine/checkpoints.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import { checkpointRoot, Checkpoints } from '../../core/lake/checkpoint.ts';
import { LakeJobs } from '../../core/lake/jobs.ts';
import { checkpointPosition, flushShards, trimShards } from '../../core/lake/shard-steps.ts';
import { applyDelta, isLive, mergeRows, emptyRow, visibleValues, type RowState } from '../../core/merge.ts';
import type { Change } from '../../core/engine/gateway.ts';
import { decodePullResponse } from '../../core/protocol/codec.ts';
import type { SyncRules } from '../../core/rules.ts';
import type { Schema } from '../../core/schema.ts';
import { deltaMaker, makeLakeEnv } from '../support/lake.ts';

/**
 * A model check of initial sync: random writes (rows moving between owners,
 * deletes, resurrections) interleaved with flush + checkpoint + trim over
 * shards; readers with sync rules load the newest checkpoint, catch up by
 * pull, and must hold exactly the rows the server shows them.
 */
const SCHEMA: Schema = {
  version: 1,
  tables: [
    { name: 'todos', columns: [{ name: 'title', type: 'string' }, { name: 'owner', type: 'string' }] },
    { name: 'notes', columns: [{ name: 'body', type: 'string' }, { name: 'owner', type: 'string' }] },
  ],
};
const RULES: SyncRules = {
  buckets: [
    {
      name: 'own',
      tables: {
        todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }],
        notes: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }],
      },
    },
  ],
};
const admin: Principal = { clientId: 'w', userId: 'w', claims: { sub: 'w' }, admin: true };
const alice: Principal = { clientId: 'alice', userId: 'alice', claims: { sub: 'alice' }, admin: false };

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

class Reader {
  rows = new Map<string, RowState>();
  cursor = '';
  constructor(
    private readonly gateway: Gateway,
    private readonly service: CheckpointService,
  ) {}
  apply(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.kind === 'delta') this.rows.set(`${c.delta.table}/${c.delta.rowId}`, applyDelta(this.rows.get(`${c.delta.table}/${c.delta.rowId}`), c.delta));
      else if (c.kind === 'row') {
        const k = `${c.row.table}/${c.row.rowId}`;
        this.rows.set(k, mergeRows(this.rows.get(k) ?? emptyRow(c.row.table, c.row.rowId), c.row));
      } else this.rows.delete(`${c.table}/${c.rowId}`);
    }
  }
  async load(): Promise<void> {
    this.rows.clear();
    let info;
    try {
      info = await this.service.info();
    } catch (e) {
      if ((e as { code?: string }).code !== 'NO_CHECKPOINT') throw e;
      this.cursor = '';
      return;
    }
    for (const ch of info.chunks) {
      this.apply(decodePullResponse('proto', await this.service.chunk(alice, info.checkpointId, ch.index, 'proto')).changes);
    }
    this.cursor = info.cursor;
  }
  async catchUp(): Promise<void> {
    let restarted = false;
    for (;;) {
      let page;
      try {
        page = await this.gateway.pull(alice, { cursor: this.cursor, limit: 7 });
      } catch (e) {
        if ((e as { code?: string }).code !== 'CURSOR_EXPIRED' || restarted) throw e;
        restarted = true;
        await this.load();
        continue;
      }
      this.apply(page.changes);
      this.cursor = page.nextCursor;
      if (!page.hasMore) return;
    }
  }
  visible(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, r] of [...this.rows].sort(([a], [b]) => a.localeCompare(b))) if (isLive(r)) out[k] = visibleValues(r);
    return out;
  }
}

describe('initial sync model', () => {
  for (const [seed, rules] of [[1, RULES], [2, RULES], [3, RULES], [4, RULES], [5, null], [6, null]] as const) {
    it(`seed ${seed}${rules === null ? ', no rules' : ''}: readers that load a checkpoint and catch up see exactly alice's rows`, async () => {
      const env = makeLakeEnv(SCHEMA);
      const shards = new BufferShards([new MemoryBuffer(), new MemoryBuffer(), new MemoryBuffer()]);
      const gateway = new Gateway({ buffer: shards, schema: SCHEMA, rules, clock: new HybridLogicalClock({ maxDriftMs: 60_000 }) });
      const lake = env.lake();
      const checkpoints = new Checkpoints(lake, checkpointRoot(lake, env.warehouse));
      const jobs = new LakeJobs({ buffer: shards, lake, checkpoints, schemaVersion: 1, checkpointEvery: 5, retainDeltas: 3 });
      const service = new CheckpointService(checkpoints, gateway.rules);
      const r = rng(seed);
      const d = deltaMaker('w');
      const ids = new Set<string>();
      const truth = async (): Promise<Record<string, unknown>> => {
        const keys = [...ids].sort().map((k) => ({ table: k.split('/')[0] as string, rowId: k.split('/')[1] as string }));
        const out: Record<string, unknown> = {};
        for (const k of keys) {
          const [row] = await shards.bufferOf(k.table).loadRows([k]);
          const v = row === undefined ? null : visibleValues(row.state);
          if (v !== null && (rules === null || v['owner'] === 'alice')) out[`${k.table}/${k.rowId}`] = v;
        }
        return out;
      };
      const readers: Reader[] = [];
      let flushed = false;
      for (let step = 0; step < 40; step++) {
        const batch = [];
        for (let i = 0; i < 1 + Math.floor(r() * 6); i++) {
          const table = r() < 0.5 ? 'todos' : 'notes';
          const id = `r${Math.floor(r() * 8)}`;
          ids.add(`${table}/${id}`);
          const x = r();
          const owner = r() < 0.5 ? 'alice' : 'bob';
          const text = table === 'todos' ? 'title' : 'body';
          if (x < 0.3) batch.push(d(table, id, 'insert', { [text]: `s${step}`, owner }));
          else if (x < 0.5) batch.push(d(table, id, 'delete'));
          else if (x < 0.75) batch.push(d(table, id, 'update', { owner }));
          else batch.push(d(table, id, 'update', { [text]: `u${step}` }));
        }
        await gateway.push(admin, { clientId: 'w', schemaVersion: 1, deltas: batch });
        if (r() < 0.4) {
          await jobs.cycle();
          flushed = true;
        } else if (r() < 0.3) {
          // A build whose cursor was read before more deltas were pushed and flushed.
          const cursor = await shards.flushed();
          await flushShards(lake, shards);
          const more = [];
          for (let i = 0; i < 3; i++) {
            const table = r() < 0.5 ? 'todos' : 'notes';
            const id = `r${Math.floor(r() * 8)}`;
            ids.add(`${table}/${id}`);
            more.push(r() < 0.5 ? d(table, id, 'update', { owner: r() < 0.5 ? 'alice' : 'bob' }) : d(table, id, r() < 0.5 ? 'delete' : 'insert', {}));
          }
          await gateway.push(admin, { clientId: 'w', schemaVersion: 1, deltas: more });
          await flushShards(lake, shards);
          await checkpoints.build(lake.stateTables(), { cursor, schemaVersion: 1 });
          await trimShards(shards, await checkpointPosition(checkpoints, shards), 2n);
          flushed = true;
        }
        if (flushed && r() < 0.3) {
          const reader = new Reader(gateway, service);
          await reader.load();
          await reader.catchUp();
          readers.push(reader);
        }
        for (const reader of readers) {
          await reader.catchUp();
          expect(reader.visible()).toEqual(await truth());
        }
      }
    });
  }
});
