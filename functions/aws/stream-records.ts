import type { DynamoDBRecord } from 'aws-lambda';

/** A new log item of the buffer (the event source mappings filter too; this is the belt to their braces). */
export function isLogInsert(r: DynamoDBRecord): boolean {
  return r.eventName === 'INSERT' && r.dynamodb?.Keys?.['pk']?.S?.startsWith('L#') === true;
}
