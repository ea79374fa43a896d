import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GlueClient } from '@aws-sdk/client-glue';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { settingsFromEnv, type AwsSettings } from './env.ts';
import { guarded } from './buffer.ts';
import { openAwsLake, type LakeClients, type LakeOverrides } from './lake.ts';
import { eachJob, jsonLog, lambda, perContainer, type Log } from './lambda.ts';

/**
 * The jobs queue (SQS standard) -> compact / checkpoint / lifecycle /
 * fanout (core/lake/job-runner.ts). Jobs may run concurrently, twice, or
 * late: each is idempotent, and commits to the same table are serialized
 * by the catalog's optimistic concurrency (a loser fails and is retried).
 * Failed messages are reported one by one (batchItemFailures).
 */
export type JobsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export function createJobsHandler(clients: LakeClients, settings: AwsSettings, overrides: LakeOverrides & { log?: Log } = {}): JobsHandler {
  const { runner, guard } = openAwsLake(clients, settings, overrides);
  const log = overrides.log ?? jsonLog;
  return lambda(guarded(guard, (event: SQSEvent, context: Context) => eachJob(event, (job) => runner.run(job), log, { context })));
}

export const handler: JobsHandler = perContainer(() =>
  createJobsHandler({ dynamodb: new DynamoDBClient({}), s3: new S3Client({}), glue: new GlueClient({}), sqs: new SQSClient({}) }, settingsFromEnv(process.env)),
);
