import { describe, expect, it } from 'vitest';
import { RestCatalog } from '../../core/lake/catalog/rest-catalog.ts';
import { stringifyJson } from '../../core/lake/json.ts';
import { pythonJson } from '../support/python.ts';

/**
 * Our SigV4 signatures for Glue's and S3 Tables' Iceberg endpoints, checked
 * against botocore's signer (an independent implementation AWS ships) on
 * the same requests: double-encoded %1F namespace paths, query strings with
 * ARNs, JSON bodies with 64-bit ids. No AWS is contacted.
 */
interface Captured {
  method: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  authorization: string;
}

const NOW = Date.UTC(2025, 0, 2, 3, 4, 5);

async function capture(service: 'glue' | 's3tables', uri: string, warehouse: string): Promise<Captured[]> {
  const seen: Captured[] = [];
  const table = {
    'metadata-location': 's3://b/t/metadata/1.json',
    metadata: {
      'format-version': 2,
      'table-uuid': 'u',
      location: 's3://b/t',
      'last-sequence-number': 0,
      'last-updated-ms': 0,
      'last-column-id': 0,
      'current-schema-id': 0,
      schemas: [{ type: 'struct', 'schema-id': 0, fields: [] }],
      'default-spec-id': 0,
      'partition-specs': [{ 'spec-id': 0, fields: [] }],
      'last-partition-id': 999,
      'default-sort-order-id': 0,
      'sort-orders': [{ 'order-id': 0, fields: [] }],
    },
  };
  const catalog = new RestCatalog({
    uri,
    warehouse,
    auth: {
      type: 'sigv4',
      region: 'us-east-1',
      service,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'tok/en+=' },
    },
    now: () => NOW,
    fetch: (input, init) => {
      const headers: Record<string, string> = {};
      new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
      const { authorization = '', 'x-amz-date': _d, 'x-amz-security-token': _t, ...unsigned } = headers;
      seen.push({ method: init?.method ?? 'GET', url: String(input), body: String(init?.body ?? ''), headers: unsigned, authorization });
      const path = new URL(String(input)).pathname;
      if (path.endsWith('/v1/config')) return Promise.resolve(new Response('{"overrides":{"prefix":"catalogs/123456789012:s3tablescatalog/b"}}'));
      if (path.endsWith('/tables')) return Promise.resolve(new Response('{"identifiers":[],"next-page-token":null}'));
      if (init?.method === 'DELETE') return Promise.resolve(new Response(null, { status: 204 }));
      return Promise.resolve(new Response(stringifyJson(table)));
    },
  });
  const ident = { namespace: ['lake', 'team a'], name: 'events' };
  await catalog.listTables(ident.namespace);
  await catalog.loadTable(ident);
  await catalog.commitTable(ident, [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': 9_223_372_036_854_775_000n }], [
    { action: 'set-properties', updates: { 'lakesync.note': 'ünïcode & spaces' } },
  ]);
  await catalog.dropTable(ident);
  return seen;
}

function botocoreSignatures(service: string, requests: Captured[]): string[] {
  return pythonJson<string[]>(
    `
import datetime, json, sys
import botocore.auth as auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
auth.get_current_datetime = lambda *a, **k: datetime.datetime(2025, 1, 2, 3, 4, 5)
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok/en+=")
out = []
for r in json.loads(sys.argv[2]):
    req = AWSRequest(method=r["method"], url=r["url"], data=r["body"].encode() or None, headers=r["headers"])
    auth.SigV4Auth(creds, sys.argv[1], "us-east-1").add_auth(req)
    out.append(req.headers["Authorization"])
print(json.dumps(out))
`,
    [service, JSON.stringify(requests)],
  );
}

describe('SigV4 signing matches botocore', () => {
  it('Glue', async () => {
    const seen = await capture('glue', 'https://glue.us-east-1.amazonaws.com/iceberg', '123456789012');
    expect(seen.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
      'GET /iceberg/v1/config',
      'GET /iceberg/v1/catalogs/123456789012:s3tablescatalog/b/namespaces/lake%1Fteam%20a/tables',
      'GET /iceberg/v1/catalogs/123456789012:s3tablescatalog/b/namespaces/lake%1Fteam%20a/tables/events',
      'POST /iceberg/v1/catalogs/123456789012:s3tablescatalog/b/namespaces/lake%1Fteam%20a/tables/events',
      'DELETE /iceberg/v1/catalogs/123456789012:s3tablescatalog/b/namespaces/lake%1Fteam%20a/tables/events',
    ]);
    expect(seen.map((r) => r.authorization)).toEqual(botocoreSignatures('glue', seen));
  });

  it('S3 Tables (an ARN as warehouse)', async () => {
    const seen = await capture('s3tables', 'https://s3tables.us-east-1.amazonaws.com/iceberg', 'arn:aws:s3tables:us-east-1:123456789012:bucket/lake-b');
    expect(seen[0]?.url).toContain('warehouse=arn%3Aaws%3As3tables%3Aus-east-1%3A123456789012%3Abucket%2Flake-b');
    expect(seen.map((r) => r.authorization)).toEqual(botocoreSignatures('s3tables', seen));
  });
});
