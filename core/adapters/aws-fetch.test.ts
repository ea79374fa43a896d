import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LakeError } from '../lake/errors.ts';
import { AwsFetch, signRequest, type AwsCredentials, type AwsRequest } from './aws-fetch.ts';
import { S3FetchReader } from './aws-fetch-s3.ts';
import { fetchDynamoDbApi } from './dynamodb-api-fetch.ts';

/**
 * The fetch clients without AWS: signatures equal to the SDK's own signer
 * (@smithy/signature-v4) on random requests, and the protocol, error and
 * retry behaviour against a scripted server. (Against moto over real HTTP:
 * test/lake/dynamodb-buffer.test.ts and test/aws/functions.test.ts.)
 */

/** The SDK's Checksum interface over node:crypto (what @smithy/hash-node does). */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key = secret === undefined || typeof secret === 'string' ? secret : ArrayBuffer.isView(secret) ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength) : new Uint8Array(secret);
    this.h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
}

describe('SigV4 signing', () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9 _.~!*'()%:@&=+$,;-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
  const word = fc.stringMatching(/^[A-Za-z0-9 _.~!*'()/:@=+$,;-]{0,10}$/);
  const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,10}$/).filter((h) => !h.startsWith('x-amz-') && h !== 'x-amzn-trace-id');

  it("signs AWS's documented example request (IAM ListUsers) to its documented signature", () => {
    const req: AwsRequest = {
      method: 'GET',
      url: new URL('https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08'),
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    };
    signRequest(req, 'iam', 'us-east-1', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }, new Date('2015-08-30T12:36:00Z'));
    expect(req.headers['authorization']).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    );
  });

  it('equals the SDK signer on random requests (DynamoDB and S3 paths, queries, headers, session tokens)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          service: fc.constantFrom('dynamodb', 's3', 'glue'),
          method: fc.constantFrom('GET', 'POST', 'PUT', 'HEAD'),
          segments: fc.array(segment, { maxLength: 4 }),
          query: fc.array(fc.tuple(fc.stringMatching(/^[a-zA-Z0-9_ -]{1,6}$/), word), { maxLength: 3 }),
          headers: fc.dictionary(headerName, fc.stringMatching(/^[ -~]{0,20}$/), { maxKeys: 3 }),
          body: fc.string({ maxLength: 40 }),
          token: fc.option(fc.stringMatching(/^[A-Za-z0-9/+=]{10,40}$/), { nil: undefined }),
          port: fc.constantFrom(undefined, 8443),
          time: fc.integer({ min: 1_500_000_000_000, max: 2_000_000_000_000 }),
        }),
        async (c) => {
          const path = `/${c.segments.map((s) => encodeURIComponent(s)).join('/')}`;
          const url = new URL(`https://svc.example.com${c.port === undefined ? '' : `:${c.port}`}${path}`);
          for (const [k, v] of c.query) if (!url.searchParams.has(k)) url.searchParams.append(k, v);
          const creds: AwsCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: c.token };
          const headers: Record<string, string> = { ...c.headers, 'content-type': 'application/x-amz-json-1.0' };
          if (c.service === 's3') headers['x-amz-content-sha256'] = createHash('sha256').update(c.body).digest('hex');
          const mine: AwsRequest = { method: c.method, url, headers: { ...headers }, body: c.body };
          const now = new Date(c.time);
          signRequest(mine, c.service, 'eu-west-1', creds, now);
          const identity = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(c.token === undefined ? {} : { sessionToken: c.token }) };
          const sdk = new SignatureV4({ service: c.service, region: 'eu-west-1', credentials: identity, sha256: Sha256, uriEscapePath: c.service !== 's3', applyChecksum: false });
          const query: Record<string, string> = {};
          for (const [k, v] of url.searchParams) query[k] = v;
          const signed = await sdk.sign(
            { method: c.method, protocol: 'https:', hostname: url.hostname, ...(c.port === undefined ? {} : { port: c.port }), path: url.pathname, query, headers: { ...headers, host: url.host }, body: c.body },
            { signingDate: now },
          );
          expect(mine.headers['authorization']).toBe(signed.headers['authorization']);
          expect(mine.headers['x-amz-date']).toBe(signed.headers['x-amz-date']);
          expect(mine.headers['x-amz-security-token']).toBe(signed.headers['x-amz-security-token']);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** A server answering from a script: each request gets the next answer. */
interface Scripted {
  readonly endpoint: string;
  readonly seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  script(...answers: ((res: ServerResponse) => void)[]): void;
}

let server: Server;
let scripted: Scripted;

beforeAll(async () => {
  const answers: ((res: ServerResponse) => void)[] = [];
  const seen: Scripted['seen'] = [];
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const next = answers.shift();
      if (next === undefined) {
        res.writeHead(500).end('unscripted');
        return;
      }
      next(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  scripted = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    script: (...a) => {
      answers.length = 0;
      seen.length = 0;
      answers.push(...a);
    },
  };
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => (res: ServerResponse) =>
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...headers }).end(JSON.stringify(body));
const creds = { accessKeyId: 'AKID', secretAccessKey: 'secret' };
const dynamo = (maxAttempts = 3) => fetchDynamoDbApi(new AwsFetch({ service: 'dynamodb', region: 'us-east-1', credentials: creds, endpoint: scripted.endpoint, maxAttempts }));

describe('default endpoints', () => {
  it('use the partition of the region: amazonaws.com, and amazonaws.com.cn in China', async () => {
    const urls: string[] = [];
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      urls.push(String(input));
      return new Response('{}', { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' } });
    });
    try {
      for (const region of ['eu-west-1', 'cn-north-1']) {
        await fetchDynamoDbApi(new AwsFetch({ service: 'dynamodb', region, credentials: creds })).call('GetItem', { TableName: 't', Key: { pk: { S: 'x' } } });
      }
    } finally {
      spy.mockRestore();
    }
    expect(urls.map((u) => new URL(u).host)).toEqual(['dynamodb.eu-west-1.amazonaws.com', 'dynamodb.cn-north-1.amazonaws.com.cn']);
  });
});

describe('DynamoDB over fetch', () => {
  it('speaks the JSON protocol: target header, binary values as base64 both ways', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    scripted.script(json(200, { Item: { b: { B: Buffer.from(bytes).toString('base64') }, s: { L: [{ BS: ['AAE='] }, { M: { B: { S: 'named B' } } }] } } }));
    const out = await dynamo().call('GetItem', { TableName: 't', Key: { pk: { S: 'x' }, sk: { B: bytes } } });
    const req = scripted.seen[0];
    expect(req?.method).toBe('POST');
    expect(req?.headers['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
    expect(req?.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(req?.headers['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/dynamodb\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/);
    expect(JSON.parse(req?.body ?? '')).toEqual({ TableName: 't', Key: { pk: { S: 'x' }, sk: { B: 'AAEC+v8=' } } });
    expect(out.Item?.['b']?.B).toEqual(bytes);
    expect(out.Item?.['s']?.L?.[0]?.BS).toEqual([new Uint8Array([0, 1])]);
    expect(out.Item?.['s']?.L?.[1]?.M).toEqual({ B: { S: 'named B' } });
  });

  it('names errors as the SDK does, with their modeled members; a failed condition is not retried', async () => {
    scripted.script(
      json(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        Message: 'Transaction cancelled',
        CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: { v: { B: 'AQ==' } } }],
      }),
    );
    const err = (await dynamo().call('TransactWriteItems', { TransactItems: [] }).catch((e: unknown) => e)) as Record<string, unknown>;
    expect(err['name']).toBe('TransactionCanceledException');
    expect(err['message']).toBe('Transaction cancelled');
    expect(err['$fault']).toBe('client');
    expect(err['CancellationReasons']).toEqual([{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: { v: { B: new Uint8Array([1]) } } }]);
    expect(scripted.seen).toHaveLength(1);
    scripted.script(json(400, { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' }));
    await expect(dynamo().call('PutItem', { TableName: 't', Item: {} })).rejects.toMatchObject({ name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400, attempts: 1 } });
  });

  it('retries throttling, 5xx and network errors up to maxAttempts', async () => {
    const throttled = json(400, { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' });
    const broken = (res: ServerResponse) => res.socket?.destroy(); // no answer at all
    scripted.script(throttled, json(500, { __type: 'com.amazon.coral.service#InternalServerError' }), json(200, { Item: { n: { N: '1' } } }));
    expect(await dynamo().call('GetItem', { TableName: 't', Key: {} })).toEqual({ Item: { n: { N: '1' } } });
    expect(scripted.seen).toHaveLength(3);
    scripted.script(broken, json(200, {}));
    expect(await dynamo().call('GetItem', { TableName: 't', Key: {} })).toEqual({});
    expect(scripted.seen).toHaveLength(2);
    scripted.script(throttled, throttled, throttled);
    await expect(dynamo(2).call('GetItem', { TableName: 't', Key: {} })).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException', $metadata: { attempts: 2 } });
    expect(scripted.seen).toHaveLength(2);
  });

  it('gives a transaction an idempotency token, the same on every retry, as the SDK does', async () => {
    scripted.script(json(500, { __type: 'com.amazon.coral.service#InternalServerError' }), json(200, {}));
    await dynamo().call('TransactWriteItems', { TransactItems: [] });
    const tokens = scripted.seen.map((r) => (JSON.parse(r.body) as { ClientRequestToken?: string }).ClientRequestToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(tokens[1]).toBe(tokens[0]);
    scripted.script(json(200, {}));
    await dynamo().call('TransactWriteItems', { TransactItems: [], ClientRequestToken: 'mine' });
    expect(JSON.parse(scripted.seen[0]?.body ?? '')).toMatchObject({ ClientRequestToken: 'mine' });
  });

  it('corrects its clock from a skew error and signs the retry with the server time', async () => {
    const server = new Date(Date.now() + 3_600_000);
    scripted.script(
      json(400, { __type: 'com.amazon.coral.service#InvalidSignatureException', message: 'Signature expired' }, { date: server.toUTCString() }),
      json(200, {}),
    );
    await dynamo().call('GetItem', { TableName: 't', Key: {} });
    const stamp = (i: number): number => {
      const d = String(scripted.seen[i]?.headers['x-amz-date']);
      return Date.parse(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
    };
    expect(Math.abs(stamp(0) - Date.now())).toBeLessThan(60_000);
    expect(Math.abs(stamp(1) - server.getTime())).toBeLessThan(60_000);
  });

  it('reports a missing credential variable at the first request, not at construction', async () => {
    const { awsFetchOptionsFromEnv } = await import('./aws-fetch.ts');
    const aws = new AwsFetch(Promise.resolve().then(() => awsFetchOptionsFromEnv({ AWS_REGION: 'us-east-1' }, 'dynamodb')));
    await expect(fetchDynamoDbApi(aws).call('GetItem', { TableName: 't', Key: {} })).rejects.toThrow('AWS_ACCESS_KEY_ID is not set');
  });
});

describe('S3 reads over fetch', () => {
  const reader = () => new S3FetchReader(new AwsFetch({ service: 's3', region: 'us-east-1', credentials: creds, endpoint: scripted.endpoint, maxAttempts: 2 }));

  it('GETs path-style on an endpoint override, with the payload hash header; keys are escaped once', async () => {
    scripted.script((res) => res.writeHead(200, { 'content-length': '3' }).end(Buffer.from([7, 8, 9])));
    expect(await reader().get('s3://bkt/a dir/x+y=1.pb')).toEqual(new Uint8Array([7, 8, 9]));
    expect(scripted.seen[0]?.url).toBe('/bkt/a%20dir/x%2By%3D1.pb');
    expect(scripted.seen[0]?.headers['x-amz-content-sha256']).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('a missing key is NOT_FOUND on get and null on head; other errors are STORE_ERROR; 503 SlowDown is retried', async () => {
    const xml = (status: number, code: string) => (res: ServerResponse) =>
      res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>m</Message></Error>`);
    scripted.script(xml(404, 'NoSuchKey'));
    const missing = await reader().get('s3://bkt/k').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(LakeError);
    expect((missing as LakeError).code).toBe('NOT_FOUND');
    scripted.script((res) => res.writeHead(404).end());
    expect(await reader().head('s3://bkt/k')).toBeNull();
    scripted.script((res) => res.writeHead(200, { 'content-length': '12', 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end());
    expect(await reader().head('s3://bkt/k')).toEqual({ uri: 's3://bkt/k', size: 12, lastModified: Date.parse('2015-10-21T07:28:00Z') });
    scripted.script(xml(403, 'AccessDenied'));
    await expect(reader().get('s3://bkt/k')).rejects.toMatchObject({ code: 'STORE_ERROR' });
    scripted.script(xml(503, 'SlowDown'), (res) => res.writeHead(200).end('ok'));
    expect(new TextDecoder().decode(await reader().get('s3://bkt/k'))).toBe('ok');
  });

  it('only reads', async () => {
    await expect(reader().put('s3://bkt/k', new Uint8Array())).rejects.toMatchObject({ code: 'STORE_ERROR' });
    await expect(reader().delete(['s3://bkt/k'])).rejects.toMatchObject({ code: 'STORE_ERROR' });
  });
});
