import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLakeError, type LakeErrorCode } from '../errors.ts';
import { stringifyJson } from '../json.ts';
import { RestCatalog, type RestCatalogOptions } from './rest-catalog.ts';

/**
 * The error branches of the REST client, against a stub fetch. The happy
 * paths run against Iceberg's real REST server in test/lake/rest-catalog.test.ts.
 */
interface Seen {
  readonly method: string;
  readonly url: URL;
  readonly headers: Headers;
  readonly body: string | undefined;
}

type Reply = Response | Error | 'hang';
type Handler = (req: Seen) => Reply | Promise<Reply>;

const json = (status: number, body: unknown): Response =>
  new Response(stringifyJson(body), { status, headers: { 'content-type': 'application/json' } });
const error = (status: number, type: string, message: string): Response =>
  json(status, { error: { message, type, code: status } });

const METADATA = {
  'format-version': 2,
  'table-uuid': '9c12d441-03fe-4693-9a96-a0705ddf69c1',
  location: 's3://bucket/lake/t',
  'last-sequence-number': 1,
  'last-updated-ms': 1_700_000_000_000,
  'last-column-id': 1,
  'current-schema-id': 0,
  schemas: [{ type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'id', required: true, type: 'string' }] }],
  'default-spec-id': 0,
  'partition-specs': [{ 'spec-id': 0, fields: [] }],
  'last-partition-id': 999,
  'default-sort-order-id': 0,
  'sort-orders': [{ 'order-id': 0, fields: [] }],
  properties: {},
  'current-snapshot-id': 9_007_199_254_740_993_123n,
  snapshots: [
    {
      'snapshot-id': 9_007_199_254_740_993_123n,
      'sequence-number': 1,
      'timestamp-ms': 1_700_000_000_000,
      'manifest-list': 's3://bucket/lake/t/metadata/snap.avro',
      summary: { operation: 'append' },
    },
  ],
  'snapshot-log': [],
  'metadata-log': [],
  refs: { main: { 'snapshot-id': 9_007_199_254_740_993_123n, type: 'branch' } },
};
const TABLE = { 'metadata-location': 's3://bucket/lake/t/metadata/00001.metadata.json', metadata: METADATA };
const IDENT = { namespace: ['lake'], name: 't' };

/** A catalog on a stub fetch: /v1/config answers {} unless the handler says otherwise. */
function stub(handler: Handler, options: Partial<RestCatalogOptions> = {}) {
  const seen: Seen[] = [];
  const sleeps: number[] = [];
  const fetchStub = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req: Seen = {
      method: init?.method ?? 'GET',
      url: new URL(String(input)),
      headers: new Headers(init?.headers),
      body: typeof init?.body === 'string' ? init.body : undefined,
    };
    seen.push(req);
    const reply = await handler(req);
    if (reply === 'hang') {
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error));
      });
    }
    if (reply instanceof Error) throw reply;
    return reply;
  };
  const catalog = new RestCatalog({
    uri: 'https://catalog.example/api/',
    fetch: fetchStub as typeof fetch,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    ...options,
  });
  const requests = (): string[] => seen.map((r) => `${r.method} ${r.url.pathname}${r.url.search}`);
  return { catalog, seen, sleeps, requests };
}

/** Config first, then `rest` for everything else. */
const withConfig =
  (rest: Handler, config: unknown = {}): Handler =>
  (req) =>
    req.url.pathname.endsWith('/v1/config') ? json(200, config) : rest(req);

async function failure(p: Promise<unknown>): Promise<{ code: LakeErrorCode | undefined; message: string }> {
  try {
    await p;
  } catch (e) {
    return { code: isLakeError(e) ? e.code : undefined, message: String(e) };
  }
  throw new Error('expected a failure');
}

const commit = (c: RestCatalog) =>
  c.commitTable(IDENT, [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': null }], [
    { action: 'set-properties', updates: { a: 'b' } },
  ]);

describe('config and paths', () => {
  it('merges defaults < client properties < overrides and routes through the prefix', async () => {
    const { catalog, requests } = stub(
      withConfig(() => json(200, { namespaces: [['lake']] }), {
        defaults: { prefix: 'ignored', a: 'default', b: 'default' },
        overrides: { prefix: 'catalogs/123', c: 'override' },
      }),
      { warehouse: 'acct_bucket', properties: { b: 'client', c: 'client' } },
    );
    expect(await catalog.listNamespaces()).toEqual([['lake']]);
    expect(await catalog.properties()).toEqual({ prefix: 'catalogs/123', a: 'default', b: 'client', c: 'override' });
    expect(requests()).toEqual(['GET /api/v1/config?warehouse=acct_bucket', 'GET /api/v1/catalogs/123/namespaces']);
  });

  it('encodes multi-level namespaces with %1F and escapes names', async () => {
    const { catalog, requests } = stub(withConfig(() => json(200, TABLE)));
    await catalog.loadTable({ namespace: ['org', 'team a'], name: 't/1' });
    expect(requests()[1]).toBe('GET /api/v1/namespaces/org%1Fteam%20a/tables/t%2F1');
  });

  it('honours a namespace-separator from the server', async () => {
    const { catalog, requests } = stub(withConfig(() => json(200, TABLE), { overrides: { 'namespace-separator': '%2E' } }));
    await catalog.loadTable({ namespace: ['a', 'b'], name: 't' });
    expect(requests()[1]).toBe('GET /api/v1/namespaces/a%2Eb/tables/t');
  });

  it('follows pagination tokens', async () => {
    const { catalog, requests } = stub(
      withConfig((req) =>
        req.url.searchParams.get('pageToken') === 'p2'
          ? json(200, { identifiers: [{ namespace: ['lake'], name: 'b' }], 'next-page-token': null })
          : json(200, { identifiers: [{ namespace: ['lake'], name: 'a' }], 'next-page-token': 'p2' }),
      ),
    );
    expect(await catalog.listTables(['lake'])).toEqual([
      { namespace: ['lake'], name: 'a' },
      { namespace: ['lake'], name: 'b' },
    ]);
    expect(requests().slice(1)).toEqual(['GET /api/v1/namespaces/lake/tables', 'GET /api/v1/namespaces/lake/tables?pageToken=p2']);
  });

  it('parses 64-bit ids exactly and sends them as JSON numbers', async () => {
    const { catalog, seen } = stub(withConfig(() => json(200, TABLE)));
    const t = await catalog.loadTable(IDENT);
    expect(t?.metadata['current-snapshot-id']).toBe(9_007_199_254_740_993_123n);
    expect(t?.metadata['format-version']).toBe(2);
    await catalog.commitTable(IDENT, [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': 9_007_199_254_740_993_123n }], []);
    expect(seen[2]?.body).toContain('"snapshot-id":9007199254740993123');
    expect(seen[2]?.body).toContain('"identifier":{"namespace":["lake"],"name":"t"}');
  });

  it('retries /v1/config after a failure instead of caching it', async () => {
    let calls = 0;
    const { catalog } = stub((req) => {
      if (req.url.pathname.endsWith('/v1/config')) return ++calls === 1 ? error(400, 'BadRequest', 'nope') : json(200, {});
      return json(200, { namespaces: [] });
    });
    expect((await failure(catalog.listNamespaces())).code).toBe('CATALOG_ERROR');
    expect(await catalog.listNamespaces()).toEqual([]);
  });
});

describe('commit failures', () => {
  for (const status of [500, 502, 503, 504]) {
    it(`${status} → COMMIT_STATE_UNKNOWN, not retried`, async () => {
      const { catalog, requests } = stub(withConfig(() => error(status, 'ServerError', 'boom')));
      const f = await failure(commit(catalog));
      expect(f.code).toBe('COMMIT_STATE_UNKNOWN');
      expect(f.message).toContain('boom');
      expect(requests()).toHaveLength(2);
    });
  }

  it('a network error → COMMIT_STATE_UNKNOWN', async () => {
    const { catalog } = stub(withConfig(() => new TypeError('fetch failed', { cause: new Error('ECONNRESET') })));
    const f = await failure(commit(catalog));
    expect(f.code).toBe('COMMIT_STATE_UNKNOWN');
    expect(f.message).toContain('ECONNRESET');
  });

  it('a timeout → COMMIT_STATE_UNKNOWN', async () => {
    const { catalog, requests } = stub(withConfig(() => 'hang'), { timeoutMs: 30 });
    const f = await failure(commit(catalog));
    expect(f.code).toBe('COMMIT_STATE_UNKNOWN');
    expect(f.message).toContain('timed out after 30 ms');
    expect(requests()).toHaveLength(2);
  });

  it('a 2xx it cannot read → COMMIT_STATE_UNKNOWN', async () => {
    const { catalog } = stub(withConfig(() => new Response('<html>ok</html>', { status: 200 })));
    expect((await failure(commit(catalog))).code).toBe('COMMIT_STATE_UNKNOWN');
  });

  it('409 → COMMIT_CONFLICT, 404 → NOT_FOUND, 400 → CATALOG_ERROR with the message', async () => {
    const conflict = stub(withConfig(() => error(409, 'CommitFailedException', 'branch main has changed')));
    expect(await failure(commit(conflict.catalog))).toMatchObject({ code: 'COMMIT_CONFLICT' });
    const missing = stub(withConfig(() => error(404, 'NoSuchTableException', 'no table')));
    expect((await failure(commit(missing.catalog))).code).toBe('NOT_FOUND');
    const bad = stub(withConfig(() => error(400, 'ValidationException', 'bad update')));
    const f = await failure(commit(bad.catalog));
    expect(f.code).toBe('CATALOG_ERROR');
    expect(f.message).toContain('400 ValidationException: bad update');
  });

  it('a failing credentials provider is a plain CATALOG_ERROR: nothing was sent', async () => {
    const { catalog, requests } = stub(withConfig(() => json(200, TABLE)), {
      auth: { type: 'bearer', token: () => Promise.reject(new Error('vault down')) },
    });
    const f = await failure(commit(catalog));
    expect(f.code).toBe('CATALOG_ERROR');
    expect(f.message).toContain('vault down');
    expect(requests()).toEqual([]);
  });
});

describe('reads and writes', () => {
  it('reads retry 5xx, 429, network errors and timeouts with growing backoff', async () => {
    const replies: Reply[] = [error(503, 'Unavailable', 'x'), json(429, {}), new TypeError('fetch failed'), json(200, TABLE)];
    const { catalog, sleeps, requests } = stub(withConfig(() => replies.shift() ?? 'hang'), { retryBaseDelayMs: 100 });
    const t = await catalog.loadTable(IDENT);
    expect(t?.metadataLocation).toBe(TABLE['metadata-location']);
    expect(requests()).toHaveLength(5);
    expect(sleeps).toHaveLength(3);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
    expect(sleeps[2]).toBeGreaterThanOrEqual(200);
    expect(sleeps[2]).toBeLessThanOrEqual(400);
  });

  it('a throttled commit (429, not acted on) is sent again after Retry-After, not reported as a failure', async () => {
    const throttled = new Response('{"error":{"message":"slow down","type":"TooManyRequests","code":429}}', { status: 429, headers: { 'retry-after': '2' } });
    const replies: Reply[] = [throttled, json(200, { 'metadata-location': TABLE['metadata-location'], metadata: TABLE.metadata })];
    const { catalog, sleeps, requests } = stub(withConfig(() => replies.shift() ?? 'hang'));
    await commit(catalog);
    expect(sleeps).toEqual([2000]);
    expect(requests().filter((r) => r.startsWith('POST'))).toHaveLength(2);
  });

  it('a Retry-After that is neither whole seconds nor an HTTP date is ignored: the retry backs off, not at once', async () => {
    for (const header of ['1.5', '-1', '0x10', 'soon 3']) {
      const throttled = new Response('{}', { status: 429, headers: { 'retry-after': header } });
      const replies: Reply[] = [throttled, json(200, { 'metadata-location': TABLE['metadata-location'], metadata: TABLE.metadata })];
      const { catalog, sleeps } = stub(withConfig(() => replies.shift() ?? 'hang'));
      await commit(catalog);
      expect({ header, sleeps: sleeps.map((ms) => ms >= 100) }).toEqual({ header, sleeps: [true] });
    }
  });

  it('reads give up after readRetries with CATALOG_ERROR', async () => {
    const { catalog, requests } = stub(withConfig(() => 'hang'), { readRetries: 2, timeoutMs: 10 });
    const f = await failure(catalog.loadTable(IDENT));
    expect(f.code).toBe('CATALOG_ERROR');
    expect(requests()).toHaveLength(4);
  });

  it('404 on load is null', async () => {
    const { catalog } = stub(withConfig(() => error(404, 'NoSuchTableException', 'gone')));
    expect(await catalog.loadTable(IDENT)).toBeNull();
  });

  it('create: 409 → ALREADY_EXISTS, 5xx not retried; createNamespace swallows 409', async () => {
    const exists = stub(withConfig(() => error(409, 'AlreadyExistsException', 'exists')));
    const req = { schema: METADATA.schemas[0], spec: { 'spec-id': 0, fields: [] }, location: 's3://x' } as never;
    expect((await failure(exists.catalog.createTable(IDENT, req))).code).toBe('ALREADY_EXISTS');
    await exists.catalog.createNamespace(['lake']);
    const down = stub(withConfig(() => error(500, 'ServerError', 'x')));
    expect((await failure(down.catalog.createTable(IDENT, req))).code).toBe('CATALOG_ERROR');
    expect(down.requests()).toHaveLength(2);
  });

  it('create sends format-version 2, and the location only when asked', async () => {
    const req = { schema: METADATA.schemas[0], spec: { 'spec-id': 0, fields: [] }, location: 's3://x/t' } as never;
    const plain = stub(withConfig(() => json(200, TABLE)));
    await plain.catalog.createTable(IDENT, req);
    const body = JSON.parse(plain.seen[1]?.body ?? '{}') as Record<string, unknown>;
    expect(body).toMatchObject({ name: 't', 'stage-create': false, properties: { 'format-version': '2' } });
    expect(body['location']).toBeUndefined();
    const located = stub(withConfig(() => json(200, TABLE)), { sendLocation: true });
    await located.catalog.createTable(IDENT, req);
    expect(JSON.parse(located.seen[1]?.body ?? '{}')).toMatchObject({ location: 's3://x/t' });
  });

  it('drop never purges; a missing table is NOT_FOUND', async () => {
    const ok = stub(withConfig(() => new Response(null, { status: 204 })));
    await ok.catalog.dropTable(IDENT);
    expect(ok.requests()[1]).toBe('DELETE /api/v1/namespaces/lake/tables/t?purgeRequested=false');
    const missing = stub(withConfig(() => error(404, 'NoSuchTableException', 'gone')));
    expect((await failure(missing.catalog.dropTable(IDENT))).code).toBe('NOT_FOUND');
  });

  it('rejects tables that are not format v2', async () => {
    const { catalog } = stub(withConfig(() => json(200, { ...TABLE, metadata: { ...METADATA, 'format-version': 1 } })));
    expect((await failure(catalog.loadTable(IDENT))).code).toBe('CORRUPT_METADATA');
  });
});

describe('auth', () => {
  it('none: no Authorization header', async () => {
    const { catalog, seen } = stub(withConfig(() => json(200, { namespaces: [] })));
    await catalog.listNamespaces();
    expect(seen.every((r) => !r.headers.has('authorization'))).toBe(true);
    expect(seen[1]?.headers.get('accept')).toBe('application/json');
  });

  it('bearer: a fixed token, or a function asked per request and again after a 401', async () => {
    const fixed = stub(withConfig(() => json(200, { namespaces: [] })), { auth: { type: 'bearer', token: 't0k' } });
    await fixed.catalog.listNamespaces();
    expect(fixed.seen.map((r) => r.headers.get('authorization'))).toEqual(['Bearer t0k', 'Bearer t0k']);

    let n = 0;
    const rotating = stub(
      withConfig((req) => (req.headers.get('authorization') === 'Bearer token-2' ? json(401, {}) : json(200, { namespaces: [] }))),
      { auth: { type: 'bearer', token: () => Promise.resolve(`token-${++n}`) } },
    );
    await rotating.catalog.listNamespaces();
    expect(rotating.seen.map((r) => r.headers.get('authorization'))).toEqual(['Bearer token-1', 'Bearer token-2', 'Bearer token-3']);
  });

  it('a second 401 is an error, not a loop', async () => {
    const { catalog, requests } = stub(withConfig(() => error(401, 'NotAuthorizedException', 'who?')), {
      auth: { type: 'bearer', token: () => Promise.resolve('x') },
    });
    const f = await failure(commit(catalog));
    expect(f.code).toBe('CATALOG_ERROR');
    expect(f.message).toContain('401 NotAuthorizedException: who?');
    expect(requests()).toHaveLength(3);
  });

  it('oauth2 client credentials: one token request, cached until near expiry, refreshed after a 401', async () => {
    let clock = 1_000_000;
    let issued = 0;
    const tokenBodies: string[] = [];
    const { catalog, requests, seen } = stub(
      (req) => {
        if (req.url.pathname === '/auth/token') {
          tokenBodies.push(req.body ?? '');
          return json(200, { access_token: `tok-${++issued}`, token_type: 'bearer', expires_in: 3600 });
        }
        if (req.url.pathname.endsWith('/v1/config')) return json(200, {});
        if (req.url.pathname.endsWith('/tables/t') && req.headers.get('authorization') === 'Bearer tok-2') return json(401, {});
        return json(200, { namespaces: [] });
      },
      {
        auth: {
          type: 'oauth2-client-credentials',
          clientId: 'id',
          clientSecret: 's e/c',
          scope: 'PRINCIPAL_ROLE:ALL',
          tokenEndpoint: 'https://catalog.example/auth/token',
        },
        now: () => clock,
      },
    );
    await catalog.listNamespaces();
    await catalog.listNamespaces();
    expect(issued).toBe(1);
    expect(Object.fromEntries(new URLSearchParams(tokenBodies[0]))).toEqual({
      grant_type: 'client_credentials',
      client_id: 'id',
      client_secret: 's e/c',
      scope: 'PRINCIPAL_ROLE:ALL',
    });
    expect(seen[0]?.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    clock += 3_541_000; // within the last minute: refresh
    await catalog.listNamespaces();
    expect(issued).toBe(2);
    // tok-2 is refused on the table: one refresh, one retry.
    await commit(catalog).catch(() => undefined);
    expect(issued).toBe(3);
    expect(requests().filter((r) => r.endsWith('/tables/t'))).toHaveLength(2);
  });

  it('oauth2 token endpoint errors are CATALOG_ERROR and not cached', async () => {
    let fail = true;
    const { catalog } = stub(
      (req) => {
        if (req.url.pathname.endsWith('/oauth/tokens')) {
          return fail ? json(401, { error: 'invalid_client', error_description: 'bad secret' }) : json(200, { access_token: 'ok' });
        }
        return json(200, { namespaces: [] });
      },
      { auth: { type: 'oauth2-client-credentials', clientId: 'id', clientSecret: 'x' } },
    );
    const f = await failure(catalog.listNamespaces());
    expect(f.code).toBe('CATALOG_ERROR');
    expect(f.message).toContain('invalid_client: bad secret');
    fail = false;
    expect(await catalog.listNamespaces()).toEqual([]);
  });

  it('sigv4: signs every request for the service and region, with the body hash', async () => {
    const { catalog, seen } = stub(withConfig(() => json(200, TABLE)), {
      uri: 'https://glue.us-east-1.amazonaws.com/iceberg',
      warehouse: '123456789012',
      auth: {
        type: 'sigv4',
        region: 'us-east-1',
        service: 'glue',
        credentials: () => Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session' }),
      },
      now: () => Date.UTC(2025, 0, 2, 3, 4, 5),
    });
    await commit(catalog);
    expect(seen).toHaveLength(2);
    for (const r of seen) {
      const auth = r.headers.get('authorization') ?? '';
      expect(auth).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20250102\/us-east-1\/glue\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
      );
      const signed = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [];
      expect(signed).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token', 'accept']));
      expect(r.headers.get('x-amz-date')).toBe('20250102T030405Z');
      expect(r.headers.get('x-amz-security-token')).toBe('session');
      // fetch sets Host itself (to the signed value).
      expect(r.headers.has('host')).toBe(false);
      expect(r.headers.get('x-amz-content-sha256')).toBe(createHash('sha256').update(r.body ?? '').digest('hex'));
    }
    expect(seen[1]?.headers.get('authorization')).toMatch(/SignedHeaders=accept;content-type;host;/);
  });

  it('sigv4 for S3 Tables signs as s3tables', async () => {
    const { catalog, seen } = stub(withConfig(() => json(200, { namespaces: [] })), {
      uri: 'https://s3tables.eu-west-1.amazonaws.com/iceberg',
      auth: { type: 'sigv4', region: 'eu-west-1', service: 's3tables', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } },
    });
    await catalog.listNamespaces();
    expect(seen[1]?.headers.get('authorization')).toContain('/eu-west-1/s3tables/aws4_request');
    expect(seen[1]?.headers.has('x-amz-security-token')).toBe(false);
  });
});
