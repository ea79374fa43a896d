import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { LakeError } from '../errors.ts';

/**
 * How the REST catalog client authenticates. Bearer covers R2 Data Catalog,
 * Nessie and Polaris with a token from elsewhere; oauth2-client-credentials
 * fetches one from the catalog's token endpoint; sigv4 signs every request
 * for AWS Glue's and S3 Tables' Iceberg endpoints.
 */
export type RestAuth =
  | { readonly type: 'none' }
  | { readonly type: 'bearer'; readonly token: string | (() => Promise<string>) }
  | {
      readonly type: 'oauth2-client-credentials';
      readonly clientId: string;
      readonly clientSecret: string;
      /** Defaults to `{uri}/v1/oauth/tokens`, the spec's (deprecated but common) endpoint. */
      readonly tokenEndpoint?: string;
      /** Defaults to "catalog", as Iceberg's Java client sends. Polaris wants "PRINCIPAL_ROLE:ALL". */
      readonly scope?: string;
    }
  | {
      readonly type: 'sigv4';
      readonly region: string;
      readonly service: 'glue' | 's3tables';
      readonly credentials: AwsCredentials | (() => Promise<AwsCredentials>);
    };

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** The parts of a request that authentication may look at. */
export interface OutgoingRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

export interface Authenticator {
  /** Headers to add to the request (the request's own headers are already in `req.headers`). */
  headers(req: OutgoingRequest): Promise<Record<string, string>>;
  /** Called after a 401: drop any cached token; true when a retry may help. */
  invalidate(): boolean;
}

export function createAuthenticator(auth: RestAuth, baseUri: string, fetchFn: typeof fetch, now: () => number): Authenticator {
  switch (auth.type) {
    case 'none':
      return { headers: () => Promise.resolve({}), invalidate: () => false };
    case 'bearer': {
      const { token } = auth;
      return {
        headers: async () => ({ authorization: `Bearer ${typeof token === 'string' ? token : await token()}` }),
        // A token function may return a fresh token on the next call.
        invalidate: () => typeof token !== 'string',
      };
    }
    case 'oauth2-client-credentials':
      return new ClientCredentials(auth, auth.tokenEndpoint ?? `${baseUri}/v1/oauth/tokens`, fetchFn, now);
    case 'sigv4':
      return new SigV4(auth, now);
  }
}

class ClientCredentials implements Authenticator {
  private token: Promise<{ value: string; expiresAt: number }> | null = null;

  constructor(
    private readonly auth: Extract<RestAuth, { type: 'oauth2-client-credentials' }>,
    private readonly endpoint: string,
    private readonly fetchFn: typeof fetch,
    private readonly now: () => number,
  ) {}

  async headers(): Promise<Record<string, string>> {
    let current = this.token;
    if (current !== null) {
      const t = await current.catch(() => null);
      if (t === null || t.expiresAt <= this.now()) current = null;
    }
    if (current === null) {
      current = this.fetchToken();
      this.token = current;
      // A failed fetch must not stick: the next request tries again.
      current.catch(() => {
        if (this.token === current) this.token = null;
      });
    }
    return { authorization: `Bearer ${(await current).value}` };
  }

  invalidate(): boolean {
    this.token = null;
    return true;
  }

  private async fetchToken(): Promise<{ value: string; expiresAt: number }> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.auth.clientId,
      client_secret: this.auth.clientSecret,
      scope: this.auth.scope ?? 'catalog',
    });
    let res: Response;
    try {
      res = await this.fetchFn(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
      });
    } catch (e) {
      throw new LakeError('CATALOG_ERROR', `token endpoint unreachable: ${String(e)}`, { cause: e });
    }
    const text = await res.text();
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body; // small, no 64-bit ids
    } catch {
      // reported below
    }
    if (!res.ok || typeof body.access_token !== 'string') {
      const why = typeof body.error === 'string' ? `${body.error}: ${String(body.error_description ?? '')}` : text.slice(0, 200);
      throw new LakeError('CATALOG_ERROR', `token request failed (${res.status}): ${why}`);
    }
    // Refresh a minute early; no expiry given means "until the catalog says 401".
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : Number.POSITIVE_INFINITY;
    return { value: body.access_token, expiresAt: this.now() + Math.max(0, expiresIn - 60) * 1000 };
  }
}

class SigV4 implements Authenticator {
  private readonly signer: SignatureV4;

  constructor(
    auth: Extract<RestAuth, { type: 'sigv4' }>,
    private readonly now: () => number,
  ) {
    this.signer = new SignatureV4({
      service: auth.service,
      region: auth.region,
      credentials: auth.credentials,
      sha256: Sha256,
      // Glue and S3 Tables sign the double-encoded path, like every AWS service but S3.
      uriEscapePath: true,
      // x-amz-content-sha256, as Iceberg's Java signer sends.
      applyChecksum: true,
    });
  }

  async headers(req: OutgoingRequest): Promise<Record<string, string>> {
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of req.url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const headers: Record<string, string> = { ...req.headers, host: req.url.host };
    const signed = await this.signer.sign(
      {
        method: req.method,
        protocol: req.url.protocol,
        hostname: req.url.hostname,
        ...(req.url.port === '' ? {} : { port: Number(req.url.port) }),
        path: req.url.pathname,
        query,
        headers,
        body: req.body ?? '',
      },
      { signingDate: new Date(this.now()) },
    );
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) {
      // fetch sets Host itself, to the same value (url.host) that was signed.
      if (k.toLowerCase() !== 'host' && req.headers[k] === undefined) out[k] = v;
    }
    return out;
  }

  invalidate(): boolean {
    return false;
  }
}
