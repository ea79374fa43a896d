import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { DynamoDbBuffer } from '../../core/adapters/dynamodb-buffer.ts';
import type { AwsSettings } from './env.ts';

/**
 * The one DynamoDB buffer options every function uses: the http function
 * appends, the stream consumer materializes the row and stamp index (so a
 * push never waits for it; appends keep a backstop), the lake jobs trim.
 * The http function passes the fetch client (no SDK), the others an SDK one.
 */
export function openBuffer(client: DynamoDBClient | DynamoDbApi, settings: Pick<AwsSettings, 'table' | 'logTtlDays'>): DynamoDbBuffer {
  const days = settings.logTtlDays ?? 0;
  return new DynamoDbBuffer({
    client,
    table: settings.table,
    materializeOnAppend: false,
    ...(days > 0 ? { ttlAttribute: 'ttl', ttlSeconds: days * 86_400 } : {}),
  });
}
