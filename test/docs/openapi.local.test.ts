import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  ErrorCodes,
  Gateway,
  HybridLogicalClock,
  JwtAuthenticator,
  MemoryBuffer,
  computeDeltaId,
  createHttpApp,
  encodeHlc,
  json,
  signHs256Token,
} from '../../core/index.ts';
import { ROOT, TEST_SECRET, TODO_SCHEMA } from '../support/server.ts';

/**
 * Keeps the written contract honest: docs/openapi.json and docs/protocol.md
 * must describe exactly the routes createHttpApp serves and every error code
 * the engine can answer. The OpenAPI description is JSON (valid YAML too) so
 * no YAML parser is needed.
 */

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

interface Operation {
  readonly operationId?: string;
  readonly responses?: Record<string, unknown>;
}
type PathItem = Partial<Record<(typeof HTTP_METHODS)[number], Operation>>;
interface OpenApiDoc {
  readonly openapi: string;
  readonly paths: Record<string, PathItem>;
  readonly components: {
    readonly schemas: Record<string, { properties?: Record<string, { enum?: string[]; maxItems?: number }> }>;
    readonly responses: Record<string, { description: string }>;
    readonly securitySchemes: Record<string, { type: string; scheme?: string }>;
  };
}

const openapi = JSON.parse(readFileSync(join(ROOT, 'docs/openapi.json'), 'utf8')) as OpenApiDoc;
const protocol = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
const errorCodes = Object.keys(ErrorCodes) as (keyof typeof ErrorCodes)[];

/** The app as every runtime mounts it, with the dev-only route switched on so it is listed too. */
function buildApp(): ReturnType<typeof createHttpApp> {
  const gateway = new Gateway({ buffer: new MemoryBuffer(), schema: TODO_SCHEMA, rules: null, clock: new HybridLogicalClock() });
  return createHttpApp({
    gateway,
    auth: new JwtAuthenticator({ hs256Secret: TEST_SECRET }),
    devTokens: ({ sub, clientId }) => signHs256Token(TEST_SECRET, { sub, clientId }),
  });
}

/** "GET /v1/rows/{table}/{rowId}" for every handler route (middleware registered as ALL is skipped). */
function servedRoutes(): string[] {
  const routes = buildApp()
    .routes.filter((r) => r.method !== 'ALL')
    .map((r) => `${r.method.toUpperCase()} ${r.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')}`);
  return [...new Set(routes)].sort();
}

function documentedRoutes(): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries(openapi.paths)) {
    for (const method of HTTP_METHODS) if (item[method] !== undefined) out.push(`${method.toUpperCase()} ${path}`);
  }
  return out.sort();
}

/** Every `$ref` in the document, as its JSON pointer. */
function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) refs(v, out);
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

function resolvePointer(pointer: string): unknown {
  expect(pointer.startsWith('#/')).toBe(true);
  let node: unknown = openapi;
  for (const part of pointer.slice(2).split('/')) {
    node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

describe('docs/openapi.json', () => {
  it('is OpenAPI 3.1 with a bearer JWT scheme', () => {
    expect(openapi.openapi).toMatch(/^3\.1\./);
    expect(openapi.components.securitySchemes['bearerAuth']).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('lists exactly the routes createHttpApp registers', () => {
    const served = servedRoutes();
    expect(served.length).toBeGreaterThan(0);
    expect(documentedRoutes()).toEqual(served);
  });

  it('documents routes the app actually answers (no "no such route")', async () => {
    const app = buildApp();
    for (const route of documentedRoutes()) {
      const [method, path] = route.split(' ') as [string, string];
      const url = `http://docs.test${path.replace(/\{[^}]+\}/g, 'x')}`;
      const res = await app.fetch(new Request(url, { method, headers: { accept: 'application/json' } }));
      const text = await res.text();
      expect(text, route).not.toContain('no such route');
      expect(res.headers.get('x-request-id'), route).toBeTruthy();
    }
  });

  it('has an Error code enum equal to core/errors.ts ErrorCodes', () => {
    const codes = openapi.components.schemas['Error']?.properties?.['code']?.enum ?? [];
    expect([...codes].sort()).toEqual([...errorCodes].sort());
  });

  it('has a shared error response per status that names each of its codes', () => {
    for (const code of errorCodes) {
      const response = openapi.components.responses[`E${ErrorCodes[code]}`];
      expect(response, `response E${ErrorCodes[code]} for ${code}`).toBeDefined();
      expect(response?.description, code).toContain(`\`${code}\``);
    }
  });

  it('offers protobuf and JSON bodies on push and pull', () => {
    const push = openapi.paths['/v1/push']?.post as { requestBody: { content: object }; responses: Record<string, { content: object }> };
    const pull = openapi.paths['/v1/pull']?.get as { responses: Record<string, { content: object }> };
    for (const content of [push.requestBody.content, push.responses['200']?.content, pull.responses['200']?.content]) {
      expect(Object.keys(content ?? {}).sort()).toEqual(['application/json', 'application/x-protobuf']);
    }
  });

  it('resolves every $ref and states the push batch limit the engine enforces', () => {
    for (const pointer of refs(openapi)) expect(resolvePointer(pointer), pointer).toBeDefined();
    expect(openapi.components.schemas['PushRequest']?.properties?.['deltas']?.maxItems).toBe(DEFAULT_LIMITS.maxDeltasPerPush);
  });
});

describe('docs/protocol.md', () => {
  it('has a row for every error code with its HTTP status', () => {
    for (const code of errorCodes) {
      const row = new RegExp(`^\\|\\s*\`${code}\`\\s*\\|\\s*(\\d{3})\\s*\\|`, 'm').exec(protocol);
      expect(row, `error table row for ${code}`).not.toBeNull();
      expect(Number(row?.[1]), code).toBe(ErrorCodes[code]);
    }
  });

  it('documents every route the app serves', () => {
    for (const route of servedRoutes()) {
      const [method, path] = route.split(' ') as [string, string];
      expect(protocol, route).toContain(`### ${method} ${path}`);
    }
  });

  it('keeps the #pull anchor the engine links to', () => {
    expect(protocol).toMatch(/^## Pull$/m);
  });

  it('states the default limits the engine enforces', () => {
    expect(DEFAULT_LIMITS.maxBodyBytes).toBe(4 * 1024 * 1024);
    expect(protocol).toContain('4 MiB');
    for (const n of [DEFAULT_LIMITS.maxDeltasPerPush, DEFAULT_LIMITS.defaultPullLimit, DEFAULT_LIMITS.maxPullLimit]) {
      expect(protocol).toContain(String(n));
    }
    expect(new HybridLogicalClock().maxDriftMs).toBe(60_000);
    expect(protocol).toContain('60 s');
  });

  it('has delta id test vectors that computeDeltaId reproduces', () => {
    const hlc = encodeHlc(1_767_225_600_000, 0);
    const v1 = computeDeltaId({
      clientId: 'client-a',
      hlc,
      table: 'todos',
      rowId: 't1',
      op: 'insert',
      columns: { title: 'Buy milk', done: false, position: 1n, score: 2.5, meta: json({ tags: ['x'] }), owner: null },
    });
    const v2 = computeDeltaId({ clientId: 'client-a', hlc: hlc + 2n, table: 'todos', rowId: 't1', op: 'delete', columns: {} });
    expect(protocol).toContain(`delta id = **\`${v1}\`**`);
    expect(protocol).toContain(`delta id = **\`${v2}\`**`);
    expect(protocol).toContain(String(hlc));
  });

  it('has JSON examples that parse', () => {
    const blocks = [...protocol.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length).toBeGreaterThan(5);
    for (const block of blocks) expect(() => JSON.parse(block) as unknown, block).not.toThrow();
  });
});
