import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LiveHub, clientProtocols, type Authenticator } from '../../core/index.ts';
import { attachLive } from './live.ts';

const auth: Authenticator = { authenticate: () => Promise.resolve({ clientId: 'c', userId: 'u', admin: false, claims: { sub: 'u' } }) };

describe('attachLive', () => {
  let server: Server | null = null;
  let detach: (() => void) | null = null;
  afterEach(async () => {
    detach?.();
    await new Promise((r) => server?.close(r));
    server = null;
  });

  it('closes a connection that sent nothing for the idle time (as API Gateway does), not one that pings', async () => {
    server = createServer();
    await new Promise<void>((r) => (server as Server).listen(0, '127.0.0.1', r));
    const hub = new LiveHub();
    detach = attachLive(server, auth, hub, () => undefined, 10, 150);
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/live`;
    const open = (): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, clientProtocols('t'));
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const silent = await open();
    const pinging = await open();
    const timer = setInterval(() => pinging.send('{"type":"ping"}'), 40);
    const code = await new Promise<number>((r) => silent.once('close', (c) => r(c)));
    expect(code).toBe(1001);
    await new Promise((r) => setTimeout(r, 200));
    clearInterval(timer);
    expect(pinging.readyState).toBe(WebSocket.OPEN);
    expect(hub.size).toBe(1);
    pinging.close();
  });
});
