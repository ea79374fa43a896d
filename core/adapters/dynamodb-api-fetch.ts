import { AwsError, fromBase64, toBase64, type AwsFetch } from './aws-fetch.ts';
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

/** `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"..."}`, plus modeled members. */
function readError(res: Response, text: string): AwsError {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text, fromWire) as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page): the status names it.
  }
  const { __type, message, Message, ...fields } = body;
  const type = typeof __type === 'string' ? __type : (res.headers.get('x-amzn-errortype') ?? '');
  const name = type.split('#').pop()?.split(':')[0] || `Http${res.status}`;
  const msg = typeof message === 'string' ? message : typeof Message === 'string' ? Message : text.slice(0, 200) || name;
  return new AwsError(name, msg, res.status, res.headers.get('x-amzn-requestid') ?? undefined, fields);
}
