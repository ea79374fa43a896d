import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePullResponse, encodeHlc, encodePushRequest, makeDelta } from '../../core/index.ts';
import { startTestServer, tokenFor, type TestServer } from '../support/server.ts';

const PUSHERS = 4;
const BATCHES = 40;
const BATCH_SIZE = 10;

/**
 * The lake worker flushes, checkpoints and trims the buffer on its own
 * connection while the server thread appends and serves pulls: a pull never
 * skips or repeats a delta; a cursor the trim overtook answers CURSOR_EXPIRED.
 */
describe('pulls while the lake worker trims the SQLite buffer', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ lake: { flushIntervalMs: 20, checkpointEvery: 50, retainDeltas: 800 } });
  });
  afterAll(async () => {
    await server.close();
  });

  it('every pull page continues exactly where the cursor left off', async () => {
    let pushing = true;
    const order: string[] = [];
    const pushers = Array.from({ length: PUSHERS }, async (_, p) => {
      const clientId = `pusher-${p}`;
      const token = await tokenFor('u', clientId);
      let counter = 0;
      for (let b = 0; b < BATCHES; b++) {
        const deltas = Array.from({ length: BATCH_SIZE }, () => {
          counter++;
          return makeDelta({ table: 'todos', rowId: `${clientId}-${counter}`, op: 'insert', columns: { title: `${counter}` }, hlc: encodeHlc(Date.now(), counter), clientId });
        });
        const res = await fetch(`${server.url}/v1/push`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' },
          body: encodePushRequest('proto', { clientId, schemaVersion: 1, deltas }),
        });
        expect(res.status, await res.clone().text()).toBe(200);
      }
    });
    // Pullers at different speeds: the slow ones fall behind the trim.
    const pullers = [[0, 200], [0, 7], [20, 7], [50, 7]].map(async ([pause, limit], q) => {
      const token = await tokenFor('u', `puller-${q}`);
      const seen: string[] = [];
      let cursor = '';
      for (;;) {
        const done = !pushing;
        const res = await fetch(`${server.url}/v1/pull?cursor=${cursor}&limit=${limit}`, {
          headers: { authorization: `Bearer ${token}`, accept: 'application/x-protobuf' },
        });
        if (res.status === 410) return { seen, expired: true };
        expect(res.status, await res.clone().text()).toBe(200);
        const page = decodePullResponse('proto', new Uint8Array(await res.arrayBuffer()));
        for (const c of page.changes) if (c.kind === 'delta') seen.push(c.delta.deltaId);
        cursor = page.nextCursor;
        if (!page.hasMore && done) return { seen, expired: false };
        await new Promise((r) => setTimeout(r, pause));
      }
    });
    await Promise.all(pushers);
    pushing = false;
    const results = await Promise.all(pullers);
    // The server order, read by a puller that kept up.
    const full = results.find((r) => !r.expired);
    expect(full, 'no puller kept up').toBeDefined();
    order.push(...(full?.seen ?? []));
    expect(order).toHaveLength(PUSHERS * BATCHES * BATCH_SIZE);
    expect(new Set(order).size).toBe(order.length);
    for (const r of results) {
      // No gap and no repeat: what any puller saw is a prefix of the server order.
      expect(r.seen).toEqual(order.slice(0, r.seen.length));
      if (!r.expired) expect(r.seen).toHaveLength(order.length);
    }
  });
});
