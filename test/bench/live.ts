import { WebSocket } from 'ws';
import { LakeSyncClient, type ClientEvent } from '../../clients/node/index.ts';
import { TODO_SCHEMA, startTestServer, tokenFor } from '../support/server.ts';
import type { BenchRow } from './table.ts';
import { median, now, scratchDir } from './support.ts';

const ROUNDS = 200;
const HOUR = 3_600_000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

/**
 * Live updates on the local server: how soon another client has a write.
 * Each round, client A writes one row and syncs; the clock stops when live
 * client B (whose background loop would not pull for an hour) reports the
 * change. Baseline, same process and server: B pulls by itself right after
 * A's sync (the fastest a client can learn of a write it is told about).
 * Ratio = baseline time / live time; the note gives the live latency's
 * median and 99th percentile from A's acknowledged push.
 */
export async function benchLive(): Promise<BenchRow[]> {
  const scratch = scratchDir('live');
  const server = await startTestServer({ dataDir: scratch.dir });
  const open = (clientId: string, live: boolean): Promise<LakeSyncClient> =>
    LakeSyncClient.open({
      url: server.url,
      database: ':memory:',
      schema: TODO_SCHEMA,
      clientId,
      initialSync: 'pull',
      intervalMs: HOUR,
      getToken: ({ clientId: id }) => tokenFor('u1', id),
      ...(live ? { live: { WebSocket } } : {}),
    });
  const a = await open('bench-a', false);
  const b = await open('bench-b', true);
  const polled = await open('bench-c', false);
  try {
    const connected = new Promise<void>((resolve) => b.on((e) => e.type === 'status' && e.status.live && resolve()));
    b.start();
    await connected;
    const nextChange = (): Promise<void> => new Promise((resolve) => {
      const off = b.on((e: ClientEvent) => {
        if (e.type === 'change') {
          off();
          resolve();
        }
      });
    });

    const latencies: number[] = [];
    let row = 0;
    const t0 = now();
    for (let i = 0; i < ROUNDS; i++) {
      const changed = nextChange();
      a.insert('todos', `live-${row++}`, { title: 'x', done: false });
      await a.sync();
      const acked = now();
      await changed;
      latencies.push(now() - acked);
    }
    const liveSeconds = (now() - t0) / 1000;

    const t1 = now();
    for (let i = 0; i < ROUNDS; i++) {
      a.insert('todos', `live-${row++}`, { title: 'x', done: false });
      await a.sync();
      await polled.sync();
    }
    const baselineSeconds = (now() - t1) / 1000;
    latencies.sort((x, y) => x - y);
    return [
      {
        name: 'live: write to another client, via poke',
        count: ROUNDS,
        unit: 'deltas',
        seconds: liveSeconds,
        ratio: baselineSeconds / liveSeconds,
        note: `poke to change event after the push's ack: p50 ${median(latencies).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms (incl. 5 ms coalescing); baseline: the reader pulls right after the push`,
      },
    ];
  } finally {
    await b.close();
    await a.close();
    await polled.close();
    await server.close();
    scratch.cleanup();
  }
}
