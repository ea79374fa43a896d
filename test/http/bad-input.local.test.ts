/**
 * Bad input at the HTTP edge of the local server: every refusal is a 4xx with
 * a stable code in the error envelope, carries a request id, and writes
 * nothing (the log head reported by /v1/admin/stats does not move).
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONTENT_TYPES,
  ErrorCodes,
  computeDeltaId,
  decodeError,
  encodeHlc,
  encodePushRequest,
  makeDelta,
  signHs256Token,
  type Columns,
  type Delta,
  type ErrorCode,
  type Op,
  type SyncRules,
  type WireError,
  type WireFormat,
} from '../../core/index.ts';
import { TEST_SECRET, startTestServer, tokenFor, type TestServer } from '../support/server.ts';

const RULES: SyncRules = {
  version: 1,
  buckets: [{ name: 'own-todos', tables: { todos: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } }],
};

const MAX_BODY = 4 * 1024 * 1024;
const FORMATS: readonly WireFormat[] = ['json', 'proto'];

let server: TestServer;
let adminToken: string;
let u1Token: string; // sub u1, client_id client-1
let u2Token: string; // sub u2, client_id client-2

// ---------- helpers ----------

let counter = 0;
/** A fresh, valid HLC (now, increasing counter) so no two deltas collide. */
function nextHlc(): bigint {
  counter = (counter + 1) % 60_000;
  return encodeHlc(Date.now(), counter);
}

let rowSeq = 0;
function freshRowId(prefix = 'r'): string {
  rowSeq += 1;
  return `${prefix}-${rowSeq}`;
}

function delta(over: Partial<Omit<Delta, 'deltaId'>> = {}): Delta {
  return makeDelta({
    table: 'todos',
    rowId: freshRowId(),
    op: 'insert',
    columns: { title: 'buy milk', done: false, owner: 'u1' },
    hlc: nextHlc(),
    clientId: 'client-1',
    ...over,
  });
}

function bytesBody(bytes: Uint8Array): BodyInit {
  return bytes as Uint8Array<ArrayBuffer>;
}

async function request(
  method: string,
  path: string,
  init: { token?: string | null; body?: BodyInit; contentType?: string | null; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined && init.token !== null) headers['authorization'] = `Bearer ${init.token}`;
  if (init.contentType !== undefined && init.contentType !== null) headers['content-type'] = init.contentType;
  return fetch(server.url + path, { method, headers, ...(init.body !== undefined ? { body: init.body } : {}) });
}

/** POST /v1/push with an encoded request (JSON or protobuf), as client-1 by default. */
function push(
  deltas: readonly Delta[],
  opts: { format?: WireFormat; token?: string | null; clientId?: string; schemaVersion?: number } = {},
): Promise<Response> {
  const format = opts.format ?? 'json';
  const body = encodePushRequest(format, {
    clientId: opts.clientId ?? 'client-1',
    schemaVersion: opts.schemaVersion ?? 1,
    deltas,
  });
  return request('POST', '/v1/push', {
    token: opts.token === undefined ? u1Token : opts.token,
    contentType: CONTENT_TYPES[format],
    body: bytesBody(body),
  });
}

/** POST /v1/push with a hand-written proto3-JSON body. */
function pushJson(body: unknown, token: string = u1Token): Promise<Response> {
  return request('POST', '/v1/push', {
    token,
    contentType: 'application/json',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function head(): Promise<string> {
  const res = await request('GET', '/v1/admin/stats', { token: adminToken });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { head: string };
  expect(typeof body.head).toBe('string');
  return body.head;
}

interface Want {
  readonly status: number;
  readonly code: ErrorCode;
  /** Defaults to -1 (no offending delta). */
  readonly deltaIndex?: number;
}

/** Checks status, envelope (in the given format), x-request-id; returns the decoded error. */
async function expectError(res: Response, want: Want, format: WireFormat = 'json'): Promise<WireError> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(res.status, `status for ${want.code}`).toBe(want.status);
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(ErrorCodes[want.code]).toBe(want.status); // the table and the wire agree
  expect(res.headers.get('content-type') ?? '').toContain(CONTENT_TYPES[format]);
  const requestId = res.headers.get('x-request-id');
  expect(requestId).toBeTruthy();

  let error: WireError | null;
  if (format === 'json') {
    const text = new TextDecoder().decode(bytes);
    const envelope = JSON.parse(text) as { error?: Record<string, unknown> };
    expect(Object.keys(envelope)).toEqual(['error']);
    expect(Object.keys(envelope.error ?? {}).sort()).toEqual(['code', 'deltaIndex', 'message', 'requestId']);
    error = decodeError('json', bytes);
  } else {
    error = decodeError('proto', bytes);
  }
  expect(error).not.toBeNull();
  const { code, message, requestId: envelopeRequestId, deltaIndex } = error as WireError;
  expect({ code, message, requestId: envelopeRequestId, deltaIndex }).toEqual({
    code: want.code,
    message: expect.any(String) as string,
    requestId,
    deltaIndex: want.deltaIndex ?? -1,
  });
  expect(error?.message).not.toBe('');
  return error as WireError;
}

/** Sends, checks the refusal, and checks that the log head did not move. */
async function refused(send: () => Promise<Response>, want: Want, format: WireFormat = 'json'): Promise<WireError> {
  const before = await head();
  const error = await expectError(await send(), want, format);
  expect(await head(), 'log head must not move on a refused request').toBe(before);
  return error;
}

async function expectRowMissing(rowId: string, token: string = u1Token): Promise<void> {
  const res = await request('GET', `/v1/rows/todos/${encodeURIComponent(rowId)}`, { token });
  await expectError(res, { status: 404, code: 'ROW_NOT_FOUND' });
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Hand-written proto3 JSON for one todos insert, with a correct delta id. */
function jsonDelta(columns: Columns, jsonColumns: unknown[], over: Record<string, unknown> = {}): Record<string, unknown> {
  const hlc = nextHlc();
  const rowId = freshRowId('j');
  const deltaId = computeDeltaId({ table: 'todos', rowId, op: 'insert', columns, hlc, clientId: 'client-1' });
  return {
    deltaId,
    table: 'todos',
    rowId,
    op: 'OP_INSERT',
    columns: jsonColumns,
    hlc: hlc.toString(),
    clientId: 'client-1',
    ...over,
  };
}

function jsonPush(deltas: unknown[]): Record<string, unknown> {
  return { clientId: 'client-1', schemaVersion: 1, deltas };
}

// ---------- setup ----------

beforeAll(async () => {
  server = await startTestServer({ rules: RULES });
  adminToken = await tokenFor('admin', 'admin-client', { role: 'admin' });
  u1Token = await tokenFor('u1', 'client-1');
  u2Token = await tokenFor('u2', 'client-2');

  // Seed one row per user; this also proves a valid push does move the head,
  // so "head unchanged" below means something.
  expect(await head()).toBe('0');
  const mine = await push([delta({ rowId: 'mine', columns: { title: 'mine', owner: 'u1' } })]);
  expect(mine.status).toBe(200);
  const theirs = await push([delta({ rowId: 'theirs', columns: { title: 'theirs', owner: 'u2' }, clientId: 'client-2' })], {
    clientId: 'client-2',
    token: u2Token,
  });
  expect(theirs.status).toBe(200);
  expect(await head()).toBe('2');
});

afterAll(async () => {
  await server?.close();
});

// ---------- tests ----------

describe('controls (the good path works, so the refusals below are meaningful)', () => {
  it.each(FORMATS)('a valid %s push is accepted and moves the head', async (format) => {
    const before = BigInt(await head());
    const d = delta();
    const res = await push([d], { format });
    expect(res.status).toBe(200);
    expect(BigInt(await head())).toBe(before + 1n);
    const row = await request('GET', `/v1/rows/todos/${d.rowId}`, { token: u1Token });
    expect(row.status).toBe(200);
  });

  it('a hand-written proto3 JSON push is accepted', async () => {
    const before = BigInt(await head());
    const body = jsonPush([
      jsonDelta({ title: 'hand', owner: 'u1' }, [
        { name: 'title', value: { stringValue: 'hand' } },
        { name: 'owner', value: { stringValue: 'u1' } },
      ]),
    ]);
    const res = await pushJson(body);
    expect(res.status).toBe(200);
    expect(BigInt(await head())).toBe(before + 1n);
  });

  it('exactly maxDeltasPerPush (1000) deltas are accepted', async () => {
    const before = BigInt(await head());
    const deltas = Array.from({ length: 1000 }, () => delta());
    const res = await push(deltas, { format: 'proto' });
    expect(res.status).toBe(200);
    expect(BigInt(await head())).toBe(before + 1000n);
  });

  it('a client-supplied x-request-id is echoed in the header and the envelope', async () => {
    const res = await request('GET', '/v1/nope', { token: u1Token, headers: { 'x-request-id': 'my-request-123' } });
    expect(res.headers.get('x-request-id')).toBe('my-request-123');
    const error = await expectError(res, { status: 404, code: 'NOT_FOUND' });
    expect(error.requestId).toBe('my-request-123');
  });
});

describe('malformed bodies', () => {
  const protoCases: [string, number[]][] = [
    ['truncated varint', [0xff, 0xff, 0xff, 0xff]],
    ['length prefix past the end', [0x0a, 0x10, 0x41]],
    ['wire type 7 (invalid)', [0x0f, 0x00]],
    ['delta submessage truncated', [0x1a, 0x05, 0x0a, 0x20, 0x41]],
  ];
  it('protobuf: invalid UTF-8 inside a string field -> 400 MALFORMED_BODY', async () => {
    const d = delta({ rowId: 'AAAA-utf8' });
    const bytes = encodePushRequest('proto', { clientId: 'client-1', schemaVersion: 1, deltas: [d] });
    const at = Buffer.from(bytes).indexOf(Buffer.from('AAAA-utf8'));
    expect(at).toBeGreaterThan(0);
    bytes[at] = 0xff;
    await refused(
      () => request('POST', '/v1/push', { token: u1Token, contentType: CONTENT_TYPES.proto, body: bytesBody(bytes) }),
      { status: 400, code: 'MALFORMED_BODY' },
      'proto',
    );
  });

  it.each(protoCases)('protobuf: %s -> 400 MALFORMED_BODY', async (_name, bytes) => {
    await refused(
      () => request('POST', '/v1/push', { token: u1Token, contentType: CONTENT_TYPES.proto, body: bytesBody(new Uint8Array(bytes)) }),
      { status: 400, code: 'MALFORMED_BODY' },
      'proto',
    );
  });

  const jsonCases: [string, string | Uint8Array][] = [
    ['cut-off JSON', '{"clientId": "client-1", "deltas": ['],
    ['not JSON at all', 'hello'],
    ['empty body', ''],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['deltas is not a list', '{"clientId":"client-1","schemaVersion":1,"deltas":5}'],
    ['hlc is not an integer', '{"clientId":"client-1","deltas":[{"hlc":"soon"}]}'],
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
  ];
  it.each(jsonCases)('JSON: %s -> 400 MALFORMED_BODY', async (_name, body) => {
    await refused(
      () =>
        request('POST', '/v1/push', {
          token: u1Token,
          contentType: 'application/json',
          body: typeof body === 'string' ? body : bytesBody(body),
        }),
      { status: 400, code: 'MALFORMED_BODY' },
    );
  });
});

describe('forward compatibility of the JSON mapping', () => {
  it('ignores unknown fields, so a newer client can talk to an older server', async () => {
    const res = await request('POST', '/v1/push', {
      token: u1Token,
      contentType: 'application/json',
      body: '{"clientId":"client-1","schemaVersion":1,"deltas":[],"bogus":true}',
    });
    expect(res.status).toBe(200);
  });

  it('an unknown op name leaves the op unset: 400 INVALID_REQUEST', async () => {
    await refused(
      () =>
        request('POST', '/v1/push', {
          token: u1Token,
          contentType: 'application/json',
          body: '{"clientId":"client-1","deltas":[{"op":"OP_UPSERT"}]}',
        }),
      { status: 400, code: 'INVALID_REQUEST', deltaIndex: 0 },
    );
  });
});

describe('content type', () => {
  const cases: [string, string | null][] = [
    ['text/plain', 'text/plain'],
    ['application/xml', 'application/xml'],
    ['application/jsonx', 'application/jsonx'],
    ['multipart/form-data', 'multipart/form-data; boundary=x'],
    ['no content-type at all', null],
  ];
  it.each(cases)('%s -> 415 UNSUPPORTED_CONTENT_TYPE', async (_name, contentType) => {
    const body = encodePushRequest('json', { clientId: 'client-1', schemaVersion: 1, deltas: [delta()] });
    await refused(() => request('POST', '/v1/push', { token: u1Token, contentType, body: bytesBody(body) }), {
      status: 415,
      code: 'UNSUPPORTED_CONTENT_TYPE',
    });
  });

  it('a charset parameter on application/json is fine', async () => {
    const body = encodePushRequest('json', { clientId: 'client-1', schemaVersion: 1, deltas: [delta()] });
    const res = await request('POST', '/v1/push', {
      token: u1Token,
      contentType: 'application/json; charset=utf-8',
      body: bytesBody(body),
    });
    expect(res.status).toBe(200);
  });
});

describe('size limits', () => {
  it('a body over 4 MiB with content-length -> 413 BODY_TOO_LARGE', async () => {
    const body = new Uint8Array(MAX_BODY + 1).fill(0x20);
    await refused(() => request('POST', '/v1/push', { token: u1Token, contentType: 'application/json', body: bytesBody(body) }), {
      status: 413,
      code: 'BODY_TOO_LARGE',
    });
  });

  it('a streamed (chunked, no content-length) body over 4 MiB -> 413 BODY_TOO_LARGE', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const total = 2 * MAX_BODY;
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) {
          controller.close();
          return;
        }
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    const init: RequestInit & { duplex: 'half' } = {
      method: 'POST',
      headers: { authorization: `Bearer ${u1Token}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    };
    await refused(() => fetch(`${server.url}/v1/push`, init), { status: 413, code: 'BODY_TOO_LARGE' });
  });

  it.each(FORMATS)('1001 deltas (%s) -> 413 TOO_MANY_DELTAS', async (format) => {
    const deltas = Array.from({ length: 1001 }, () => delta());
    await refused(() => push(deltas, { format }), { status: 413, code: 'TOO_MANY_DELTAS' }, format);
  });
});

describe.each(FORMATS)('delta validation (%s)', (format) => {
  const cases: [string, () => Delta[], Want][] = [
    ['unknown table', () => [delta({ table: 'nope' })], { status: 400, code: 'UNKNOWN_TABLE', deltaIndex: 0 }],
    [
      'unknown column',
      () => [delta({ columns: { title: 'x', owner: 'u1', colour: 'red' } })],
      { status: 400, code: 'UNKNOWN_COLUMN', deltaIndex: 0 },
    ],
    [
      'string into a boolean column',
      () => [delta({ columns: { done: 'yes', owner: 'u1' } })],
      { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 },
    ],
    [
      'integer into a string column',
      () => [delta({ columns: { title: 5n, owner: 'u1' } })],
      { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 },
    ],
    [
      'double into an integer column',
      () => [delta({ columns: { position: 1.5, owner: 'u1' } })],
      { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 },
    ],
    [
      'NaN into a number column',
      () => [delta({ columns: { score: Number.NaN, owner: 'u1' } })],
      { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 },
    ],
    [
      'JSON text that does not parse',
      () => [delta({ columns: { meta: { json: '{nope' }, owner: 'u1' } })],
      { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 },
    ],
    [
      'json into a string column',
      () => [delta({ columns: { title: { json: '"x"' }, owner: 'u1' } })],
      { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 },
    ],
    ['empty row id', () => [delta({ rowId: '' })], { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 }],
    ['row id too long', () => [delta({ rowId: 'x'.repeat(257) })], { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 }],
    ['hlc zero', () => [delta({ hlc: 0n })], { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 }],
    [
      'delete with columns',
      () => [delta({ op: 'delete', rowId: 'mine', columns: { title: 'x' } })],
      { status: 400, code: 'INVALID_REQUEST', deltaIndex: 0 },
    ],
    [
      'update with no columns',
      () => [delta({ op: 'update', rowId: 'mine', columns: {} })],
      { status: 400, code: 'INVALID_REQUEST', deltaIndex: 0 },
    ],
    [
      'delta id that does not match the content',
      () => [{ ...delta(), deltaId: '0'.repeat(32) }],
      { status: 400, code: 'DELTA_ID_MISMATCH', deltaIndex: 0 },
    ],
    [
      'content changed after the id was computed',
      () => {
        const d = delta();
        return [{ ...d, columns: { ...d.columns, title: 'changed' } }];
      },
      { status: 400, code: 'DELTA_ID_MISMATCH', deltaIndex: 0 },
    ],
    [
      'clock 10 minutes in the future',
      () => [delta({ hlc: encodeHlc(Date.now() + 10 * 60_000, 0) })],
      { status: 400, code: 'CLOCK_DRIFT', deltaIndex: 0 },
    ],
    [
      'clock at the far end of the 48-bit range',
      () => [delta({ hlc: encodeHlc(2 ** 48 - 1, 0xffff) })],
      { status: 400, code: 'CLOCK_DRIFT', deltaIndex: 0 },
    ],
    [
      'only the second delta has a foreign clientId',
      () => [delta(), delta({ clientId: 'client-2' })],
      { status: 403, code: 'CLIENT_ID_MISMATCH', deltaIndex: 1 },
    ],
  ];
  it.each(cases)('%s', async (_name, make, want) => {
    await refused(() => push(make(), { format }), want, format);
  });

  it('push clientId differs from the token client_id -> 403 CLIENT_ID_MISMATCH', async () => {
    // The deltas match the push clientId; only the token disagrees.
    const d = delta({ clientId: 'client-2', columns: { title: 'x', owner: 'u1' } });
    await refused(() => push([d], { format, clientId: 'client-2' }), { status: 403, code: 'CLIENT_ID_MISMATCH' }, format);
  });

  it('schema version newer than the server -> 409 SCHEMA_VERSION_MISMATCH', async () => {
    await refused(() => push([delta()], { format, schemaVersion: 2 }), { status: 409, code: 'SCHEMA_VERSION_MISMATCH' }, format);
  });

  it('a valid batch with one bad delta is refused whole, deltaIndex points at the bad one', async () => {
    const good = [delta(), delta(), delta()];
    const bad = delta({ columns: { title: 'x', owner: 'u1', colour: 'red' } });
    const batch = [good[0], good[1], bad, good[2]] as Delta[];
    await refused(() => push(batch, { format }), { status: 400, code: 'UNKNOWN_COLUMN', deltaIndex: 2 }, format);
    for (const d of good) await expectRowMissing(d.rowId);
  });

  it('a valid batch with a rule violation later on is refused whole', async () => {
    const good = delta();
    const bad = delta({ columns: { title: 'sneaky', owner: 'u2' } });
    await refused(() => push([good, bad], { format }), { status: 403, code: 'RULE_VIOLATION', deltaIndex: 1 }, format);
    await expectRowMissing(good.rowId);
    await expectRowMissing(bad.rowId, u2Token);
  });
});

describe('hand-written proto3 JSON', () => {
  it('an int64 (intValue) for a string column -> 400 INVALID_VALUE', async () => {
    const body = jsonPush([
      jsonDelta({ title: 5n, owner: 'u1' }, [
        { name: 'title', value: { intValue: '5' } },
        { name: 'owner', value: { stringValue: 'u1' } },
      ]),
    ]);
    await refused(() => pushJson(body), { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 });
  });

  it('a JSON number for an int64 column with a fraction -> 400 MALFORMED_BODY', async () => {
    const body = jsonPush([jsonDelta({ position: 1n }, [{ name: 'position', value: { intValue: 1.5 } }])]);
    await refused(() => pushJson(body), { status: 400, code: 'MALFORMED_BODY' });
  });

  it('a string for a boolean column -> 400 INVALID_VALUE', async () => {
    const body = jsonPush([
      jsonDelta({ done: 'true', owner: 'u1' }, [
        { name: 'done', value: { stringValue: 'true' } },
        { name: 'owner', value: { stringValue: 'u1' } },
      ]),
    ]);
    await refused(() => pushJson(body), { status: 400, code: 'INVALID_VALUE', deltaIndex: 0 });
  });

  it('a value with no kind -> 400 INVALID_VALUE at its delta', async () => {
    const good = jsonDelta({ title: 'ok', owner: 'u1' }, [
      { name: 'title', value: { stringValue: 'ok' } },
      { name: 'owner', value: { stringValue: 'u1' } },
    ]);
    const bad = jsonDelta({ title: null }, [{ name: 'title', value: {} }]);
    await refused(() => pushJson(jsonPush([good, bad])), { status: 400, code: 'INVALID_VALUE', deltaIndex: 1 });
  });

  it.each(['__proto__', 'constructor', 'id', '_ls_seq'])('column name %j -> 400 UNKNOWN_COLUMN', async (name) => {
    const body = jsonPush([
      jsonDelta({ owner: 'u1' }, [
        { name: 'owner', value: { stringValue: 'u1' } },
        { name, value: { stringValue: 'x' } },
      ]),
    ]);
    await refused(() => pushJson(body), { status: 400, code: 'UNKNOWN_COLUMN', deltaIndex: 0 });
  });

  it('a column given twice -> 400 INVALID_REQUEST', async () => {
    const body = jsonPush([
      jsonDelta({ title: 'a' }, [
        { name: 'title', value: { stringValue: 'a' } },
        { name: 'title', value: { stringValue: 'b' } },
      ]),
    ]);
    await refused(() => pushJson(body), { status: 400, code: 'INVALID_REQUEST', deltaIndex: 0 });
  });

  it('op missing (OP_UNSPECIFIED) -> 400 INVALID_REQUEST', async () => {
    const body = jsonPush([
      jsonDelta({ title: 'a', owner: 'u1' }, [{ name: 'title', value: { stringValue: 'a' } }], { op: 'OP_UNSPECIFIED' }),
    ]);
    await refused(() => pushJson(body), { status: 400, code: 'INVALID_REQUEST', deltaIndex: 0 });
  });

  it('an hlc far in the future -> 400 CLOCK_DRIFT', async () => {
    const hlc = encodeHlc(Date.now() + 24 * 3600_000, 0);
    const columns: Columns = { title: 'later', owner: 'u1' };
    const d = makeDelta({ table: 'todos', rowId: freshRowId(), op: 'insert' as Op, columns, hlc, clientId: 'client-1' });
    const body = jsonPush([
      {
        deltaId: d.deltaId,
        table: 'todos',
        rowId: d.rowId,
        op: 'OP_INSERT',
        columns: [
          { name: 'title', value: { stringValue: 'later' } },
          { name: 'owner', value: { stringValue: 'u1' } },
        ],
        hlc: hlc.toString(),
        clientId: 'client-1',
      },
    ]);
    await refused(() => pushJson(body), { status: 400, code: 'CLOCK_DRIFT', deltaIndex: 0 });
  });
});

describe('authentication', () => {
  const other = 'another-secret-that-is-also-at-least-32-bytes';
  const now = (): number => Math.floor(Date.now() / 1000);
  const secretKey = new TextEncoder().encode(TEST_SECRET);

  const cases: [string, () => Promise<string | null>, Want][] = [
    ['missing token', () => Promise.resolve(null), { status: 401, code: 'UNAUTHENTICATED' }],
    [
      'expired token',
      () =>
        new SignJWT({ client_id: 'client-1' })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject('u1')
          .setIssuedAt(now() - 7200)
          .setExpirationTime(now() - 3600)
          .sign(secretKey),
      { status: 401, code: 'TOKEN_EXPIRED' },
    ],
    [
      'tampered signature',
      async () => {
        const [h, p, s] = (await tokenFor('u1', 'client-1')).split('.') as [string, string, string];
        // Flip a character in the middle: the last one may only hold padding bits.
        const i = 10;
        const flipped = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
        return `${h}.${p}.${flipped}`;
      },
      { status: 401, code: 'TOKEN_INVALID' },
    ],
    [
      'tampered payload (sub changed, old signature)',
      async () => {
        const [h, , s] = (await tokenFor('u1', 'client-1')).split('.') as [string, string, string];
        return `${h}.${b64url({ sub: 'u2', client_id: 'client-1', exp: now() + 3600 })}.${s}`;
      },
      { status: 401, code: 'TOKEN_INVALID' },
    ],
    [
      'alg none',
      () =>
        Promise.resolve(
          `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'u1', client_id: 'client-1', exp: now() + 3600 })}.`,
        ),
      { status: 401, code: 'TOKEN_INVALID' },
    ],
    ['signed with another secret', () => signHs256Token(other, { sub: 'u1', clientId: 'client-1' }), { status: 401, code: 'TOKEN_INVALID' }],
    [
      'no exp claim',
      () => new SignJWT({ client_id: 'client-1' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').sign(secretKey),
      { status: 401, code: 'TOKEN_INVALID' },
    ],
    [
      'no client_id claim',
      () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime('1h').sign(secretKey),
      { status: 401, code: 'TOKEN_INVALID' },
    ],
    ['not a JWT', () => Promise.resolve('abc'), { status: 401, code: 'TOKEN_INVALID' }],
  ];

  it.each(cases)('push with %s', async (_name, makeToken, want) => {
    const token = await makeToken();
    await refused(() => push([delta()], { token }), want);
  });

  it.each(cases)('push (protobuf) with %s answers in protobuf', async (_name, makeToken, want) => {
    const token = await makeToken();
    await refused(() => push([delta()], { token, format: 'proto' }), want, 'proto');
  });

  const schemes: [string, string][] = [
    ['Basic scheme', `Basic ${Buffer.from('u1:pw').toString('base64')}`],
    ['token without scheme', 'eyJhbGciOiJIUzI1NiJ9.e30.sig'],
    ['Bearer with no token', 'Bearer '],
  ];
  it.each(schemes)('%s -> 401 UNAUTHENTICATED', async (_name, authorization) => {
    const body = encodePushRequest('json', { clientId: 'client-1', schemaVersion: 1, deltas: [delta()] });
    await refused(
      () =>
        request('POST', '/v1/push', { contentType: 'application/json', body: bytesBody(body), headers: { authorization } }),
      { status: 401, code: 'UNAUTHENTICATED' },
    );
  });

  const routes: [string, string][] = [
    ['GET', '/v1/schema'],
    ['GET', '/v1/pull'],
    ['GET', '/v1/rows/todos/mine'],
    ['GET', '/v1/admin/stats'],
  ];
  it.each(routes)('%s %s without a token -> 401 UNAUTHENTICATED', async (method, path) => {
    await refused(() => request(method, path), { status: 401, code: 'UNAUTHENTICATED' });
  });
});

describe('sync rules on push', () => {
  const cases: [string, () => Delta, Want][] = [
    [
      'u1 inserts a row owned by u2',
      () => delta({ columns: { title: 'for u2', owner: 'u2' } }),
      { status: 403, code: 'RULE_VIOLATION', deltaIndex: 0 },
    ],
    [
      'u1 inserts a row with no owner',
      () => delta({ columns: { title: 'nobody' } }),
      { status: 403, code: 'RULE_VIOLATION', deltaIndex: 0 },
    ],
    [
      "u1 updates u2's row",
      () => delta({ op: 'update', rowId: 'theirs', columns: { title: 'hijacked' } }),
      { status: 403, code: 'RULE_VIOLATION', deltaIndex: 0 },
    ],
    [
      'u1 gives its own row away to u2',
      () => delta({ op: 'update', rowId: 'mine', columns: { owner: 'u2' } }),
      { status: 403, code: 'RULE_VIOLATION', deltaIndex: 0 },
    ],
    [
      "u1 deletes u2's row",
      () => delta({ op: 'delete', rowId: 'theirs', columns: {} }),
      { status: 403, code: 'RULE_VIOLATION', deltaIndex: 0 },
    ],
  ];
  it.each(cases)('%s -> 403 RULE_VIOLATION', async (_name, make, want) => {
    await refused(() => push([make()]), want);
  });

  it('the refused writes left both seeded rows as they were', async () => {
    const mine = await request('GET', '/v1/rows/todos/mine', { token: u1Token });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { values: unknown }).values).toEqual({ title: 'mine', owner: 'u1' });
    const theirs = await request('GET', '/v1/rows/todos/theirs', { token: u2Token });
    expect(theirs.status).toBe(200);
    expect(((await theirs.json()) as { values: unknown }).values).toEqual({ title: 'theirs', owner: 'u2' });
  });
});

describe('reads', () => {
  it('a rule-excluded row answers exactly like a missing row (404 ROW_NOT_FOUND)', async () => {
    const excluded = await refused(() => request('GET', '/v1/rows/todos/theirs', { token: u1Token }), {
      status: 404,
      code: 'ROW_NOT_FOUND',
    });
    const missing = await refused(() => request('GET', '/v1/rows/todos/no-such-row', { token: u1Token }), {
      status: 404,
      code: 'ROW_NOT_FOUND',
    });
    expect(excluded.message.replace('theirs', '<id>')).toBe(missing.message.replace('no-such-row', '<id>'));
    // ...while its owner can read it.
    expect((await request('GET', '/v1/rows/todos/theirs', { token: u2Token })).status).toBe(200);
  });

  it('a row of an unknown table -> 400 UNKNOWN_TABLE', async () => {
    await refused(() => request('GET', '/v1/rows/nope/x', { token: u1Token }), { status: 400, code: 'UNKNOWN_TABLE' });
  });

  const cursors = ['abc', '-1', '1.5', '1e3', ' 1', '0x10', '12345678901234567890', '999999999'];
  it.each(cursors)('pull with cursor %j -> 400 INVALID_CURSOR', async (cursor) => {
    await refused(() => request('GET', `/v1/pull?cursor=${encodeURIComponent(cursor)}`, { token: u1Token }), {
      status: 400,
      code: 'INVALID_CURSOR',
    });
  });

  it.each(['abc', '-5', '1.5', '', '1e3', '0x10', ' 5'])('pull with limit %j -> 400 INVALID_REQUEST', async (limit) => {
    await refused(() => request('GET', `/v1/pull?limit=${encodeURIComponent(limit)}`, { token: u1Token }), {
      status: 400,
      code: 'INVALID_REQUEST',
    });
  });

  it('pull answers errors in protobuf when asked to', async () => {
    await refused(
      () => request('GET', '/v1/pull?cursor=abc', { token: u1Token, headers: { accept: CONTENT_TYPES.proto } }),
      { status: 400, code: 'INVALID_CURSOR' },
      'proto',
    );
  });
});

describe('admin and routing', () => {
  it.each([
    ['no role', {}],
    ['role user', { role: 'user' }],
    ['roles without admin', { roles: ['user', 'editor'] }],
  ] as [string, Record<string, unknown>][])('/v1/admin/stats with %s -> 403 FORBIDDEN', async (_name, extra) => {
    const token = await tokenFor('u1', 'client-1', extra);
    await refused(() => request('GET', '/v1/admin/stats', { token }), { status: 403, code: 'FORBIDDEN' });
  });

  it('roles array with admin may read stats', async () => {
    const token = await tokenFor('ops', 'ops-client', { roles: ['user', 'admin'] });
    expect((await request('GET', '/v1/admin/stats', { token })).status).toBe(200);
  });

  it.each([
    ['GET', '/v1/nope'],
    ['GET', '/'],
    ['POST', '/v1/dev/token'], // dev mode is off in tests
  ])('%s %s -> 404 NOT_FOUND', async (method, path) => {
    await refused(() => request(method, path, { token: u1Token }), { status: 404, code: 'NOT_FOUND' });
  });

  it.each([
    ['POST', '/v1/rows/todos/mine', 'GET'],
    ['DELETE', '/v1/admin/stats', 'GET'],
    ['GET', '/v1/push', 'POST'],
  ])('%s %s -> 405 METHOD_NOT_ALLOWED with allow: %s', async (method, path, allow) => {
    await refused(() => request(method, path, { token: u1Token }), { status: 405, code: 'METHOD_NOT_ALLOWED' });
    const again = await request(method, path, { token: u1Token });
    expect(again.headers.get('allow')).toBe(allow);
  });
});
