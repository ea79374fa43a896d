import { Buffer } from 'node:buffer';
import { createHash, createHmac } from 'node:crypto';

/**
 * AWS requests over fetch, signed with Signature Version 4 and retried the
 * way the SDK's "standard" retry mode does. The http function uses this
 * instead of the SDK's clients: loading those costs 140-190 ms of every
 * cold start, this a few KB and nothing at import. The signer is checked
 * against the SDK's own (@smithy/signature-v4) in aws-fetch.test.ts.
 */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface AwsFetchOptions {
  /** The signing name and endpoint prefix: 'dynamodb', 's3'. */
  readonly service: string;
  readonly region: string;
  /** Fixed, or asked for before each request (an SDK credential provider caches and refreshes). */
  readonly credentials: AwsCredentials | (() => Promise<AwsCredentials>);
  /** An endpoint override (emulators), e.g. http://127.0.0.1:5000; default the service's regional endpoint. */
  readonly endpoint?: string | undefined;
  /** Attempts per request, as the SDK's maxAttempts. Default 3. */
  readonly maxAttempts?: number | undefined;
}

/** A service's error answer, shaped like the SDK's exceptions so callers' checks of `name` keep working. */
export class AwsError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { httpStatusCode: number; requestId?: string | undefined; attempts?: number };
  constructor(name: string, message: string, status: number, requestId: string | undefined, fields: object = {}) {
    super(message);
    this.name = name;
    this.$fault = status >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: status, requestId };
    Object.assign(this, fields);
  }
}

export interface AwsRequest {
  readonly method: string;
  readonly url: URL;
  /** Lower-case names; all are signed. */
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/** Reads a failed answer's error (its body already read as text). */
export type ErrorReader = (res: Response, body: string) => AwsError;

/**
 * The error of an AWS JSON-protocol service (DynamoDB, Secrets Manager):
 * `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"..."}`,
 * plus any modeled members (parsed with `reviver`), kept on the error as the SDK does.
 */
export function readJsonError(res: Response, text: string, reviver?: (key: string, value: unknown) => unknown): AwsError {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text, reviver) as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page): the status names it.
  }
  const { __type, message, Message, ...fields } = body;
  const type = typeof __type === 'string' ? __type : (res.headers.get('x-amzn-errortype') ?? '');
  const name = type.split('#').pop()?.split(':')[0] || `Http${res.status}`;
  const msg = typeof message === 'string' ? message : typeof Message === 'string' ? Message : text.slice(0, 200) || name;
  return new AwsError(name, msg, res.status, res.headers.get('x-amzn-requestid') ?? undefined, fields);
}

/** The SDK's throttling error codes (@smithy/service-error-classification). */
const THROTTLING = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const TRANSIENT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const CLOCK_SKEW = new Set(['AuthFailure', 'InvalidSignatureException', 'RequestExpired', 'RequestInTheFuture', 'RequestTimeTooSkewed', 'SignatureDoesNotMatch']);
/** The SDK's retry quota: 500 tokens, 5 per retry (10 after a network error), refunded by successes. */
const QUOTA = 500;

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
/** RFC 3986 escaping, as SigV4 wants it. */
export const escapeUri = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Sign `req` in place (adds x-amz-date, the session token and
 * authorization). S3 paths are signed as sent, other services' escaped
 * once more, as the SDK does.
 */
export function signRequest(req: AwsRequest, service: string, region: string, creds: AwsCredentials, now: Date, keys?: Map<string, Buffer>): void {
  const h = req.headers;
  const stamp = now.toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = stamp.slice(0, 8);
  h['x-amz-date'] = stamp;
  if (creds.sessionToken) h['x-amz-security-token'] = creds.sessionToken;
  const payload = h['x-amz-content-sha256'] ?? sha256(req.body ?? '');
  const all: [string, string][] = [['host', req.url.host]];
  for (const k in h) all.push([k, h[k] as string]);
  all.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const names = all.map((e) => e[0]).join(';');
  const path = service === 's3' ? req.url.pathname : escapeUri(req.url.pathname).replace(/%2F/g, '/');
  const query = [...req.url.searchParams]
    .map(([k, v]): [string, string] => [escapeUri(k), escapeUri(v)])
    .sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonical = [req.method, path, query, ...all.map(([k, v]) => `${k}:${v.trim().replace(/\s+/g, ' ')}`), '', names, payload].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const id = `${day}/${region}/${service}/${creds.secretAccessKey}`;
  let key = keys?.get(id);
  if (key === undefined) {
    key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), region), service), 'aws4_request');
    keys?.clear();
    keys?.set(id, key);
  }
  const signature = hmac(key, `AWS4-HMAC-SHA256\n${stamp}\n${scope}\n${sha256(canonical)}`).toString('hex');
  h['authorization'] = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One service's requests: signing, endpoint, retries with backoff (and a retry quota), clock skew correction. */
export class AwsFetch {
  private readonly options: Promise<AwsFetchOptions>;
  private quota = QUOTA;
  /** Server time minus ours, learnt from a clock skew error. */
  private skew = 0;
  private readonly keys = new Map<string, Buffer>();

  /** Options may come later (an SDK client's resolve asynchronously): requests wait for them. */
  constructor(options: AwsFetchOptions | Promise<AwsFetchOptions>) {
    this.options = Promise.resolve(options);
    this.options.catch(() => undefined); // reported by the first request, not as an unhandled rejection
  }

  /**
   * The answer when it is a success (2xx); else the error `read` makes of
   * it, after the retries it deserves. `req` builds the request (again for
   * each attempt) for the endpoint: the override, or
   * https://<service>.<region>.amazonaws.com (`.com.cn` in China; `custom` false).
   */
  async send(req: (endpoint: URL, custom: boolean, region: string) => AwsRequest, read: ErrorReader): Promise<Response> {
    const o = await this.options;
    const endpoint = new URL(o.endpoint ?? `https://${o.service}.${o.region}.${awsDnsSuffix(o.region)}`);
    const attempts = Math.max(1, o.maxAttempts ?? 3);
    let cost = 0;
    for (let attempt = 1; ; attempt++) {
      const r = req(endpoint, o.endpoint !== undefined, o.region);
      const c = o.credentials;
      signRequest(r, o.service, o.region, typeof c === 'function' ? await c() : c, new Date(Date.now() + this.skew), this.keys);
      let err: unknown;
      let base = 100;
      let price = 5;
      try {
        const res = await fetch(r.url, { method: r.method, headers: r.headers, ...(r.body === undefined ? {} : { body: r.body }) });
        if (res.ok) {
          this.quota = Math.min(QUOTA, this.quota + (cost || 1));
          return res;
        }
        const e = read(res, await res.text());
        e.$metadata.attempts = attempt;
        err = e;
        const status = res.status;
        const date = Date.parse(res.headers.get('date') ?? '');
        const skewed = CLOCK_SKEW.has(e.name) && Math.abs(date - Date.now() - this.skew) > 300_000;
        if (skewed) this.skew = date - Date.now();
        if (THROTTLING.has(e.name) || status === 429) base = 500;
        else if (!skewed && !TRANSIENT.has(e.name) && ![500, 502, 503, 504].includes(status)) throw e;
      } catch (e) {
        if (e === err) throw e;
        // fetch rejects only when no answer came: a network error, retried like the SDK's timeouts.
        err = e;
        price = 10;
      }
      if (attempt >= attempts || this.quota < price) throw err;
      this.quota -= cost = price;
      await sleep(Math.floor(Math.min(20_000, Math.random() * 2 ** (attempt - 1) * base)));
    }
  }
}

/** Base64 (JSON protocols carry binary that way). */
export const toBase64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
export function fromBase64(s: string): Uint8Array {
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** What AwsFetch needs of the Lambda environment (or of any process configured like the SDK). */
export function awsFetchOptionsFromEnv(env: Readonly<Record<string, string | undefined>>, service: string): AwsFetchOptions {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  const attempts = Number(env['AWS_MAX_ATTEMPTS']);
  return {
    service,
    region: env['AWS_REGION'] || need('AWS_DEFAULT_REGION'),
    credentials: { accessKeyId: need('AWS_ACCESS_KEY_ID'), secretAccessKey: need('AWS_SECRET_ACCESS_KEY'), sessionToken: env['AWS_SESSION_TOKEN'] },
    // The SDK's per-service variable first (AWS_ENDPOINT_URL_DYNAMODB), then the global one.
    endpoint: env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`] || env['AWS_ENDPOINT_URL'] || undefined,
    maxAttempts: attempts > 0 ? attempts : undefined,
  };
}

/** The settings of an SDK v3 client (region, credentials, endpoint, maxAttempts), for a fetch client of the same service. */
export interface SdkClientLike {
  readonly config: {
    region: () => Promise<string>;
    credentials: () => Promise<AwsCredentials>;
    endpoint?: () => Promise<{ protocol: string; hostname: string; port?: number; path: string }>;
    maxAttempts: () => Promise<number>;
  };
}

export async function awsFetchOptionsOf(client: SdkClientLike, service: string): Promise<AwsFetchOptions> {
  const c = client.config;
  const e = await c.endpoint?.();
  return {
    service,
    region: await c.region(),
    credentials: () => c.credentials(),
    endpoint: e === undefined ? undefined : `${e.protocol}//${e.hostname}${e.port === undefined ? '' : `:${e.port}`}${e.path}`,
    maxAttempts: await c.maxAttempts(),
  };
}

/** The DNS suffix of a region's partition: the China regions (cn-*) have their own. */
export function awsDnsSuffix(region: string): string {
  return region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
}
