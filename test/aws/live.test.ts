import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { ApiGatewayLivePoster } from '../../core/adapters/aws-fetch-apigw.ts';
import { AwsFetch } from '../../core/adapters/aws-fetch.ts';
import { dynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { createDynamoDbBufferTable } from '../../core/adapters/dynamodb-buffer.ts';
import { DynamoDbLiveConnections } from '../../core/adapters/dynamodb-live-connections.ts';
import { JwtAuthenticator } from '../../core/auth/jwt.ts';
import { clientProtocols } from '../../core/live/protocol.ts';
import type { AwsSettings } from '../../functions/aws/env.ts';
import { createHttpHandler } from '../../functions/aws/http.ts';
import { createLiveHandler, type LiveHandler, type LiveRouteEvent, type LiveRouteResult } from '../../functions/aws/live.ts';
import { LambdaDriver, logInsertFilter, startHttpBridge, type HttpBridge, type StreamSource } from '../support/lambda-driver.ts';
import { MOTO_CREDENTIALS, MOTO_REGION, motoClientConfig, startMoto, type MotoServer } from '../support/moto.ts';
import { LIVE_RULES, liveProtocolSuite, until } from '../support/live-suite.ts';
import { RuleSet } from '../../core/rules.ts';
import { pokeConnections, type LiveConnections } from '../../core/live/broadcast.ts';
import { TEST_SECRET, TODO_SCHEMA, tokenFor } from '../support/server.ts';
import { startWebSocketBridge, type WebSocketBridge } from '../support/websocket-bridge.ts';

/**
 * Live updates on AWS, in-process against moto: the live function behind a
 * stand-in for the API Gateway WebSocket API (test/support/websocket-bridge.ts)
 * keeps connections in the buffer's DynamoDB table, and run from the
 * table's stream it pokes them through the (signed) Management API; a
 * Node client that would not pull for an hour gets another client's write.
 */

const TABLE = 'live-buffer';
const HOUR = 3_600_000;
const quiet = (): void => {};
let moto: MotoServer;
let dynamodb: DynamoDBClient;
let sqs: SQSClient;
let s3: S3Client;
let http: HttpBridge;
let ws: WebSocketBridge;
let stream: StreamSource;
let driver: LambdaDriver;
let connections: DynamoDbLiveConnections;
const nodeClients: LakeSyncClient[] = [];

const settings = (): AwsSettings => ({
  table: TABLE,
  bucket: 'unused',
  warehouse: 's3://unused/warehouse',
  namespace: 'live',
  flushQueueUrl: 'http://unused/flush.fifo',
  jobsQueueUrl: 'http://unused/jobs',
  schema: TODO_SCHEMA,
  rules: LIVE_RULES,
  auth: { hs256Secret: TEST_SECRET },
  maxDriftMs: 60_000,
  flushMaxDeltas: 1000,
  flushMaxAgeMs: HOUR,
  checkpointEvery: 1000,
  retainDeltas: 0,
  snapshotRetentionMs: 86_400_000,
  orphanAgeMs: HOUR,
});

beforeAll(async () => {
  moto = await startMoto();
  const config = motoClientConfig(moto);
  dynamodb = new DynamoDBClient(config);
  sqs = new SQSClient(config);
  s3 = new S3Client(config);
  await createDynamoDbBufferTable(dynamodb, TABLE, { stream: true });
  http = await startHttpBridge(createHttpHandler({ dynamodb, s3, log: quiet }, settings()));
  connections = new DynamoDbLiveConnections(dynamoDbApi(dynamodb), TABLE);
  let live: LiveHandler | null = null;
  ws = await startWebSocketBridge((event, ctx) => (live as LiveHandler)(event, ctx) as Promise<LiveRouteResult>);
  live = createLiveHandler({
    connections,
    poster: new ApiGatewayLivePoster(new AwsFetch({ service: 'execute-api', region: MOTO_REGION, credentials: MOTO_CREDENTIALS, endpoint: ws.callbackUrl })),
    auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }),
    rules: new RuleSet(LIVE_RULES),
    log: quiet,
  });
  driver = new LambdaDriver({ endpoint: moto.endpoint, sqs });
  // The live function's own mapping on the table's stream, with the same filter as the stream function's.
  stream = await driver.stream(TABLE, live as (e: DynamoDBStreamEvent, c: Context) => Promise<{ batchItemFailures: [] }>, { filter: logInsertFilter });
});

afterAll(async () => {
  for (const c of nodeClients.splice(0)) await c.close();
  await ws?.close();
  await http?.close();
  for (const c of [dynamodb, sqs, s3]) c?.destroy();
  await moto?.stop();
});

async function client(id: string, live: boolean): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({
    url: http.url,
    database: ':memory:',
    schema: TODO_SCHEMA,
    clientId: id,
    initialSync: 'pull',
    intervalMs: HOUR,
    getToken: ({ clientId }) => tokenFor('u1', clientId),
    ...(live ? { live: { url: ws.url, WebSocket } } : {}),
  });
  nodeClients.push(c);
  return c;
}

liveProtocolSuite('AWS functions on moto', () => ({
  url: http.url,
  liveUrl: ws.url,
  // The live function's stream mapping delivers the new log items.
  afterPush: async () => {
    await driver.pump({ only: [stream] });
  },
  connections: async () => (await connections.list()).length,
}));

describe('live updates on AWS (moto)', () => {
  it('forgets gone connections and closes those whose token expired, on the next poke', async () => {
    // Kept a minute ago (a 410 within 30 s of the connect may only mean API Gateway has not opened it yet).
    await new DynamoDbLiveConnections(dynamoDbApi(dynamodb), TABLE, () => Date.now() - 60_000).add({ id: 'gone-one=', expiresAt: null });
    const token = await tokenFor('u1', 'x', { expiresIn: '1s' });
    const socket = new WebSocket(ws.url, clientProtocols(token));
    await new Promise((r) => socket.once('open', r));
    const closed = new Promise<number>((r) => socket.once('close', (code) => r(code)));
    await new Promise((r) => setTimeout(r, 1100)); // its token is now expired

    const a = await client('a2', false);
    a.insert('todos', 't2', { title: 'poke', done: true, owner: 'u1' });
    await a.sync();
    const before = ws.calls.length;
    await driver.pump({ only: [stream] });
    expect(await closed).toBe(1000);
    const made = ws.calls.slice(before);
    expect(made).toEqual(expect.arrayContaining([{ method: 'POST', id: 'gone-one=', signed: true }, expect.objectContaining({ method: 'DELETE', signed: true })]));
    await until(async () => (await connections.list()).length === 0);
  });

  it('a route event for a stream batch without log items, or with no endpoint configured, pokes nobody', async () => {
    const calls = ws.calls.length;
    const handler = createLiveHandler({ connections, poster: null, auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }), log: quiet });
    const ctx = {} as Context;
    const batch = { Records: [{ eventName: 'INSERT', dynamodb: { Keys: { pk: { S: 'L#0' } } } }] } as DynamoDBStreamEvent;
    expect(await handler(batch, ctx)).toEqual({ batchItemFailures: [] });
    const live = createLiveHandler({ connections, poster: new ApiGatewayLivePoster(new AwsFetch({ service: 'execute-api', region: MOTO_REGION, credentials: MOTO_CREDENTIALS, endpoint: ws.callbackUrl })), auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }), log: quiet });
    const other = { Records: [{ eventName: 'MODIFY', dynamodb: { Keys: { pk: { S: 'M#0' } } } }] } as DynamoDBStreamEvent;
    expect(await live(other, ctx)).toEqual({ batchItemFailures: [] });
    expect(ws.calls.length).toBe(calls);
    // A message that is not a ping gets no answer.
    const msg = { requestContext: { eventType: 'MESSAGE', connectionId: 'c' }, body: 'hello', isBase64Encoded: false } as unknown as LiveRouteEvent;
    expect(await live(msg, ctx)).toEqual({ statusCode: 200 });
  });

  it('a poke that overtakes a $connect (API Gateway answers 410 until the handshake completes) does not forget the connection', async () => {
    // A second bridge whose live function is overtaken by a stream batch right after $connect kept the connection.
    let poster: ApiGatewayLivePoster | null = null;
    let overtake = true;
    const racing: LiveConnections = {
      add: async (c) => {
        await connections.add(c);
        if (overtake) {
          overtake = false;
          await pokeConnections(connections, poster as ApiGatewayLivePoster, Date.now());
        }
      },
      remove: (id) => connections.remove(id),
      list: () => connections.list(),
    };
    let handler: LiveHandler | null = null;
    const bridge = await startWebSocketBridge((event, ctx) => (handler as LiveHandler)(event, ctx) as Promise<LiveRouteResult>);
    poster = new ApiGatewayLivePoster(new AwsFetch({ service: 'execute-api', region: MOTO_REGION, credentials: MOTO_CREDENTIALS, endpoint: bridge.callbackUrl }));
    handler = createLiveHandler({ connections: racing, poster, auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }), log: quiet });
    const socket = new WebSocket(bridge.url, clientProtocols(await tokenFor('u1', 'racer')));
    try {
      await new Promise((r) => socket.once('open', r));
      expect(bridge.calls.some((c) => c.method === 'POST')).toBe(true); // the overtaking poke found it not open yet
      const poked = new Promise<string>((r) => {
        socket.once('message', (d) => r(d.toString()));
        setTimeout(() => r('{"type":"none within 2 s"}'), 2000);
      });
      await pokeConnections(connections, poster, Date.now()); // the next append's poke
      expect(JSON.parse(await poked)).toEqual({ type: 'poke' });
    } finally {
      socket.close();
      await bridge.close();
      await until(async () => (await connections.list()).length === 0);
    }
  });

  it('$connect reads a subprotocol header sent twice (RFC 6455 allows it; API Gateway keeps only the last in headers)', async () => {
    const kept: string[] = [];
    const handler = createLiveHandler({
      connections: { add: async (c) => void kept.push(c.id), remove: async () => undefined, list: async () => [] },
      poster: null,
      auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }),
      log: quiet,
    });
    const bearer = `bearer.${await tokenFor('u1', 'twice')}`;
    const event = {
      requestContext: { eventType: 'CONNECT', connectionId: 'twice=', requestId: 'r' },
      headers: { Host: 'x', 'Sec-WebSocket-Protocol': bearer },
      multiValueHeaders: { Host: ['x'], 'Sec-WebSocket-Protocol': ['lakesync.v1', bearer] },
      isBase64Encoded: false,
    } as unknown as LiveRouteEvent;
    expect(await handler(event, {} as Context)).toMatchObject({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'lakesync.v1' } });
    expect(kept).toEqual(['twice=']);
  });
});
