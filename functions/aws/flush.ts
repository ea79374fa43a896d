import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GlueClient } from '@aws-sdk/client-glue';
import { S3Client } from '@aws-sdk/client-s3';
import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { settingsFromEnv, type AwsSettings } from './env.ts';
import { guarded } from './buffer.ts';
import { openAwsLake, type LakeClients, type LakeOverrides } from './lake.ts';
import { eachJob, jsonLog, lambda, perContainer, type Log, type Release } from './lambda.ts';

/**
 * The flush queue (SQS FIFO, one message group: one flush at a time) ->
 * buffer -> Parquet -> S3 -> Glue, then a checkpoint job on the jobs queue
 * when one is due. A flush is idempotent (the lake's watermark), so a
 * retried, duplicated or late flush job only flushes what is not yet in the
 * lake; one killed half-way is finished by the next.
 */
export type FlushHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export function createFlushHandler(clients: LakeClients, settings: AwsSettings, overrides: LakeOverrides & { log?: Log } = {}): FlushHandler {
  const { runner, guard } = openAwsLake(clients, settings, overrides);
  const log = overrides.log ?? jsonLog;
  return lambda(
    guarded(guard, (event: SQSEvent, context: Context) => {
      // A flush takes everything up to the head it reads first, and every request of the batch was
      // sent before that: one flush serves the whole batch. Running each again only repeats the
      // follow-ups (a checkpoint job per request, each building from every state table).
      let flushed = false;
      return eachJob(
        event,
        // Anything else that lands here runs too: the runner knows every kind.
        async (job) => {
          if (job.kind === 'flush' && flushed) return { kind: 'flush', servedByEarlierInBatch: true };
          const result = await runner.run(job);
          if (job.kind === 'flush') flushed = true;
          return result;
        },
        log,
        { release: releaser(clients.sqs, settings), context },
      );
    }),
  );
}

/**
 * Returned flush messages come back after a short backoff, not after the
 * queue's half-hour visibility timeout: until then they hold the one message
 * group, and with it every flush (the schedule's ticks included).
 */
function releaser(sqs: SQSClient, settings: Pick<AwsSettings, 'flushQueueUrl'>): Release {
  return async (items) => {
    for (let i = 0; i < items.length; i += 10) {
      const batch = items.slice(i, i + 10);
      const out = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: settings.flushQueueUrl,
          Entries: batch.map(({ record, seconds }, j) => ({ Id: String(j), ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds })),
        }),
      );
      if ((out.Failed ?? []).length > 0) throw new Error(`SQS kept ${out.Failed?.length} message(s) invisible: ${out.Failed?.map((f) => f.Code).join(', ')}`);
    }
  };
}

export const handler: FlushHandler = perContainer(() =>
  createFlushHandler({ dynamodb: new DynamoDBClient({}), s3: new S3Client({}), glue: new GlueClient({}), sqs: new SQSClient({}) }, settingsFromEnv(process.env)),
);
