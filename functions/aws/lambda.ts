import middy from '@middy/core';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseLakeJob, type LakeJob } from '../../core/lake/queue.ts';

/** Shared plumbing of the Lambda entry points: logging, SQS batches, one handler per container. */

export type Log = (entry: { level: 'info' | 'warn' | 'error'; msg: string; [field: string]: unknown }) => void;

/** One JSON line per entry: CloudWatch Logs Insights parses the fields. */
export const jsonLog: Log = (entry) => {
  console.log(JSON.stringify(entry, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
};

export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * The handler pipeline: middy with nothing in it. Its early timeout is off
 * on purpose: it failed the invocation but left the running job going, and
 * Lambda freezes such a sandbox and thaws it for a later invocation, where
 * the job went on (a compaction could then commit files that orphan removal
 * had deleted meanwhile). Lambda's own timeout resets the sandbox. SQS
 * consumers stop starting jobs near the deadline instead (eachJob).
 */
export function lambda<E, R>(fn: (event: E, context: Context) => Promise<R>): (event: E, context: Context) => Promise<R> {
  return middy<E, R>({ timeoutEarlyInMillis: 0 }).handler(fn) as unknown as (event: E, context: Context) => Promise<R>;
}

/** eachJob starts no job with less than this left before the deadline: the rest are returned. */
export const EARLY_TIMEOUT_MS = 500;

/**
 * The module-level `handler`: built from the environment on the first
 * invocation and kept for the container's life (SDK clients, the catalog's
 * caches). Building lazily keeps module init to loading code, and lets
 * tests import the factories without any environment.
 */
export function perContainer<E, R>(build: () => (event: E, context: Context) => Promise<R>): (event: E, context: Context) => Promise<R> {
  let built: ((event: E, context: Context) => Promise<R>) | null = null;
  return (event, context) => (built ??= build())(event, context);
}

/** Make returned messages visible again after `seconds` (ChangeMessageVisibility). */
export type Release = (items: readonly { readonly record: SQSRecord; readonly seconds: number }[]) => Promise<void>;

/** A failed FIFO message's next try: 10 s, doubling per receive, at most 5 minutes. */
export function retryDelaySeconds(record: SQSRecord): number {
  const receives = Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1);
  return Math.min(300, 10 * 2 ** Math.min(receives - 1, 5));
}

/**
 * Run each SQS message's job; report the failed ones (ReportBatchItemFailures),
 * so only those come back. On a FIFO queue the first failure also returns
 * every later message of the batch, which keeps the group's order.
 *
 * Returned FIFO messages hold their whole group until their visibility
 * timeout runs out (6x the function's timeout: half an hour for the flush
 * queue), so with `release` they come back sooner: the failed one after
 * retryDelaySeconds, the ones never tried at once. A poison message then
 * reaches the DLQ within minutes instead of hours.
 */
export async function eachJob(
  event: SQSEvent,
  run: (job: LakeJob, record: SQSRecord) => Promise<unknown>,
  log: Log,
  options: { readonly release?: Release; readonly context?: Pick<Context, 'getRemainingTimeInMillis'> } = {},
): Promise<SQSBatchResponse> {
  const { release, context } = options;
  const failures: SQSBatchItemFailure[] = [];
  const returned: { record: SQSRecord; seconds: number }[] = [];
  // Near the deadline, return the jobs not started (partial batch failure) rather than start one
  // Lambda's timeout would cut short (it fails the whole batch, and every job runs again).
  const outOfTime = (): boolean => context?.getRemainingTimeInMillis !== undefined && context.getRemainingTimeInMillis() <= EARLY_TIMEOUT_MS;
  for (const record of event.Records) {
    const fifo = record.eventSourceARN.endsWith('.fifo');
    if ((fifo && failures.length > 0) || outOfTime()) {
      failures.push({ itemIdentifier: record.messageId });
      returned.push({ record, seconds: 0 });
      continue;
    }
    try {
      const job = parseLakeJob(record.body);
      const result = await run(job, record);
      log({ level: 'info', msg: 'job done', job, result, receiveCount: record.attributes.ApproximateReceiveCount });
    } catch (e) {
      // Malformed jobs fail too: after maxReceiveCount they land in the DLQ, where they can be read.
      log({ level: 'error', msg: 'job failed', messageId: record.messageId, body: record.body, error: errorText(e), receiveCount: record.attributes.ApproximateReceiveCount });
      failures.push({ itemIdentifier: record.messageId });
      if (fifo) returned.push({ record, seconds: retryDelaySeconds(record) });
    }
  }
  if (release !== undefined && returned.length > 0) {
    try {
      await release(returned);
    } catch (e) {
      // They still come back, after the queue's visibility timeout.
      log({ level: 'warn', msg: 'could not release returned messages', error: errorText(e) });
    }
  }
  return { batchItemFailures: failures };
}
