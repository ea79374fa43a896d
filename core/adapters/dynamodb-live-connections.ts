import type { LiveConnectionRecord, LiveConnections } from '../live/broadcast.ts';
import type { DynamoDbApi } from './dynamodb-api.ts';

/** The partition of live connections in the buffer's table (docs/dynamodb.md). */
export const LIVE_PK = 'W#live';

/** API Gateway closes a WebSocket after 2 hours at most: an item outlives its connection by at most this plus a day. */
const MAX_CONNECTION_MS = 2 * 3_600_000;
const TTL_SLACK_MS = 86_400_000;

/**
 * Open WebSocket connections as items of the buffer's table: pk `W#live`,
 * sk the connection id, `e` the token's expiry in ms (0: none), `c` when it
 * was kept in ms (a poke's 410 right after is no proof it is gone), `i`, `k`,
 * `a` its client id, the claims the sync rules read (JSON) and whether it is
 * an admin (whom a change concerns), `ttl` so an item whose disconnect event
 * was lost goes away by itself.
 */
export class DynamoDbLiveConnections implements LiveConnections {
  constructor(
    private readonly api: DynamoDbApi,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  async add(c: LiveConnectionRecord): Promise<void> {
    const closesBy = Math.min(c.expiresAt ?? Number.POSITIVE_INFINITY, this.now() + MAX_CONNECTION_MS);
    await this.api.call('PutItem', {
      TableName: this.tableName,
      Item: {
        pk: { S: LIVE_PK },
        sk: { S: c.id },
        e: { N: String(c.expiresAt ?? 0) },
        c: { N: String(this.now()) },
        ...(c.listener === undefined
          ? {}
          : { i: { S: c.listener.clientId }, k: { S: JSON.stringify(c.listener.claims) }, a: { BOOL: c.listener.admin } }),
        ttl: { N: String(Math.ceil((closesBy + TTL_SLACK_MS) / 1000)) },
      },
    });
  }

  async remove(id: string): Promise<void> {
    await this.api.call('DeleteItem', { TableName: this.tableName, Key: { pk: { S: LIVE_PK }, sk: { S: id } } });
  }

  async list(): Promise<LiveConnectionRecord[]> {
    const out: LiveConnectionRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.api.call('Query', {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: LIVE_PK } },
        ProjectionExpression: 'sk, e, c, i, k, a',
        ...(start !== undefined ? { ExclusiveStartKey: start as never } : {}),
      });
      for (const item of page.Items ?? []) {
        const e = Number(item['e']?.N ?? '0');
        const since = item['c']?.N;
        const clientId = item['i']?.S;
        const claims = item['k']?.S;
        out.push({
          id: item['sk']?.S ?? '',
          expiresAt: e > 0 ? e : null,
          ...(since !== undefined ? { since: Number(since) } : {}),
          ...(clientId !== undefined && claims !== undefined
            ? { listener: { clientId, claims: JSON.parse(claims) as Record<string, unknown>, admin: item['a']?.BOOL === true } }
            : {}),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start !== undefined);
    return out;
  }
}
