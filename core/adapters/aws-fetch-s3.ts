import { LakeError } from '../lake/errors.ts';
import type { ObjectInfo, ObjectStore } from '../lake/ports.ts';
import { AwsError, escapeUri, type AwsFetch } from './aws-fetch.ts';

/**
 * The S3 reads the http function needs (checkpoint manifests and chunks)
 * over signed fetch: GET and HEAD of s3://bucket/key, with S3ObjectStore's
 * error semantics (a missing key is NOT_FOUND on get, null on head).
 * Writing, listing and deleting are the lake functions' business
 * (S3ObjectStore); here they fail.
 *
 * Addressing: virtual-hosted (bucket.s3.region.amazonaws.com) for
 * DNS-friendly bucket names on AWS, path-style otherwise and on an endpoint
 * override (emulators).
 */
export class S3FetchReader implements ObjectStore {
  constructor(private readonly aws: AwsFetch) {}

  async get(uri: string): Promise<Uint8Array> {
    const res = await this.request('GET', uri);
    return new Uint8Array(await res.arrayBuffer());
  }

  async head(uri: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.request('HEAD', uri);
      return { uri, size: Number(res.headers.get('content-length') ?? 0), lastModified: Date.parse(res.headers.get('last-modified') ?? '') || 0 };
    } catch (e) {
      if (e instanceof LakeError && e.code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  put(uri: string, _bytes?: Uint8Array): Promise<void> {
    return Promise.reject(readOnly('put', uri));
  }

  putIfAbsent(uri: string, _bytes?: Uint8Array): Promise<boolean> {
    return Promise.reject(readOnly('putIfAbsent', uri));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    throw readOnly('list', prefix);
  }

  delete(uris: readonly string[]): Promise<void> {
    return Promise.reject(readOnly('delete', uris[0] ?? ''));
  }

  private async request(method: 'GET' | 'HEAD', uri: string): Promise<Response> {
    const m = /^s3[an]?:\/\/([^/]+)\/(.+)$/s.exec(uri);
    if (m === null) throw new LakeError('STORE_ERROR', `not an s3:// object uri: ${uri}`);
    const [, bucket = '', key = ''] = m;
    const path = key.split('/').map(escapeUri).join('/');
    const at = (e: URL, custom: boolean): URL =>
      custom || !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket)
        ? new URL(`${e.origin}${e.pathname.replace(/\/$/, '')}/${bucket}/${path}`)
        : new URL(`${e.protocol}//${bucket}.${e.host}/${path}`);
    try {
      // S3 wants the payload hash as a header; a GET has none: the empty string's.
      return await this.aws.send((e, custom) => ({ method, url: at(e, custom), headers: { 'x-amz-content-sha256': EMPTY_SHA256 } }), readError);
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') throw new LakeError('NOT_FOUND', `no object ${uri}`, { cause: err });
      const what = name === 'NoSuchBucket' ? 'the bucket does not exist' : (name ?? 'error');
      throw new LakeError('STORE_ERROR', `${method} ${uri}: ${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function readOnly(op: string, uri: string): LakeError {
  return new LakeError('STORE_ERROR', `${op} ${uri}: this S3 store only reads`);
}

/** `<Error><Code>NoSuchKey</Code><Message>...</Message></Error>`; a HEAD's error has no body, its status names it. */
function readError(res: Response, text: string): AwsError {
  const tag = (t: string): string | undefined => new RegExp(`<${t}>([^<]*)</${t}>`).exec(text)?.[1];
  const name = tag('Code') ?? (res.status === 404 ? 'NotFound' : `Http${res.status}`);
  return new AwsError(name, tag('Message') ?? name, res.status, res.headers.get('x-amz-request-id') ?? undefined);
}
