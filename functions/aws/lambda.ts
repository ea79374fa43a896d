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
 * The handler pipeline: middy with nothing in it but its early-timeout
 * plugin (a function about to time out fails its invocation itself, so the
 * batch is retried rather than lost half-reported). Thin on purpose.
 */
export function lambda<E, R>(fn: (event: E, context: Context) => Promise<R>): (event: E, context: Context) => Promise<R> {
  return middy<E, R>({ timeoutEarlyInMillis: 500 }).handler(fn) as unknown as (event: E, context: Context) => Promise<R>;
}

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

/**
 * Run each SQS message's job; report the failed ones (ReportBatchItemFailures),
 * so only those come back. On a FIFO queue the first failure also returns
 * every later message of the batch, which keeps the group's order.
 */
export async function eachJob(
  event: SQSEvent,
  run: (job: LakeJob, record: SQSRecord) => Promise<unknown>,
  log: Log,
): Promise<SQSBatchResponse> {
  const failures: SQSBatchItemFailure[] = [];
  for (const record of event.Records) {
    const fifo = record.eventSourceARN.endsWith('.fifo');
    if (fifo && failures.length > 0) {
      failures.push({ itemIdentifier: record.messageId });
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
    }
  }
  return { batchItemFailures: failures };
}
