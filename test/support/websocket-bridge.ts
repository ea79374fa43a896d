import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Context } from 'aws-lambda';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LiveRouteEvent, LiveRouteResult } from '../../functions/aws/live.ts';
import { MOTO_REGION } from './moto.ts';

/**
 * A local stand-in for an API Gateway WebSocket API, for the live function
 * run in-process:
 * - WebSocket handshakes become $connect events (headers included); a
 *   non-200 answer refuses the handshake with that status, a 200 completes
 *   it with the Sec-WebSocket-Protocol header the function chose;
 * - frames become $default MESSAGE events, whose answer's body is sent back
 *   (a route response); a close becomes a $disconnect event;
 * - the Management API on the same port: POST /<stage>/@connections/<id>
 *   sends the body as a frame, DELETE closes the connection; an unknown id
 *   answers 410 GoneException. Requests must be SigV4-signed for
 *   `execute-api` (the signature itself is not checked, as moto does not).
 */
export interface WebSocketBridge {
  /** What clients connect to: ws://127.0.0.1:<port>/<stage>. */
  readonly url: string;
  /** The Management API endpoint the live function is given (the stage's callback URL). */
  readonly callbackUrl: string;
  /** Open connections by id. */
  readonly connections: ReadonlyMap<string, WebSocket>;
  /** Management API calls so far: method and connection id. */
  readonly calls: Array<{ method: string; id: string; signed: boolean }>;
  close(): Promise<void>;
}

type LiveRouteHandler = (event: LiveRouteEvent, context: Context) => Promise<LiveRouteResult>;

const STAGE = 'live';

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'live',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${MOTO_REGION}:123456789012:function:live`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/live',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export async function startWebSocketBridge(handler: LiveRouteHandler): Promise<WebSocketBridge> {
  const connections = new Map<string, WebSocket>();
  const calls: WebSocketBridge['calls'] = [];
  let host = '';
  const event = (id: string, eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT', extra: Partial<LiveRouteEvent> = {}): LiveRouteEvent =>
    ({
      requestContext: {
        routeKey: eventType === 'CONNECT' ? '$connect' : eventType === 'DISCONNECT' ? '$disconnect' : '$default',
        eventType,
        messageId: randomUUID(),
        extendedRequestId: randomUUID(),
        requestTime: new Date().toUTCString(),
        messageDirection: 'IN',
        stage: STAGE,
        connectedAt: Date.now(),
        requestTimeEpoch: Date.now(),
        requestId: randomUUID(),
        domainName: host,
        connectionId: id,
        apiId: 'local',
      },
      isBase64Encoded: false,
      ...extra,
    }) as LiveRouteEvent;

  const server: Server = createServer((req, res) => {
    // The Management API.
    const m = new RegExp(`^/${STAGE}/@connections/([^/]+)$`).exec(new URL(req.url ?? '/', 'http://x').pathname);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (m === null || (req.method !== 'POST' && req.method !== 'DELETE')) {
        res.writeHead(404).end();
        return;
      }
      const id = decodeURIComponent(m[1] as string);
      const auth = req.headers['authorization'] ?? '';
      calls.push({ method: req.method, id, signed: auth.startsWith('AWS4-HMAC-SHA256 ') && auth.includes('/execute-api/aws4_request') });
      const ws = connections.get(id);
      if (ws === undefined) {
        res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' }).end('{"message":"Gone"}');
        return;
      }
      if (req.method === 'POST') ws.send(Buffer.concat(chunks).toString('utf8'));
      else ws.close(1000, 'closed by the server');
      res.writeHead(200).end();
    });
  });

  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered, req) => (req as IncomingMessage & { chosen?: string }).chosen ?? false });
  server.on('upgrade', (req: IncomingMessage & { chosen?: string }, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const id = randomBytes(12).toString('base64'); // API Gateway's ids end in '=' too
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase())] = String(v);
    handler(event(id, 'CONNECT', { headers } as Partial<LiveRouteEvent>), context()).then(
      (r) => {
        if (r.statusCode !== 200) {
          const body = r.body ?? '';
          socket.end(`HTTP/1.1 ${r.statusCode} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
          return;
        }
        const chosen = Object.entries(r.headers ?? {}).find(([k]) => k.toLowerCase() === 'sec-websocket-protocol')?.[1];
        if (chosen !== undefined) req.chosen = chosen;
        wss.handleUpgrade(req, socket, head, (ws) => {
          connections.set(id, ws);
          ws.on('message', (data) => {
            void handler(event(id, 'MESSAGE', { body: data.toString() }), context()).then((out) => {
              if (out.body !== undefined) ws.send(out.body);
            });
          });
          ws.on('close', () => {
            connections.delete(id);
            void handler(event(id, 'DISCONNECT'), context());
          });
        });
      },
      () => socket.end('HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n'),
    );
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  host = `127.0.0.1:${port}`;
  return {
    url: `ws://${host}/${STAGE}`,
    callbackUrl: `http://${host}/${STAGE}`,
    connections,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of connections.values()) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
