import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoDbApi, type DynamoDbApi } from './dynamodb-api.ts';

/**
 * The shard count is part of the data: a table's deltas, rows and stamps
 * live in its shard, and cursors, flush marks and lake watermarks count in
 * that shard's seqs. Opening a table with another count would silently put
 * tables in new logs whose seqs collide with what the lake already holds.
 * So the first deployment to use a table records its count in the item
 * (`C#shards`, `-`), and every later one must open it with the same count.
 * A table written before the count was recorded (it has shard 0's meta or
 * log, but no record) was written by one shard.
 */
export class ShardCountMismatch extends Error {
  override name = 'ShardCountMismatch';
}

const KEY = { pk: { S: 'C#shards' }, sk: { S: '-' } };

export async function claimShardCount(client: DynamoDBClient | DynamoDbApi, table: string, shards: number): Promise<void> {
  const api = dynamoDbApi(client);
  const refuse = (recorded: number): ShardCountMismatch =>
    new ShardCountMismatch(`table ${table} holds a ${recorded}-shard buffer; set LAKESYNC_SHARDS to ${recorded}, not ${shards}`);
  for (let attempt = 0; attempt < 3; attempt++) {
    const got = await api.call('GetItem', { TableName: table, Key: KEY, ConsistentRead: true });
    const recorded = got.Item?.['n']?.N;
    if (recorded !== undefined) {
      if (Number(recorded) !== shards) throw refuse(Number(recorded));
      return;
    }
    // Unrecorded: written before counts were recorded (one shard) if shard 0 has a meta or log item.
    let count = shards;
    for (const pk of ['M#0', 'L#0']) {
      const q = { TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: pk } }, ConsistentRead: true, Limit: 1 };
      if (((await api.call('Query', q)).Items?.length ?? 0) > 0) count = 1;
    }
    try {
      await api.call('PutItem', { TableName: table, Item: { ...KEY, n: { N: String(count) } }, ConditionExpression: 'attribute_not_exists(pk)' });
    } catch (e) {
      // Another container recorded it first: read theirs.
      if ((e as { name?: string }).name === 'ConditionalCheckFailedException') continue;
      throw e;
    }
    if (count !== shards) throw refuse(count);
    return;
  }
  throw new Error(`could not record the shard count of ${table}`);
}
