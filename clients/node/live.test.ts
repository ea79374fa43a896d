import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket as WsWebSocket } from 'ws';
import { LiveConnection, liveUrlOf, type WebSocketLike } from './live.ts';

/** A WebSocket double: records what was made, lets the test drive its events. */
class FakeSocket implements WebSocketLike {
  static made: FakeSocket[] = [];
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  sent: string[] = [];
  closedWith: number | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.made.push(this);
  }
  send(text: string): void {
    this.sent.push(text);
  }
  close(code?: number): void {
    this.closedWith = code ?? 1000;
  }
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('LiveConnection', () => {
  it('pokes once on open and on each poke frame, ignoring other frames; offers the token as a subprotocol', async () => {
    FakeSocket.made = [];
    let pokes = 0;
    const c = new LiveConnection({ url: 'ws://x/v1/live', WebSocket: FakeSocket, getToken: () => Promise.resolve('tok'), onPoke: () => pokes++ });
    c.start();
    await tick();
    const s = FakeSocket.made[0] as FakeSocket;
    expect(s.protocols).toEqual(['lakesync.v1', 'bearer.tok']);
    s.onopen?.({});
    expect(pokes).toBe(1);
    s.onmessage?.({ data: '{"type":"poke"}' });
    s.onmessage?.({ data: '{"type":"pong"}' });
    s.onmessage?.({ data: 'not json' });
    s.onmessage?.({ data: new Uint8Array([1]) });
    expect(pokes).toBe(2);
    c.stop();
    expect(s.closedWith).toBe(1000);
  });

  it('reconnect() closes the open socket and opens another with a fresh token; a stopped connection stays stopped', async () => {
    FakeSocket.made = [];
    const asked: boolean[] = [];
    const c = new LiveConnection({ url: 'ws://x/v1/live', WebSocket: FakeSocket, getToken: (refresh) => (asked.push(refresh), Promise.resolve('tok')), onPoke: () => undefined });
    c.start();
    await tick();
    const first = FakeSocket.made[0] as FakeSocket;
    first.onopen?.({});
    c.reconnect();
    await tick();
    expect(first.closedWith).toBe(1000);
    expect(FakeSocket.made).toHaveLength(2);
    expect(asked).toEqual([false, true]);
    c.stop();
    c.reconnect();
    await tick();
    expect(FakeSocket.made).toHaveLength(2);
  });

  it('reconnects after a close, with a fresh token when the handshake failed or the token expired (4001)', async () => {
    FakeSocket.made = [];
    const asked: boolean[] = [];
    const c = new LiveConnection({
      url: 'ws://x/v1/live',
      WebSocket: FakeSocket,
      getToken: (refresh) => (asked.push(refresh), Promise.resolve('tok')),
      onPoke: () => undefined,
      backoff: { baseMs: 1, maxMs: 2 },
    });
    c.start();
    await tick();
    (FakeSocket.made[0] as FakeSocket).onclose?.({ code: 1006, reason: '' }); // refused handshake: never opened
    await tick(20);
    const second = FakeSocket.made[1] as FakeSocket;
    second.onopen?.({});
    second.onclose?.({ code: 1001, reason: 'going away' }); // server shutdown: same token is fine
    await tick(20);
    (FakeSocket.made[2] as FakeSocket).onopen?.({});
    (FakeSocket.made[2] as FakeSocket).onclose?.({ code: 4001, reason: 'token expired' });
    await tick(20);
    expect(asked).toEqual([false, true, false, true]);
    c.stop();
  });

  it('a stop() while a token is being fetched opens nothing, and a restart opens exactly one socket', async () => {
    FakeSocket.made = [];
    let release: (t: string) => void = () => undefined;
    const c = new LiveConnection({ url: 'ws://x', WebSocket: FakeSocket, getToken: () => new Promise((r) => (release = r)), onPoke: () => undefined });
    c.start();
    const first = release;
    c.stop();
    c.start();
    first('old');
    release('new');
    await tick();
    expect(FakeSocket.made.map((s) => s.protocols[1])).toEqual(['bearer.new']);
    c.stop();
  });

  it('a WebSocket constructor that throws (a bad URL, a token that is no valid subprotocol) is retried with backoff, never an unhandled rejection', async () => {
    let made = 0;
    const rejections: unknown[] = [];
    const onRejection = (e: unknown): void => void rejections.push(e);
    process.on('unhandledRejection', onRejection);
    const Throwing = class {
      constructor() {
        made++;
        throw new SyntaxError('An invalid or duplicated subprotocol was specified');
      }
    } as unknown as typeof FakeSocket;
    const c = new LiveConnection({ url: 'ws://x', WebSocket: Throwing, getToken: () => Promise.resolve('a=b'), onPoke: () => undefined, backoff: { baseMs: 1, maxMs: 2 } });
    try {
      c.start();
      await tick(50);
      expect(rejections).toEqual([]);
      expect(made).toBeGreaterThan(1);
    } finally {
      c.stop();
      process.off('unhandledRejection', onRejection);
    }
  });

  it('a connection whose ping goes unanswered (half-open) is dropped and reconnected, and one that answers is kept', async () => {
    FakeSocket.made = [];
    const states: boolean[] = [];
    let pokes = 0;
    const c = new LiveConnection({
      url: 'ws://x',
      WebSocket: FakeSocket,
      getToken: () => Promise.resolve('tok'),
      onPoke: () => pokes++,
      onConnected: (up) => states.push(up),
      pingMs: 20,
      backoff: { baseMs: 1, maxMs: 2 },
    });
    c.start();
    await tick();
    const first = FakeSocket.made[0] as FakeSocket;
    first.onopen?.({});
    // An answering server: every ping gets its pong.
    first.send = (text) => {
      first.sent.push(text);
      queueMicrotask(() => first.onmessage?.({ data: '{"type":"pong"}' }));
    };
    await tick(100);
    expect(first.sent.length).toBeGreaterThan(2);
    expect(first.closedWith).toBeNull();
    expect(FakeSocket.made).toHaveLength(1);
    // The network goes away without a close: pings vanish, no close event ever comes.
    first.send = (text) => void first.sent.push(text);
    await tick(120);
    expect(first.closedWith).not.toBeNull();
    expect(states).toEqual([true, false]);
    expect(FakeSocket.made.length).toBeGreaterThan(1);
    c.stop();
  });

  it('a pingMs beyond what setInterval holds pings no sooner than the longest delay (it pinged every millisecond and dropped the socket)', async () => {
    FakeSocket.made = [];
    const c = new LiveConnection({ url: 'ws://x', WebSocket: FakeSocket, getToken: () => Promise.resolve('tok'), onPoke: () => undefined, pingMs: 1e12 });
    c.start();
    await tick();
    const s = FakeSocket.made[0] as FakeSocket;
    s.onopen?.({});
    await tick(50);
    expect(s.sent).toEqual([]);
    expect(s.closedWith).toBeNull();
    c.stop();
  });

  it('a stop() while the ws package is still in its handshake does not crash the process with an unhandled error event', async () => {
    // A server that accepts the TCP connection and never answers the upgrade: the socket stays CONNECTING.
    const held: Socket[] = [];
    const server = createServer((sock) => void held.push(sock));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const errors: unknown[] = [];
    const onError = (e: unknown): void => void errors.push(e);
    process.on('uncaughtException', onError);
    try {
      const c = new LiveConnection({ url: `ws://127.0.0.1:${port}/v1/live`, WebSocket: WsWebSocket, getToken: () => Promise.resolve('tok'), onPoke: () => undefined });
      c.start();
      while (held.length === 0) await tick();
      c.stop();
      await tick(50);
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
      for (const s of held) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('a handshake that never completes (a server that accepts and stays silent) is given up and retried', async () => {
    FakeSocket.made = [];
    const c = new LiveConnection({ url: 'ws://x', WebSocket: FakeSocket, getToken: () => Promise.resolve('tok'), onPoke: () => undefined, connectTimeoutMs: 30, backoff: { baseMs: 1, maxMs: 2 } });
    c.start();
    await tick(100);
    expect((FakeSocket.made[0] as FakeSocket).closedWith).not.toBeNull();
    expect(FakeSocket.made.length).toBeGreaterThan(1);
    c.stop();
  });

  it('derives the live URL from the gateway URL', () => {
    expect(liveUrlOf('http://127.0.0.1:8787')).toBe('ws://127.0.0.1:8787/v1/live');
    expect(liveUrlOf('https://api.example.com/prefix/')).toBe('wss://api.example.com/prefix/v1/live');
  });
});
