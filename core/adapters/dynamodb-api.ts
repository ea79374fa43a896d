import type * as Sdk from '@aws-sdk/client-dynamodb';

/**
 * The DynamoDB operations the buffer uses, taking and returning the SDK's
 * plain input and output shapes. Two implementations: over an SDK
 * DynamoDBClient (below: tests, the flush and jobs functions) and over
 * fetch (dynamodb-api-fetch.ts: the http function, which must not load
 * the SDK). Errors keep the SDK's names (ConditionalCheckFailedException,
 * TransactionCanceledException with CancellationReasons, ...).
 */
export interface DynamoDbOps {
  GetItem: [Sdk.GetItemInput, Sdk.GetItemOutput];
  PutItem: [Sdk.PutItemInput, Sdk.PutItemOutput];
  UpdateItem: [Sdk.UpdateItemInput, Sdk.UpdateItemOutput];
  DeleteItem: [Sdk.DeleteItemInput, Sdk.DeleteItemOutput];
  Query: [Sdk.QueryInput, Sdk.QueryOutput];
  BatchGetItem: [Sdk.BatchGetItemInput, Sdk.BatchGetItemOutput];
  TransactWriteItems: [Sdk.TransactWriteItemsInput, Sdk.TransactWriteItemsOutput];
  CreateTable: [Sdk.CreateTableInput, Sdk.CreateTableOutput];
}

export type DynamoDbOp = keyof DynamoDbOps;

export interface DynamoDbApi {
  call<K extends DynamoDbOp>(op: K, input: DynamoDbOps[K][0]): Promise<DynamoDbOps[K][1]>;
}

/**
 * The operations over an SDK client. The SDK module is imported on the
 * first call (whoever made the client has loaded it already), so code that
 * only may take this path does not load the SDK at import.
 */
export function sdkDynamoDbApi(client: Sdk.DynamoDBClient): DynamoDbApi {
  let sdk: Promise<typeof Sdk> | undefined;
  return {
    async call(op, input) {
      const m = (await (sdk ??= import('@aws-sdk/client-dynamodb'))) as unknown as Record<string, new (input: unknown) => Sdk.GetItemCommand>;
      const Command = m[`${op}Command`] as new (input: unknown) => Sdk.GetItemCommand;
      return (await client.send(new Command(input))) as never;
    },
  };
}

/** An SDK client is wrapped; operations are taken as they are. */
export function dynamoDbApi(client: Sdk.DynamoDBClient | DynamoDbApi): DynamoDbApi {
  return 'call' in client ? client : sdkDynamoDbApi(client);
}
