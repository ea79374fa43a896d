import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Schema } from '../../core/schema.ts';
import { LakeSyncClient } from './client.ts';
import { OfflineError, retryAfterMs, Transport } from './transport.ts';

const SCHEMA: Schema = { version: 1, tables: [{ name: 'todos', columns: [{ name: 'title', type: 'string' }] }] };

function open(fetchImpl: typeof fetch): Promise<LakeSyncClient> {
  return LakeSyncClient.open({
    url: 'http://gateway',
    database: ':memory:',
    clientId: 'c',
    schema: SCHEMA,
    initialSync: 'pull',
    getToken: () => Promise.resolve('t'),
    fetch: fetchImpl,
    backoff: { baseMs: 1, maxMs: 1 },
  });
}

const limited = (): Promise<Response> =>
  Promise.resolve(new Response(JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'slow down' } }), { status: 429, headers: { 'retry-after': '3', 'content-type': 'application/json' } }));

afterEach(() => {
  vi.useRealTimers();
});

describe('the Node client offline', () => {
  it('reads retry-after as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs('Thu, 26 Nov 2026 10:00:10 GMT', Date.parse('Thu, 26 Nov 2026 10:00:00 GMT'))).toBe(10_000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });

  it('a 429 is offline for now, and the sync loop waits at least the retry-after the server gave', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const c = await open(() => (calls++, limited()));
    try {
      const first = c.sync();
      await expect(first).rejects.toBeInstanceOf(OfflineError);
      await expect(first).rejects.toMatchObject({ retryAfterMs: 3000 });
      expect(c.getStatus().state).toBe('offline');
      calls = 0;
      c.start();
      await vi.advanceTimersByTimeAsync(10);
      expect(calls).toBe(1); // the loop's first round
      await vi.advanceTimersByTimeAsync(2900);
      expect(calls).toBe(1); // backoff alone (1 ms) would have tried hundreds of times
      await vi.advanceTimersByTimeAsync(200);
      expect(calls).toBe(2);
    } finally {
      await c.stop();
      await c.close();
    }
  });

  // client.ts start: setTimeout runs a delay above 2^31-1 ms after 1 ms. A retry-after of
  // years (a buggy proxy, a far HTTP date) made the loop retry every millisecond.
  it('a retry-after beyond what setTimeout holds waits, it does not retry at once', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const forever = (): Promise<Response> =>
      Promise.resolve(new Response(JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'later' } }), { status: 429, headers: { 'retry-after': '99999999999', 'content-type': 'application/json' } }));
    const c = await open(() => (calls++, forever()));
    try {
      c.start();
      await vi.advanceTimersByTimeAsync(1000);
      expect(calls).toBe(1);
    } finally {
      await c.stop();
      await c.close();
    }
  });

  it('a connection lost while the answer arrives is offline, not an error', async () => {
    const broken = (): Promise<Response> => {
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.error(new TypeError('terminated'));
        },
      });
      return Promise.resolve(new Response(body, { status: 200, headers: { 'content-type': 'application/json' } }));
    };
    const c = await open(broken);
    try {
      await expect(c.sync()).rejects.toBeInstanceOf(OfflineError);
      expect(c.getStatus().state).toBe('offline');
    } finally {
      await c.close();
    }
  });

  // client.ts open: the schema probe (no schema given or stored) was built without
  // requestTimeoutMs, so a gateway that accepts and stays silent held open() for the default 30 s.
  it('open() fetching the schema honours requestTimeoutMs', async () => {
    const silent: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error));
      });
    const started = Date.now();
    const opening = LakeSyncClient.open({ url: 'http://gateway', database: ':memory:', clientId: 'c', getToken: () => Promise.resolve('t'), fetch: silent, requestTimeoutMs: 100 });
    await expect(opening).rejects.toBeInstanceOf(OfflineError);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('Transport.refreshToken', () => {
  // transport.ts currentToken: a token asked for before refreshToken() (say by a resync() issued while
  // the last one's round still waited for its token) landed after it, was kept, and cleared the
  // refresh flag: the next round went out with a token of the old claims and reloaded the old view.
  it('a token that arrives after refreshToken() is not kept; the provider is asked again with forceRefresh', async () => {
    const asked: boolean[] = [];
    const sent: string[] = [];
    let release: (token: string) => void = () => undefined;
    const t = new Transport({
      url: 'http://gateway',
      clientId: 'c',
      format: 'json',
      getToken: ({ forceRefresh }) => {
        asked.push(forceRefresh);
        return asked.length === 1 ? new Promise<string>((r) => (release = r)) : Promise.resolve(`new-${asked.length}`);
      },
      fetch: (_input, init) => {
        sent.push(String((init?.headers as Record<string, string>).authorization));
        return Promise.resolve(new Response(JSON.stringify(SCHEMA), { status: 200, headers: { 'content-type': 'application/json' } }));
      },
    });
    const first = t.schema();
    await Promise.resolve();
    t.refreshToken();
    release('old');
    await first;
    await t.schema();
    expect(asked).toEqual([false, true]);
    expect(sent.at(-1)).toBe('Bearer new-2');
  });
});
