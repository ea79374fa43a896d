import type { APIGatewayProxyWebsocketEventV2, Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { ApiGatewayLivePoster } from '../../core/adapters/aws-fetch-apigw.ts';
import { AwsFetch, awsFetchOptionsFromEnv } from '../../core/adapters/aws-fetch.ts';
import { getSecretString } from '../../core/adapters/aws-fetch-secrets.ts';
import { fetchDynamoDbApi } from '../../core/adapters/dynamodb-api-fetch.ts';
import { DynamoDbLiveConnections } from '../../core/adapters/dynamodb-live-connections.ts';
import type { Authenticator, Principal } from '../../core/auth/principal.ts';
import { concerns, keptClaims } from '../../core/live/audience.ts';
import { pokeConnections, type LiveConnections, type LivePoster } from '../../core/live/broadcast.ts';
import { LIVE_PROTOCOL, PONG_MESSAGE, connectionExpiry, isPing, tokenFromProtocols } from '../../core/live/protocol.ts';
import { encodeError, wireErrorOf } from '../../core/protocol/codec.ts';
import { awsAuthenticator } from './auth.ts';
import { awsFetchFromEnv, settingsFromEnv } from './env.ts';
import { errorText, jsonLog, lambda, perContainer, type Log } from './lambda.ts';
import { RuleSet } from '../../core/rules.ts';
import { changesOf, isLogInsert } from './stream-records.ts';

/**
 * Live updates on AWS (docs/protocol.md, "Live updates"). One function, two
 * kinds of events:
 * - the WebSocket API's routes: $connect checks the token offered as a
 *   subprotocol and keeps the connection in the buffer's table, $disconnect
 *   forgets it, $default answers pings;
 * - the buffer table's stream (its own event source mapping, no batching
 *   window): each batch with new log items pokes the kept connections the
 *   new entries concern (by the sync rules, as a pull would decide: see
 *   core/live/audience.ts) through the Management API, closing those whose
 *   token expired.
 * Pokes are best effort: a failed one is logged, never retried (the
 * client's next round pulls anyway), so a batch never fails for them.
 */
export interface LiveDeps {
  readonly connections: LiveConnections;
  /** The stage's Management API; null when the function was not given its endpoint (pokes are skipped). */
  readonly poster: LivePoster | null;
  readonly auth: Authenticator;
  /** The sync rules (default: none, every connection but the writer's sees every change). */
  readonly rules?: RuleSet;
  readonly log?: Log;
  readonly now?: () => number;
}

/** Route events; $connect ones also carry the handshake's headers. */
export type LiveRouteEvent = APIGatewayProxyWebsocketEventV2 & {
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly multiValueHeaders?: Readonly<Record<string, readonly string[] | undefined>>;
};

export interface LiveRouteResult {
  readonly statusCode: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export type LiveHandler = (event: LiveRouteEvent | DynamoDBStreamEvent, context: Context) => Promise<LiveRouteResult | DynamoDBBatchResponse>;

/** A header by its lower-case name, whatever the client's casing; one sent several times (multiValueHeaders, where `headers` keeps the last) joined with commas, as HTTP does. */
function header(event: LiveRouteEvent, name: string): string | undefined {
  const multi = event.multiValueHeaders;
  for (const k in multi) if (k.toLowerCase() === name && multi[k] !== undefined) return multi[k].join(', ');
  const headers = event.headers;
  for (const k in headers) if (k.toLowerCase() === name) return headers[k];
  return undefined;
}

export function createLiveHandler(deps: LiveDeps): LiveHandler {
  const log = deps.log ?? jsonLog;
  const now = deps.now ?? Date.now;
  const rules = deps.rules ?? new RuleSet(null);
  return lambda(async (event: LiveRouteEvent | DynamoDBStreamEvent): Promise<LiveRouteResult | DynamoDBBatchResponse> => {
    if ('Records' in event) {
      if (deps.poster === null || !event.Records.some(isLogInsert)) return { batchItemFailures: [] };
      try {
        const changes = changesOf(event.Records);
        const r = await pokeConnections(deps.connections, deps.poster, now(), {
          concerns: (c) => changes === null || c.listener === undefined || concerns(rules, c.listener, changes),
        });
        for (const f of r.failed) log({ level: 'warn', msg: 'poke failed', connection: f.id, error: errorText(f.error) });
        if (r.poked + r.gone + r.expired + r.opening > 0) log({ level: 'info', msg: 'live poke', poked: r.poked, gone: r.gone, expired: r.expired, opening: r.opening, failed: r.failed.length });
      } catch (e) {
        log({ level: 'warn', msg: 'live poke failed', error: errorText(e) });
      }
      return { batchItemFailures: [] };
    }
    const id = event.requestContext.connectionId;
    switch (event.requestContext.eventType) {
      case 'CONNECT': {
        const token = tokenFromProtocols(header(event, 'sec-websocket-protocol'));
        let principal: Principal;
        try {
          principal = await deps.auth.authenticate(token === null ? null : `Bearer ${token}`);
        } catch (e) {
          // API Gateway refuses the handshake with this status (its body does not reach browsers).
          const { status, error } = wireErrorOf(e, event.requestContext.requestId);
          if (status >= 500) log({ level: 'error', msg: 'live connect failed', connection: id, error: errorText(e) });
          else log({ level: 'info', msg: 'live connect refused', connection: id, code: error.code });
          return { statusCode: status, headers: { 'content-type': 'application/json' }, body: new TextDecoder().decode(encodeError('json', error)) };
        }
        await deps.connections.add({
          id,
          expiresAt: connectionExpiry(principal),
          listener: { clientId: principal.clientId, claims: keptClaims(rules, principal.claims), admin: principal.admin },
        });
        log({ level: 'info', msg: 'live connect', connection: id });
        return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': LIVE_PROTOCOL } };
      }
      case 'DISCONNECT':
        await deps.connections.remove(id);
        log({ level: 'info', msg: 'live disconnect', connection: id });
        return { statusCode: 200 };
      default: {
        const body = event.body ?? '';
        const text = event.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
        return isPing(text) ? { statusCode: 200, body: PONG_MESSAGE } : { statusCode: 200 };
      }
    }
  });
}

export const handler: LiveHandler = perContainer(() => {
  const settings = settingsFromEnv(process.env);
  const endpoint = process.env['LAKESYNC_LIVE_ENDPOINT'];
  const dynamodb = fetchDynamoDbApi(awsFetchFromEnv(process.env, 'dynamodb'));
  return createLiveHandler({
    connections: new DynamoDbLiveConnections(dynamodb, settings.table),
    poster: endpoint ? new ApiGatewayLivePoster(new AwsFetch({ ...awsFetchOptionsFromEnv(process.env, 'execute-api'), endpoint })) : null,
    auth: awsAuthenticator(settings, (id) => getSecretString(awsFetchFromEnv(process.env, 'secretsmanager'), id)),
    rules: new RuleSet(settings.rules),
  });
});
