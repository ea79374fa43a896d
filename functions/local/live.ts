import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_GOING_AWAY,
  LIVE_PATH,
  LIVE_PROTOCOL,
  LakeSyncError,
  PONG_MESSAGE,
  encodeError,
  isPing,
  tokenFromProtocols,
  wireErrorOf,
  type Authenticator,
  type LiveHub,
} from '../../core/index.ts';

/**
 * Live updates on the local server: WebSocket upgrades on /v1/live,
 * authenticated by the token offered as a subprotocol (core/live/protocol.ts),
 * then handed to the hub that pokes them after every append.
 */
export function attachLive(server: Server, auth: Authenticator, hub: LiveHub, log: (e: object) => void, maxConnections = 10_000, idleMs = 600_000): () => void {
  const wss = new WebSocketServer({
    noServer: true,
    // Clients send nothing but pings: a tiny frame limit keeps a connection cheap.
    maxPayload: 1024,
    handleProtocols: (offered) => (offered.has(LIVE_PROTOCOL) ? LIVE_PROTOCOL : false),
  });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== LIVE_PATH) {
      refuse(socket, new LakeSyncError('NOT_FOUND', `no WebSocket endpoint at ${path}`));
      return;
    }
    if (hub.size >= maxConnections) {
      // Checked again once authenticated; this spares the token check when already full.
      refuse(socket, new LakeSyncError('TOO_MANY_CONNECTIONS', `at most ${maxConnections} live connections`));
      return;
    }
    const token = tokenFromProtocols(req.headers['sec-websocket-protocol']);
    auth.authenticate(token === null ? null : `Bearer ${token}`).then(
      (principal) => {
        if (hub.size >= maxConnections) {
          refuse(socket, new LakeSyncError('TOO_MANY_CONNECTIONS', `at most ${maxConnections} live connections`));
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          const forget = hub.add(ws, principal);
          // Like API Gateway, close a connection idle for 10 minutes (clients ping every 4): a peer that
          // went away without a close would otherwise hold its socket and a place under the cap for good.
          const idle = setTimeout(() => ws.close(CLOSE_GOING_AWAY, 'idle'), idleMs);
          idle.unref();
          const remove = (): void => {
            clearTimeout(idle);
            forget();
          };
          ws.on('close', remove);
          ws.on('error', (err) => {
            remove();
            log({ level: 'warn', msg: 'live socket error', error: String(err) });
          });
          ws.on('message', (data, isBinary) => {
            idle.refresh();
            if (!isBinary && isPing(data.toString())) ws.send(PONG_MESSAGE);
          });
        });
      },
      (err: unknown) => refuse(socket, err),
    );
  };
  server.on('upgrade', onUpgrade);
  return () => {
    server.off('upgrade', onUpgrade);
    hub.closeAll();
    wss.close();
  };
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

/** Answer a refused upgrade with the usual error envelope (JSON) and close. */
function refuse(socket: Duplex, err: unknown): void {
  const { status, error } = wireErrorOf(err, '');
  const body = Buffer.from(encodeError('json', error));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body.toString()}`,
  );
}
