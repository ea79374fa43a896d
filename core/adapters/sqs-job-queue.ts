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

/** SQS takes at most 128 characters: a longer key (a checkpoint cursor of many shards) keeps its head and a hash of the whole. */
const MAX_DEDUP_ID = 128;

export function dedupId(key: string): string {
  if (key.length <= MAX_DEDUP_ID) return key;
  // FNV-1a, 64 bits: a collision would collapse two different jobs sent within 5 minutes.
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < key.length; i++) h = ((h ^ BigInt(key.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  const tail = `~${h.toString(16).padStart(16, '0')}`;
  return key.slice(0, MAX_DEDUP_ID - tail.length) + tail;
}

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
        ...(this.fifo ? { MessageGroupId: this.opts.messageGroupId ?? 'lakesync', MessageDeduplicationId: dedupId(jobKey(job)) } : {}),
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
