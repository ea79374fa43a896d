import { SendMessageBatchCommand, type SQSClient, type SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import { jobKey, type JobQueue, type LakeJob } from '../lake/queue.ts';

/**
 * JobQueue on one SQS queue. On a FIFO queue (URL ending in `.fifo`) every
 * job goes to one message group, so jobs run one at a time in order (the
 * flush queue), and equal jobs sent within the 5-minute window are
 * collapsed by their deduplication id (jobKey). On a standard queue jobs
 * may run concurrently and more than once; they are idempotent.
 */
export interface SqsJobQueueOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  /** FIFO message group; default 'lakesync'. */
  readonly messageGroupId?: string;
}

const BATCH = 10;

export class SqsJobQueue implements JobQueue {
  private readonly fifo: boolean;

  constructor(private readonly opts: SqsJobQueueOptions) {
    this.fifo = opts.queueUrl.endsWith('.fifo');
  }

  async send(jobs: readonly LakeJob[]): Promise<void> {
    for (let i = 0; i < jobs.length; i += BATCH) {
      const entries: SendMessageBatchRequestEntry[] = jobs.slice(i, i + BATCH).map((job, j) => ({
        Id: String(j),
        MessageBody: JSON.stringify(job),
        ...(this.fifo ? { MessageGroupId: this.opts.messageGroupId ?? 'lakesync', MessageDeduplicationId: jobKey(job) } : {}),
      }));
      const out = await this.opts.client.send(new SendMessageBatchCommand({ QueueUrl: this.opts.queueUrl, Entries: entries }));
      const failed = out.Failed ?? [];
      if (failed.length > 0) {
        // The caller's invocation fails and is retried; jobs sent twice are harmless.
        throw new Error(`SQS refused ${failed.length} job(s): ${failed.map((f) => `${f.Code ?? '?'} ${f.Message ?? ''}`).join('; ')}`);
      }
    }
  }
}
