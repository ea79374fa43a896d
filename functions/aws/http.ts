import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyResult, Context } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import { openBuffer } from './buffer.ts';
import { S3ObjectStore } from '../../core/adapters/s3-object-store.ts';
import { JwtAuthenticator } from '../../core/auth/jwt.ts';
import { CheckpointService } from '../../core/engine/checkpoints.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import { createHttpApp } from '../../core/http/app.ts';
import { CheckpointStore, checkpointRootFor } from '../../core/lake/checkpoint-store.ts';
import type { JobQueue } from '../../core/lake/queue.ts';
import { settingsFromEnv, type AwsSettings } from './env.ts';
import { jsonLog, lambda, perContainer, type Log } from './lambda.ts';

/**
 * API Gateway HTTP API (payload v2) -> the /v1 app (core/http/app.ts):
 * push and pull on the DynamoDB buffer, checkpoints read from S3. Nothing
 * here loads Parquet or Arrow: checkpoints are served by CheckpointStore,
 * which only reads objects.
 */
export interface HttpDeps {
  readonly dynamodb: DynamoDBClient;
  readonly s3: S3Client;
  /** POST /v1/admin/flush enqueues a flush job here; by default an SQS queue client made on first use. */
  readonly flushQueue?: JobQueue;
  readonly log?: Log;
}

export type HttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResult>;

export function createHttpHandler(deps: HttpDeps, settings: AwsSettings): HttpHandler {
  const buffer = openBuffer(deps.dynamodb, settings);
  const gateway = new Gateway({
    buffer,
    schema: settings.schema,
    rules: settings.rules,
    clock: new HybridLogicalClock({ maxDriftMs: settings.maxDriftMs }),
  });
  const store = new S3ObjectStore(deps.s3);
  const checkpoints = new CheckpointStore(store, checkpointRootFor(settings.warehouse, [settings.namespace]));
  let flushQueue: Promise<JobQueue> | null = deps.flushQueue === undefined ? null : Promise.resolve(deps.flushQueue);
  const queue = (): Promise<JobQueue> =>
    (flushQueue ??= (async () => {
      // Loaded on demand: an admin call is rare, and the SQS client should not cost every cold start.
      const [{ SQSClient }, { SqsJobQueue }] = await Promise.all([import('@aws-sdk/client-sqs'), import('../../core/adapters/sqs-job-queue.ts')]);
      return new SqsJobQueue({ client: new SQSClient({}), queueUrl: settings.flushQueueUrl });
    })());
  const app = createHttpApp({
    gateway,
    auth: new JwtAuthenticator(settings.auth),
    checkpoints: new CheckpointService(checkpoints, gateway.rules),
    log: deps.log ?? jsonLog,
    // The flush itself runs in the flush function; this only asks for one.
    flushNow: async () => {
      const head = await buffer.head();
      await (await queue()).send([{ kind: 'flush', ref: `admin-${head}-${Date.now()}` }]);
      return { queued: 'flush', head };
    },
  });
  return lambda(handle(app) as HttpHandler);
}

export const handler: HttpHandler = perContainer(() => createHttpHandler({ dynamodb: new DynamoDBClient({}), s3: new S3Client({}) }, settingsFromEnv(process.env)));
