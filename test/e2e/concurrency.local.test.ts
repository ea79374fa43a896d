import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePullResponse, encodeHlc, encodePushRequest, makeDelta, type Delta } from '../../core/index.ts';
import { startTestServer, tokenFor, type TestServer } from '../support/server.ts';

const PUSHERS = 8;
const PULLERS = 4;
const BATCHES = 25;
const BATCH_SIZE = 12;
const PULL_LIMIT = 7;

describe('concurrent pushers and pullers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  async function push(clientId: string, token: string, deltas: Delta[]): Promise<void> {
    const res = await fetch(`${server.url}/v1/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' },
      body: encodePushRequest('proto', { clientId, schemaVersion: 1, deltas }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }

  it('every puller receives every delta exactly once, in cursor order', async () => {
    let pushing = true;
    const pushed = new Set<string>();
    const pushers = Array.from({ length: PUSHERS }, async (_, p) => {
      const clientId = `pusher-${p}`;
      const token = await tokenFor('u', clientId);
      let counter = 0;
      for (let b = 0; b < BATCHES; b++) {
        const deltas = Array.from({ length: BATCH_SIZE }, (_, i) => {
          counter++;
          // Half the writes hit a few shared rows, so optimistic retries happen.
          const rowId = i % 2 === 0 ? `hot-${i % 3}` : `${clientId}-${b}-${i}`;
          return makeDelta({
            table: 'todos',
            rowId,
            op: 'insert',
            columns: { title: `${clientId} ${counter}`, position: BigInt(counter) },
            hlc: encodeHlc(Date.now(), counter),
            clientId,
          });
        });
        await push(clientId, token, deltas);
        for (const d of deltas) pushed.add(d.deltaId);
      }
    });
    const pullers = Array.from({ length: PULLERS }, async (_, q) => {
      const token = await tokenFor('u', `puller-${q}`);
      const seen: string[] = [];
      let cursor = '';
      let previous = 0n;
      for (;;) {
        const done = !pushing;
        const res = await fetch(`${server.url}/v1/pull?cursor=${cursor}&limit=${PULL_LIMIT}`, {
          headers: { authorization: `Bearer ${token}`, accept: 'application/x-protobuf' },
        });
        expect(res.status).toBe(200);
        const page = decodePullResponse('proto', new Uint8Array(await res.arrayBuffer()));
        expect(BigInt(page.nextCursor)).toBeGreaterThanOrEqual(previous);
        previous = BigInt(page.nextCursor);
        for (const c of page.changes) {
          expect(c.kind).toBe('delta');
          if (c.kind === 'delta') seen.push(c.delta.deltaId);
        }
        cursor = page.nextCursor;
        if (!page.hasMore && done) return seen;
        if (!page.hasMore) await new Promise((r) => setTimeout(r, 2));
      }
    });
    await Promise.all(pushers);
    pushing = false;
    const results = await Promise.all(pullers);
    expect(pushed.size).toBe(PUSHERS * BATCHES * BATCH_SIZE);
    for (const seen of results) {
      expect(seen.length).toBe(pushed.size);
      expect(new Set(seen)).toEqual(pushed);
    }
    // All pullers saw the same server order.
    for (const seen of results) expect(seen).toEqual(results[0]);
  });
});
