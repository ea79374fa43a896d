import {
  CONTENT_TYPES,
  LakeSyncError,
  decodeCheckpointInfo,
  decodeError,
  decodePullResponse,
  decodePushResponse,
  encodePushRequest,
  type CheckpointInfo,
  type ErrorCode,
  type PullResult,
  type PushInput,
  type PushResult,
  type Schema,
  type WireFormat,
} from '../../core/index.ts';

/** Supplies a bearer token; called again with forceRefresh after a 401. */
export type TokenProvider = (context: { clientId: string; forceRefresh: boolean }) => Promise<string>;

/** A request the server refused, with its stable code. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly deltaIndex: number,
    readonly requestId: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** The network failed or the server did not answer: retry later. */
export class OfflineError extends Error {
  override name = 'OfflineError';
  /** How long the server asked us to wait (its `retry-after`, on 429 and 503), if it said. */
  retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** `retry-after` as milliseconds: delay-seconds or an HTTP date (RFC 9110). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface TransportOptions {
  readonly url: string;
  readonly clientId: string;
  readonly getToken: TokenProvider;
  readonly format: WireFormat;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  /** Push bodies above this many bytes are refused here, as the server would (default 4 MiB). */
  readonly maxPushBytes?: number;
}

const DEFAULT_MAX_PUSH_BYTES = 4 * 1024 * 1024;

/** HTTP transport for /v1, with token refresh on 401. */
export class Transport {
  private token: string | null = null;
  /** Aborts every request under way (abortAll, on close). */
  private aborter = new AbortController();
  /** Set by refreshToken(): the next token is asked for with forceRefresh (a provider may cache tokens too). */
  private refresh = false;
  /** Bumped by refreshToken(): a token asked for before it is not kept. */
  private tokenGeneration = 0;
  /** Schema version the server announced in its last response. */
  serverSchemaVersion = 0;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: TransportOptions) {
    this.fetchImpl = options.fetch ?? fetch;
  }

  async push(input: PushInput): Promise<PushResult> {
    const { format } = this.options;
    const body = encodePushRequest(format, input);
    const max = this.options.maxPushBytes ?? DEFAULT_MAX_PUSH_BYTES;
    if (body.length > max) {
      // Not sent: the caller splits the batch, or sets a single delta this large aside.
      throw new RemoteError(413, 'BODY_TOO_LARGE', `push body of ${body.length} bytes is over this client's limit of ${max}`, -1, '');
    }
    const res = await this.request('POST', '/v1/push', body);
    return decodePushResponse(format, res);
  }

  async pull(cursor: string, limit: number): Promise<PullResult> {
    const query = new URLSearchParams({ cursor, limit: String(limit) });
    const res = await this.request('GET', `/v1/pull?${query.toString()}`);
    return decodePullResponse(this.options.format, res);
  }

  /** The newest checkpoint, or null when the server has none yet. */
  async checkpoint(): Promise<CheckpointInfo | null> {
    try {
      return decodeCheckpointInfo(this.options.format, await this.request('GET', '/v1/checkpoint'));
    } catch (err) {
      if (isRemoteCode(err, 'NO_CHECKPOINT')) return null;
      throw err;
    }
  }

  /** One chunk of a checkpoint: a page of full row states, filtered by this client's sync rules. */
  async checkpointChunk(checkpointId: string, index: number): Promise<PullResult> {
    return decodePullResponse(this.options.format, await this.checkpointChunkBytes(checkpointId, index));
  }

  /** The same chunk undecoded, in this transport's format (LocalStore.applyCheckpointChunk reads it). */
  checkpointChunkBytes(checkpointId: string, index: number): Promise<Uint8Array> {
    return this.request('GET', `/v1/checkpoint/${encodeURIComponent(checkpointId)}/${index}`);
  }

  get format(): WireFormat {
    return this.options.format;
  }

  async schema(): Promise<Schema> {
    const res = await this.request('GET', '/v1/schema', undefined, 'json');
    return JSON.parse(new TextDecoder().decode(res)) as Schema;
  }

  private async request(method: string, path: string, body?: Uint8Array, format = this.options.format): Promise<Uint8Array> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.currentToken(attempt > 0);
      let res: Response;
      try {
        res = await this.fetchImpl(this.options.url.replace(/\/$/, '') + path, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: CONTENT_TYPES[format],
            ...(body !== undefined ? { 'content-type': CONTENT_TYPES[format] } : {}),
          },
          ...(body !== undefined ? { body: body as Uint8Array<ArrayBuffer> } : {}),
          signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs ?? 30_000), this.aborter.signal]),
        });
      } catch (err) {
        throw new OfflineError(`cannot reach ${this.options.url}: ${(err as Error).message}`, { cause: err });
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch (err) {
        // The connection dropped while the answer was arriving: as offline as no answer at all.
        throw new OfflineError(`lost the connection to ${this.options.url} while reading its answer: ${(err as Error).message}`, { cause: err });
      }
      const announced = Number(res.headers.get('x-lakesync-schema-version') ?? '0');
      if (Number.isInteger(announced) && announced > this.serverSchemaVersion) this.serverSchemaVersion = announced;
      if (res.ok) return bytes;
      const wire = decodeError(format, bytes);
      if (res.status === 401 && attempt === 0) {
        this.token = null;
        continue; // one retry with a fresh token
      }
      if (res.status >= 500 || res.status === 429) {
        throw new OfflineError(`server answered ${res.status}${wire ? ` ${wire.code}` : ''}`, { retryAfterMs: retryAfterMs(res.headers.get('retry-after')) });
      }
      throw new RemoteError(res.status, wire?.code ?? `HTTP_${res.status}`, wire?.message ?? res.statusText, wire?.deltaIndex ?? -1, wire?.requestId ?? '');
    }
  }

  /**
   * Abort every request under way: they fail as offline (a push's outcome is
   * then unknown, and it is sent again later, which is safe). Later requests go out as usual.
   */
  abortAll(): void {
    this.aborter.abort(new Error('the client is closing'));
    this.aborter = new AbortController();
  }

  /** Drop the token: the next request asks the provider for a fresh one (the user's claims changed). */
  refreshToken(): void {
    this.token = null;
    this.refresh = true;
    this.tokenGeneration++;
  }

  private async currentToken(forceRefresh: boolean): Promise<string> {
    while (this.token === null || forceRefresh) {
      const generation = this.tokenGeneration;
      const token = await this.options.getToken({ clientId: this.options.clientId, forceRefresh: forceRefresh || this.refresh });
      // refreshToken() while it was asked for: it may carry the old claims, ask again.
      if (generation !== this.tokenGeneration) continue;
      this.refresh = false;
      this.token = token;
      forceRefresh = false;
    }
    return this.token;
  }
}

export function isRemoteCode(err: unknown, ...codes: ErrorCode[]): err is RemoteError {
  return err instanceof RemoteError && (codes as string[]).includes(err.code);
}

export { LakeSyncError };
