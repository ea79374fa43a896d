import type { DynamoDBRecord } from 'aws-lambda';
import { SegmentReader } from '../../core/codec/storage.ts';
import type { LiveChange } from '../../core/live/audience.ts';

/** A new log item of the buffer (the event source mappings filter too; this is the belt to their braces). */
export function isLogInsert(r: DynamoDBRecord): boolean {
  return r.eventName === 'INSERT' && r.dynamodb?.Keys?.['pk']?.S?.startsWith('L#') === true;
}

/**
 * The log entries of stream records of new log items (their NEW_IMAGE body,
 * `b`), for deciding whom they concern; null when one cannot be read (an
 * item without its body), so the caller can fall back to everyone.
 */
export function changesOf(records: readonly DynamoDBRecord[]): LiveChange[] | null {
  const out: LiveChange[] = [];
  for (const r of records) {
    if (!isLogInsert(r)) continue;
    const body = (r.dynamodb?.NewImage?.['b'] as { B?: string | Uint8Array } | undefined)?.B;
    if (body === undefined) return null;
    try {
      const reader = new SegmentReader(typeof body === 'string' ? Buffer.from(body, 'base64') : body);
      while (reader.index < reader.count) out.push(reader.next(0n));
    } catch {
      return null; // an encoding this function does not know: poke everyone rather than no one
    }
  }
  return out;
}
