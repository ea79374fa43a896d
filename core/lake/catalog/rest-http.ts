import { LakeError, type LakeErrorCode } from '../errors.ts';
import { stringifyJson } from '../json.ts';
import type { Authenticator } from './rest-auth.ts';
import { parseJson } from '../json.ts';

/**
 * One request to a REST catalog, with the failure semantics the lake relies
 * on. What a failure means depends on what the request was:
 * - read: idempotent, retried on 429/5xx/network errors/timeouts with backoff;
 * - write (create, drop): not retried; 409 means "already exists";
 * - commit: never retried here, because a 5xx, a timeout or a dropped
 *   connection leaves the outcome unknown (COMMIT_STATE_UNKNOWN: the caller
 *   reloads and looks, and must keep the files the commit referenced); 409
 *   means a requirement failed (COMMIT_CONFLICT).
 * Every request may be repeated once after a 401 when the authenticator can
 * get a fresh token: a 401 was rejected before anything happened. Likewise a
 * 429 (throttled: not acted on) is retried with backoff for every intent,
 * commits included, honouring Retry-After up to 30 s.
 */
export type Intent = 'read' | 'write' | 'commit';

export interface HttpOptions {
  readonly fetch: typeof fetch;
  readonly auth: Authenticator;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Extra attempts for reads. */
  readonly readRetries: number;
  readonly retryBaseDelayMs: number;
  readonly sleep: (ms: number) => Promise<void>;
}

export interface RestResponse {
  readonly status: number;
  /** Parsed losslessly; undefined for an empty body. */
  readonly body: unknown;
}

export async function send(
  http: HttpOptions,
  intent: Intent,
  method: string,
  url: URL,
  payload?: unknown,
): Promise<RestResponse> {
  const body = payload === undefined ? undefined : stringifyJson(payload);
  const what = `${method} ${url.pathname}`;
  let reauthorized = false;
  let lastRetryAfter: string | null = null;
  for (let attempt = 0; ; attempt++) {
    const retryRead = intent === 'read' && attempt < http.readRetries;
    // Nothing has been sent while the headers are prepared: a failure here is never "unknown".
    const headers = await prepareHeaders(http, method, url, body);
    let status: number;
    let text: string;
    try {
      ({ status, text, retryAfter: lastRetryAfter } = await exchange(http, method, url, headers, body));
    } catch (e) {
      if (intent === 'commit') {
        throw new LakeError('COMMIT_STATE_UNKNOWN', `${what}: no answer from the catalog (${describe(e)})`, { cause: e });
      }
      if (retryRead) {
        await http.sleep(backoff(http.retryBaseDelayMs, attempt));
        continue;
      }
      throw new LakeError('CATALOG_ERROR', `${what}: ${describe(e)}`, { cause: e });
    }
    if (status === 401 && !reauthorized && http.auth.invalidate()) {
      reauthorized = true;
      attempt--;
      continue;
    }
    if (status === 429 && attempt < http.readRetries) {
      await http.sleep(retryAfterMs(lastRetryAfter) ?? backoff(http.retryBaseDelayMs, attempt));
      continue;
    }
    if (retryRead && status >= 500) {
      await http.sleep(backoff(http.retryBaseDelayMs, attempt));
      continue;
    }
    if (status >= 200 && status < 300) {
      try {
        return { status, body: text.trim() === '' ? undefined : parseJson(text) };
      } catch (e) {
        // The server did act on a commit it answered 2xx; we just cannot read how.
        const code: LakeErrorCode = intent === 'commit' ? 'COMMIT_STATE_UNKNOWN' : 'CATALOG_ERROR';
        throw new LakeError(code, `${what}: response is not JSON`, { cause: e });
      }
    }
    throw new LakeError(errorCode(intent, status), `${what}: ${status} ${serverMessage(text)}`);
  }
}

async function prepareHeaders(
  http: HttpOptions,
  method: string,
  url: URL,
  body: string | undefined,
): Promise<Record<string, string>> {
  const headers: Record<string, string> = { accept: 'application/json', ...http.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    Object.assign(headers, await http.auth.headers({ method, url, headers, ...(body === undefined ? {} : { body }) }));
  } catch (e) {
    if (e instanceof LakeError) throw e;
    throw new LakeError('CATALOG_ERROR', `${method} ${url.pathname}: authentication failed: ${describe(e)}`, { cause: e });
  }
  return headers;
}

/** A Retry-After header (seconds or an HTTP date) as a wait in ms, at most 30 s; null when absent or unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (header === null) return null;
  const seconds = /^\s*(\d+)\s*$/.exec(header);
  // An HTTP date starts with its day name; Date.parse alone reads "1.5" or "-1" as dates long past (no wait at all).
  const date = /^\s*(?:mon|tue|wed|thu|fri|sat|sun)/i.test(header) ? Date.parse(header) : Number.NaN;
  const ms = seconds !== null ? Number(seconds[1]) * 1000 : date - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 30_000) : null;
}

async function exchange(
  http: HttpOptions,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<{ status: number; text: string; retryAfter: string | null }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new TimeoutError(http.timeoutMs)), http.timeoutMs);
  try {
    const res = await http.fetch(url, { method, headers, ...(body === undefined ? {} : { body }), signal: abort.signal });
    // The body is part of the answer: a commit whose response is cut off is still unknown.
    const text = await res.text();
    return { status: res.status, text, retryAfter: res.headers.get('retry-after') };
  } finally {
    clearTimeout(timer);
  }
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

function errorCode(intent: Intent, status: number): LakeErrorCode {
  if (intent === 'commit') {
    if (status === 409) return 'COMMIT_CONFLICT';
    // 500, 502, 503, 504 and the rest: the catalog may have applied it (Iceberg's Java client agrees).
    if (status >= 500) return 'COMMIT_STATE_UNKNOWN';
  }
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'ALREADY_EXISTS';
  return 'CATALOG_ERROR';
}

/** The spec's error model: {"error": {"message", "type", "code"}}; anything else is shown as text. */
function serverMessage(text: string): string {
  try {
    const parsed = parseJson(text) as { error?: { message?: unknown; type?: unknown } } | null;
    const err = parsed?.error;
    if (err !== undefined && err !== null && typeof err === 'object') {
      const type = typeof err.type === 'string' ? `${err.type}: ` : '';
      return `${type}${typeof err.message === 'string' ? err.message : ''}`;
    }
  } catch {
    // not JSON: a proxy's HTML page, say
  }
  return text.slice(0, 300);
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    return `${e.message}${cause}`;
  }
  return String(e);
}

function backoff(baseMs: number, attempt: number): number {
  const ms = Math.min(5_000, baseMs * 2 ** attempt);
  return ms / 2 + Math.random() * (ms / 2);
}
