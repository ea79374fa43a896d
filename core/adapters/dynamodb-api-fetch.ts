import { fromBase64, readJsonError, toBase64, type AwsError, type AwsFetch } from './aws-fetch.ts';
import type { DynamoDbApi } from './dynamodb-api.ts';

/**
 * The buffer's DynamoDB operations over fetch: the JSON protocol (POST,
 * X-Amz-Target: DynamoDB_20120810.<Op>), binary values as base64 both
 * ways, errors named as the SDK names them, the SDK's standard retries
 * (AwsFetch).
 */
export function fetchDynamoDbApi(aws: AwsFetch): DynamoDbApi {
  return {
    async call(op, input) {
      // As the SDK does: a transaction carries an idempotency token, kept across
      // retries, so a retry after a lost answer succeeds instead of conflicting.
      const request = op === 'TransactWriteItems' && !('ClientRequestToken' in input) ? { ...input, ClientRequestToken: crypto.randomUUID() } : input;
      const body = JSON.stringify(request, toWire);
      const res = await aws.send(
        (url) => ({ method: 'POST', url, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${op}` }, body }),
        readError,
      );
      return JSON.parse(await res.text(), fromWire) as never;
    },
  };
}

/** Binary attribute values (B, and BS sets) go as base64. `this[k]` is the value before any toJSON (a Buffer has one). */
function toWire(this: Record<string, unknown>, k: string, v: unknown): unknown {
  const raw = this[k];
  return raw instanceof Uint8Array ? toBase64(raw) : v;
}

/** Only an AttributeValue has a string `B` or a string array `BS` (an attribute *named* B holds an object). */
function fromWire(k: string, v: unknown): unknown {
  if (k === 'B' && typeof v === 'string') return fromBase64(v);
  if (k === 'BS' && Array.isArray(v)) return v.map((s) => (typeof s === 'string' ? fromBase64(s) : s));
  return v;
}

/** DynamoDB's JSON errors, binary members decoded. */
function readError(res: Response, text: string): AwsError {
  return readJsonError(res, text, fromWire);
}
