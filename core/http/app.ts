import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono/tiny';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import type { Authenticator, Principal } from '../auth/principal.ts';
import type { Gateway } from '../engine/gateway.ts';
import type { CheckpointService } from '../engine/checkpoints.ts';
import { LakeSyncError } from '../errors.ts';
import {
  CONTENT_TYPES,
  decodePushRequest,
  encodeCheckpointInfo,
  encodeError,
  encodePullResponse,
  encodePushResponse,
  wireErrorOf,
  type WireFormat,
} from '../protocol/codec.ts';
import { schemaToJson } from '../protocol/json.ts';
import { RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { CachingAuthenticator } from './token-cache.ts';

export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface HttpAppOptions {
  readonly gateway: Gateway;
  readonly auth: Authenticator;
  /** Structured log sink; defaults to nothing. */
  readonly log?: (entry: LogEntry) => void;
  /** Dev mode only: lets POST /v1/dev/token mint tokens. Never set in production. */
  readonly devTokens?: (input: { sub: string; clientId: string; admin: boolean }) => Promise<string>;
  /** Allowed browser origin(s) for CORS; any origin when omitted. */
  readonly corsOrigin?: string | string[];
  /** Per-client token bucket; off when omitted. */
  readonly rateLimit?: RateLimitOptions;
  /** Reuse verified tokens (see token-cache.ts); on unless false. */
  readonly tokenCache?: boolean;
  /** Checkpoints for initial sync (GET /v1/checkpoint...); without a lake, /v1/checkpoint answers NO_CHECKPOINT. */
  readonly checkpoints?: CheckpointService;
  /** Admin: flush the buffer to the lake now (POST /v1/admin/flush). */
  readonly flushNow?: () => Promise<unknown>;
}

type Env = { Variables: { requestId: string; format: WireFormat } };

/**
 * Refuse bodies over `maxBytes` before reading them. With a Content-Length
 * the header decides and the body is left untouched: hono's bodyLimit reads
 * `req.raw.body` first, which on @hono/node-server turns the request into a
 * web stream and costs about 2 ms per 150 KB push (measured; see
 * BENCHMARKS.md). A chunked body has no length up front: hono's bodyLimit
 * then counts it as it streams.
 */
function limitBody(maxBytes: number): MiddlewareHandler<Env> {
  const onError = (c: Context<Env>): never => {
    // The rest of the body is never read: the connection cannot carry another request.
    c.header('connection', 'close');
    throw new LakeSyncError('BODY_TOO_LARGE', `body exceeds ${maxBytes} bytes`);
  };
  const streaming = bodyLimit({ maxSize: maxBytes, onError });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxBytes) onError(c);
      await next();
      return;
    }
    await streaming(c, next);
  };
}

/** Response format: what the client accepts, else what it sent, else JSON. */
function responseFormat(c: Context): WireFormat {
  // Media types compare case-insensitively.
  const accept = (c.req.header('accept') ?? '').toLowerCase();
  if (accept.includes(CONTENT_TYPES.proto)) return 'proto';
  if (accept.includes(CONTENT_TYPES.json)) return 'json';
  return (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase() === CONTENT_TYPES.proto ? 'proto' : 'json';
}

function requestFormat(c: Context): WireFormat {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === CONTENT_TYPES.proto) return 'proto';
  if (type === CONTENT_TYPES.json) return 'json';
  throw new LakeSyncError('UNSUPPORTED_CONTENT_TYPE', `send ${CONTENT_TYPES.proto} or ${CONTENT_TYPES.json}`);
}

function reply(c: Context, format: WireFormat, body: Uint8Array, status = 200): Response {
  return c.body(body as Uint8Array<ArrayBuffer>, status as 200, { 'content-type': CONTENT_TYPES[format] });
}

const ROUTINE_CODES = new Set(['NO_CHECKPOINT', 'CURSOR_EXPIRED']);

/** bigints as strings, so reports can go out as JSON. */
function toJsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown;
}

/**
 * The /v1 HTTP API on Web-standard Request/Response (hono). Each runtime
 * mounts this same app: Node server, Lambda (API Gateway), Worker.
 */
export function createHttpApp(options: HttpAppOptions): Hono<Env> {
  const { gateway } = options;
  const auth = options.tokenCache === false ? options.auth : new CachingAuthenticator(options.auth);
  const log = options.log ?? (() => {});
  const app = new Hono<Env>();

  app.use('*', requestId({ headerName: 'x-request-id' }));
  // Browsers call the API cross-origin with a bearer token (no cookies), so any origin may.
  app.use(
    '/v1/*',
    cors({
      origin: options.corsOrigin ?? '*',
      allowHeaders: ['authorization', 'content-type', 'accept', 'x-request-id'],
      allowMethods: ['GET', 'POST', 'OPTIONS'],
      exposeHeaders: ['x-request-id', 'retry-after', 'x-lakesync-schema-version'],
      maxAge: 600,
    }),
  );
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'cross-origin' }));
  app.use('*', async (c, next) => {
    // Paths are exact (docs/protocol.md): the router would also match them with a trailing slash.
    if (c.req.path.length > 1 && c.req.path.endsWith('/')) throw new LakeSyncError('NOT_FOUND', 'no such route');
    c.header('cache-control', 'no-store');
    // Lets clients notice a newer server schema (added tables/columns) and migrate.
    c.header('x-lakesync-schema-version', String(gateway.registry.version));
    await next();
  });

  const limiter = options.rateLimit !== undefined ? new RateLimiter(options.rateLimit) : null;

  /** Authenticate, then charge the client's rate-limit bucket. */
  async function principal(c: Context): Promise<Principal> {
    const who = await auth.authenticate(c.req.header('authorization') ?? null);
    const decision = limiter?.take(who.clientId);
    if (decision !== undefined && !decision.allowed) {
      c.header('retry-after', String(decision.retryAfterSeconds));
      throw new LakeSyncError('RATE_LIMITED', `too many requests; retry in ${decision.retryAfterSeconds} s`);
    }
    return who;
  }

  app.get('/v1/health', (c) => c.json({ status: 'ok' }));

  app.get('/v1/schema', async (c) => {
    await principal(c);
    return c.json(schemaToJson(gateway.schema));
  });

  app.post(
    '/v1/push',
    limitBody(gateway.limits.maxBodyBytes),
    async (c) => {
      const who = await principal(c);
      const format = requestFormat(c);
      const body = new Uint8Array(await c.req.arrayBuffer());
      const input = decodePushRequest(format, body, gateway.limits.maxDeltasPerPush);
      const result = await gateway.push(who, input);
      log({ level: 'info', msg: 'push', clientId: who.clientId, accepted: result.accepted, duplicates: result.duplicates });
      const out = responseFormat(c);
      return reply(c, out, encodePushResponse(out, result));
    },
  );

  app.get('/v1/pull', async (c) => {
    const who = await principal(c);
    const limitParam = c.req.query('limit');
    if (limitParam !== undefined && !/^\d{1,64}$/.test(limitParam)) {
      throw new LakeSyncError('INVALID_REQUEST', 'limit must be a non-negative integer (0 means the default)');
    }
    // Any size is clamped to the maximum (by the gateway); beyond 2^53 it is the maximum anyway.
    const limit = limitParam === undefined ? undefined : Math.min(Number(limitParam), Number.MAX_SAFE_INTEGER);
    const result = await gateway.pull(who, { cursor: c.req.query('cursor') ?? '', ...(limit !== undefined ? { limit } : {}) });
    const format = responseFormat(c);
    return reply(c, format, encodePullResponse(format, result));
  });

  app.get('/v1/checkpoint', async (c) => {
    await principal(c);
    if (options.checkpoints === undefined) throw new LakeSyncError('NO_CHECKPOINT', 'this gateway has no lake: pull from the start');
    const format = responseFormat(c);
    return reply(c, format, encodeCheckpointInfo(format, await options.checkpoints.info()));
  });

  app.get('/v1/checkpoint/:id/:index', async (c) => {
    const who = await principal(c);
    if (options.checkpoints === undefined) throw new LakeSyncError('CHECKPOINT_EXPIRED', 'this gateway has no lake');
    const index = c.req.param('index');
    if (!/^\d{1,9}$/.test(index)) throw new LakeSyncError('INVALID_REQUEST', 'chunk index must be a non-negative integer');
    const format = responseFormat(c);
    return reply(c, format, await options.checkpoints.chunk(who, c.req.param('id'), Number(index), format));
  });

  app.post('/v1/admin/flush', async (c) => {
    const who = await principal(c);
    if (!who.admin) throw new LakeSyncError('FORBIDDEN', 'admin role required');
    if (options.flushNow === undefined) throw new LakeSyncError('NOT_FOUND', 'this gateway has no lake');
    return c.json(toJsonSafe(await options.flushNow()));
  });

  app.get('/v1/rows/:table/:rowId', async (c) => {
    const who = await principal(c);
    const values = await gateway.getRow(who, c.req.param('table'), c.req.param('rowId'));
    return c.json({ table: c.req.param('table'), rowId: c.req.param('rowId'), values: valuesToJson(values) });
  });

  app.get('/v1/admin/stats', async (c) => {
    const who = await principal(c);
    if (!who.admin) throw new LakeSyncError('FORBIDDEN', 'admin role required');
    return c.json({ head: (await gateway.head()).toString(), schemaVersion: gateway.registry.version });
  });

  if (options.devTokens !== undefined) {
    const mint = options.devTokens;
    app.post('/v1/dev/token', async (c) => {
      // No token needed, and CORS admits any origin: a browser only mints for pages on this machine,
      // or any site the developer visits could take an admin token for the dev server and its data.
      const origin = c.req.header('origin');
      if (origin !== undefined && !isLoopbackOrigin(origin)) {
        throw new LakeSyncError('FORBIDDEN', 'dev tokens are minted only for pages served from this machine (localhost)');
      }
      const body = (await c.req.json().catch(() => ({}))) as { sub?: unknown; clientId?: unknown; admin?: unknown };
      if (typeof body.sub !== 'string' || typeof body.clientId !== 'string') {
        throw new LakeSyncError('INVALID_REQUEST', 'send {"sub": "...", "clientId": "..."}');
      }
      return c.json({ token: await mint({ sub: body.sub, clientId: body.clientId, admin: body.admin === true }) });
    });
  }

  app.notFound((c) => {
    const allowed = allowedMethods(app.routes, c.req.path);
    if (allowed.length > 0) {
      c.header('allow', allowed.join(', '));
      throw new LakeSyncError('METHOD_NOT_ALLOWED', `${c.req.method} is not allowed here; use ${allowed.join(' or ')}`);
    }
    throw new LakeSyncError('NOT_FOUND', 'no such route');
  });

  app.onError((err, c) => {
    const { status, error } = wireErrorOf(err, c.get('requestId') ?? '');
    if (status >= 500) log({ level: 'error', msg: 'request failed', requestId: error.requestId, error: String(err) });
    // Answers that are part of normal operation (no checkpoint yet, an expired cursor) are not warnings.
    else log({ level: ROUTINE_CODES.has(error.code) ? 'info' : 'warn', msg: 'request refused', requestId: error.requestId, code: error.code });
    const format = responseFormat(c);
    return reply(c, format, encodeError(format, error), status);
  });

  return app;
}

/** An Origin header naming this machine: localhost (or a *.localhost name), 127.0.0.0/8 or [::1]. */
function isLoopbackOrigin(origin: string): boolean {
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return false; // "null" (sandboxed frames, files) and anything unparsable
  }
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** Methods the app answers on this path (for 405 and the allow header). */
function allowedMethods(routes: readonly { method: string; path: string }[], path: string): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    if (r.method === 'ALL' || r.path.includes('*')) continue;
    const pattern = new RegExp(`^${r.path.replace(/:[^/]+/g, '[^/]+')}$`);
    if (pattern.test(path)) methods.add(r.method);
  }
  return [...methods];
}

function valuesToJson(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'bigint') out[k] = v.toString();
    else if (typeof v === 'object' && v !== null && 'json' in v) out[k] = JSON.parse((v as { json: string }).json) as unknown;
    else out[k] = v;
  }
  return out;
}
