/**
 * The HTTP edge: media types in any case, pull limits of any size (found by
 * review; each test failed before the fix).
 */
import { describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../adapters/memory-buffer.ts';
import type { Authenticator } from '../auth/principal.ts';
import { makeDelta } from '../delta.ts';
import { Gateway } from '../engine/gateway.ts';
import { HybridLogicalClock } from '../hlc.ts';
import { decodePushResponse, encodePushRequest } from '../protocol/codec.ts';
import { createHttpApp } from './app.ts';

function setup() {
  const clock = new HybridLogicalClock();
  const gateway = new Gateway({
    buffer: new MemoryBuffer(),
    schema: { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] },
    rules: null,
    clock,
  });
  const auth: Authenticator = {
    authenticate: () => Promise.resolve({ clientId: 'c', userId: 'u', claims: { sub: 'u', exp: Date.now() / 1000 + 3600 }, admin: false }),
  };
  return { app: createHttpApp({ gateway, auth }), clock };
}

describe('HTTP edge: formats and limits', () => {
  // app.ts responseFormat: the request Content-Type is compared case-sensitively
  // (startsWith('application/x-protobuf')), while requestFormat accepts it in any case.
  // docs/protocol.md: media types compare case-insensitively, and without Accept the
  // response follows the request's Content-Type. A protobuf client that spells the type
  // in capitals and sends no Accept gets JSON back and cannot decode it.
  it('without Accept, a push sent as APPLICATION/X-PROTOBUF is answered in protobuf', async () => {
    const { app, clock } = setup();
    const d = makeDelta({ table: 'todos', rowId: 'r1', op: 'insert', columns: { title: 'x' }, hlc: clock.now(), clientId: 'c' });
    const res = await app.fetch(
      new Request('http://x/v1/push', {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': 'Application/X-Protobuf' },
        body: encodePushRequest('proto', { clientId: 'c', schemaVersion: 1, deltas: [d] }) as Uint8Array<ArrayBuffer>,
      }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    expect(decodePushResponse('proto', new Uint8Array(await res.arrayBuffer())).accepted).toBe(1);
  });

  // app.ts GET /v1/pull: limit must match /^\d{1,9}$/, so a large limit is refused with
  // INVALID_REQUEST. docs/protocol.md (GET /v1/pull): "values above 5000 are clamped to 5000".
  it('a pull limit above the maximum is clamped, however many digits it has', async () => {
    const { app } = setup();
    const ok = await app.fetch(new Request('http://x/v1/pull?limit=999999999', { headers: { authorization: 'Bearer t', accept: 'application/json' } }));
    expect(ok.status).toBe(200);
    const big = await app.fetch(new Request('http://x/v1/pull?limit=10000000000', { headers: { authorization: 'Bearer t', accept: 'application/json' } }));
    expect(await big.text()).not.toContain('INVALID_REQUEST');
    expect(big.status).toBe(200);
  });

  // A delta count over the limit was only refused after the whole body was decoded: 4 MiB of
  // empty deltas (2 bytes each in protobuf, 3 in JSON) made 1.4-2 million objects, about 300 MB
  // of heap for one request, before TOO_MANY_DELTAS (or a complaint about the first delta).
  it.each(['proto', 'json'] as const)('a %s push over the delta limit is refused as soon as the count passes it', async (format) => {
    const { app } = setup();
    const max = 1000;
    let body: Uint8Array;
    if (format === 'proto') {
      // 1001 empty deltas (field 3, length 0), then bytes that are not protobuf at all.
      body = new Uint8Array((max + 1) * 2 + 3);
      for (let i = 0; i < (max + 1) * 2; i += 2) body[i] = 0x1a;
      body.set([0xff, 0xff, 0xff], (max + 1) * 2);
    } else {
      body = new TextEncoder().encode(`{"clientId":"c","deltas":[${Array<string>(max + 1).fill('{}').join(',')}]}`);
    }
    const res = await app.fetch(
      new Request('http://x/v1/push', {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': format === 'proto' ? 'application/x-protobuf' : 'application/json', accept: 'application/json' },
        body: body as Uint8Array<ArrayBuffer>,
      }),
    );
    expect(await res.text()).toContain('TOO_MANY_DELTAS');
    expect(res.status).toBe(413);
  });
});
