import { LakeError, isLakeError } from '../errors.ts';
import { normalizeMetadata, type TableRequirement, type TableUpdate } from '../iceberg/metadata.ts';
import type { Catalog, CreateTableRequest, LoadedTable, TableIdent } from '../ports.ts';
import { createAuthenticator, type RestAuth } from './rest-auth.ts';
import { send, type HttpOptions, type Intent } from './rest-http.ts';

/**
 * The Iceberg REST catalog protocol (Apache Iceberg's rest-catalog-open-api),
 * as a Catalog: R2 Data Catalog, Polaris, Nessie, Lakekeeper, Gravitino,
 * AWS Glue's and S3 Tables' Iceberg endpoints. Only global fetch, so it runs
 * on Node, Lambda and Workers alike. The catalog applies updates itself and
 * writes the metadata file; we send requirements and updates as they are.
 */
export interface RestCatalogOptions {
  /** The catalog's base URI, without /v1: "https://glue.us-east-1.amazonaws.com/iceberg". */
  readonly uri: string;
  /** Sent as ?warehouse= to /v1/config (R2: "<account>_<bucket>", S3 Tables: the bucket ARN, Glue: the account id). */
  readonly warehouse?: string;
  readonly auth?: RestAuth;
  /** Sent with every request (after ours, before authentication). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Our side of the config merge: the server's defaults < these < the server's overrides. */
  readonly properties?: Readonly<Record<string, string>>;
  /** Per request, until the whole response body is read. Default 30 s. */
  readonly timeoutMs?: number;
  /** Extra attempts for idempotent reads on 429/5xx/network errors. Default 3. */
  readonly readRetries?: number;
  /** First backoff delay; doubles each retry, with jitter. Default 200 ms. */
  readonly retryBaseDelayMs?: number;
  /**
   * Send CreateTableRequest.location to the catalog. Off by default: managed
   * catalogs (S3 Tables, R2) choose locations themselves and may reject one.
   * Either way the table's location is the one in the returned metadata.
   */
  readonly sendLocation?: boolean;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

interface ResolvedConfig {
  readonly properties: Readonly<Record<string, string>>;
  /** "https://host/path/v1" or ".../v1/{prefix}" */
  readonly root: string;
  /** URL-encoded namespace level separator: "%1F" unless the server says otherwise. */
  readonly separator: string;
}

export class RestCatalog implements Catalog {
  readonly kind = 'rest';
  private readonly base: string;
  private readonly http: HttpOptions;
  private config: Promise<ResolvedConfig> | null = null;

  constructor(private readonly options: RestCatalogOptions) {
    this.base = options.uri.replace(/\/+$/, '');
    const fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    const now = options.now ?? Date.now;
    this.http = {
      fetch: fetchFn,
      auth: createAuthenticator(options.auth ?? { type: 'none' }, this.base, fetchFn, now),
      headers: options.headers ?? {},
      timeoutMs: options.timeoutMs ?? 30_000,
      readRetries: options.readRetries ?? 3,
      retryBaseDelayMs: options.retryBaseDelayMs ?? 200,
      sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    };
  }

  /** The merged catalog properties (fetched from /v1/config once). */
  async properties(): Promise<Readonly<Record<string, string>>> {
    return (await this.resolve()).properties;
  }

  async createNamespace(namespace: readonly string[]): Promise<void> {
    try {
      await this.call('write', 'POST', ['namespaces'], undefined, { namespace, properties: {} });
    } catch (e) {
      if (!isLakeError(e, 'ALREADY_EXISTS')) throw e;
    }
  }

  /** Top-level namespaces (nested ones would need a request per parent). */
  async listNamespaces(): Promise<string[][]> {
    const out: string[][] = [];
    await this.paged(['namespaces'], (page) => {
      for (const ns of asArray(page['namespaces'], 'namespaces')) out.push(asStrings(ns, 'namespace'));
    });
    return out;
  }

  async listTables(namespace: readonly string[]): Promise<TableIdent[]> {
    const out: TableIdent[] = [];
    await this.paged(['namespaces', nsSegment(namespace), 'tables'], (page) => {
      for (const id of asArray(page['identifiers'], 'identifiers')) {
        const { namespace: ns, name } = id as { namespace?: unknown; name?: unknown };
        if (typeof name !== 'string') throw badResponse('identifier without a name');
        out.push({ namespace: asStrings(ns, 'namespace'), name });
      }
    });
    return out;
  }

  async loadTable(ident: TableIdent): Promise<LoadedTable | null> {
    try {
      const res = await this.call('read', 'GET', tablePath(ident));
      return loadedTable(ident, res);
    } catch (e) {
      if (isLakeError(e, 'NOT_FOUND')) return null;
      throw e;
    }
  }

  async createTable(ident: TableIdent, request: CreateTableRequest): Promise<LoadedTable> {
    const body: Record<string, unknown> = {
      name: ident.name,
      schema: request.schema,
      'partition-spec': request.spec,
      'stage-create': false,
      // The catalog's default may be v3 one day; LakeSync writes v2.
      properties: { 'format-version': '2', ...request.properties },
    };
    if (request.sortOrder !== undefined) body['write-order'] = request.sortOrder;
    if (this.options.sendLocation === true) body['location'] = request.location;
    const res = await this.call('write', 'POST', ['namespaces', nsSegment(ident.namespace), 'tables'], undefined, body);
    return loadedTable(ident, res);
  }

  async commitTable(
    ident: TableIdent,
    requirements: readonly TableRequirement[],
    updates: readonly TableUpdate[],
  ): Promise<LoadedTable> {
    const body = { identifier: { namespace: ident.namespace, name: ident.name }, requirements, updates };
    const res = await this.call('commit', 'POST', tablePath(ident), undefined, body);
    try {
      return loadedTable(ident, res);
    } catch (e) {
      // It was accepted; only the answer is unreadable.
      throw new LakeError('COMMIT_STATE_UNKNOWN', `commit response unreadable: ${String(e)}`, { cause: e });
    }
  }

  async dropTable(ident: TableIdent): Promise<void> {
    // Never purge: data files are the lake's to expire, not the catalog's.
    await this.call('write', 'DELETE', tablePath(ident), { purgeRequested: 'false' });
  }

  // ---------- plumbing ----------

  private resolve(): Promise<ResolvedConfig> {
    if (this.config === null) {
      const pending = this.fetchConfig();
      this.config = pending;
      // Failing once (catalog down at startup) must not poison the instance.
      pending.catch(() => {
        if (this.config === pending) this.config = null;
      });
    }
    return this.config;
  }

  private async fetchConfig(): Promise<ResolvedConfig> {
    const url = new URL(`${this.base}/v1/config`);
    if (this.options.warehouse !== undefined) url.searchParams.set('warehouse', this.options.warehouse);
    const res = await send(this.http, 'read', 'GET', url);
    const body = asObject(res.body, 'config');
    const properties: Record<string, string> = {
      ...stringMap(body['defaults']),
      ...this.options.properties,
      ...stringMap(body['overrides']),
    };
    // Like Iceberg's Java client, a `uri` in the merged config redirects every later request.
    const base = (properties['uri'] ?? this.base).replace(/\/+$/, '');
    const prefix = properties['prefix']?.replace(/^\/+|\/+$/g, '');
    return {
      properties,
      root: prefix === undefined || prefix === '' ? `${base}/v1` : `${base}/v1/${prefix}`,
      separator: properties['namespace-separator'] ?? '%1F',
    };
  }

  private async call(
    intent: Intent,
    method: string,
    path: readonly PathPart[],
    query?: Record<string, string>,
    payload?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const cfg = await this.resolve();
    const segments = path.map((p) => (typeof p === 'string' ? encodeURIComponent(p) : p.ns.map(encodeURIComponent).join(cfg.separator)));
    const url = new URL(`${cfg.root}/${segments.join('/')}`);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    return send(this.http, intent, method, url, payload);
  }

  private async paged(path: readonly PathPart[], onPage: (page: Record<string, unknown>) => void): Promise<void> {
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      const res = await this.call('read', 'GET', path, token === undefined ? undefined : { pageToken: token });
      const page = asObject(res.body, 'list response');
      onPage(page);
      const next = page['next-page-token'];
      token = typeof next === 'string' && next !== '' ? next : undefined;
      if (token !== undefined && seen.has(token)) throw badResponse('pagination does not advance');
      if (token !== undefined) seen.add(token);
    } while (token !== undefined);
  }
}

/** A namespace path segment: levels joined by the separator after encoding each. */
type PathPart = string | { readonly ns: readonly string[] };

function nsSegment(namespace: readonly string[]): PathPart {
  if (namespace.length === 0) throw new LakeError('CATALOG_ERROR', 'empty namespace');
  return { ns: namespace };
}

function tablePath(ident: TableIdent): PathPart[] {
  return ['namespaces', nsSegment(ident.namespace), 'tables', ident.name];
}

function loadedTable(ident: TableIdent, res: { body: unknown }): LoadedTable {
  const body = asObject(res.body, 'table response');
  const location = body['metadata-location'];
  const metadata = asObject(body['metadata'], 'metadata');
  if (typeof location !== 'string') throw badResponse('metadata-location missing');
  if (metadata['format-version'] !== 2) {
    throw new LakeError('CORRUPT_METADATA', `table ${ident.name} has format version ${String(metadata['format-version'])}; LakeSync writes v2`);
  }
  return { ident, metadataLocation: location, metadata: normalizeMetadata(metadata) };
}

function badResponse(why: string): LakeError {
  return new LakeError('CATALOG_ERROR', `unexpected catalog response: ${why}`);
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badResponse(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function asArray(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badResponse(`${what} is not a list`);
  return v;
}

function asStrings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw badResponse(`${what} is not a list of strings`);
  return v as string[];
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
