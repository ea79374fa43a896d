import { LakeError } from '../lake/errors.ts';
import type { ObjectInfo, ObjectStore } from '../lake/ports.ts';
import { AwsError, escapeUri, type AwsFetch } from './aws-fetch.ts';

/**
 * The S3 reads the http function needs (checkpoint pointers, manifests and
 * chunks) over signed fetch: GET and HEAD of s3://bucket/key and
 * ListObjectsV2, with S3ObjectStore's error semantics (a missing key is
 * NOT_FOUND on get, null on head). Writing and deleting are the lake
 * functions' business (S3ObjectStore); here they fail.
 *
 * Addressing: virtual-hosted (bucket.s3.region.amazonaws.com) for
 * DNS-friendly bucket names on AWS, path-style otherwise and on an endpoint
 * override (emulators).
 */
export class S3FetchReader implements ObjectStore {
  constructor(
    private readonly aws: AwsFetch,
    /** Keys per ListObjectsV2 page (S3's default and most: 1,000); tests make it small. */
    private readonly listPageSize?: number,
  ) {}

  async get(uri: string): Promise<Uint8Array> {
    const { bucket, key } = location(uri);
    const res = await this.request('GET', bucket, key, '', uri);
    return new Uint8Array(await res.arrayBuffer());
  }

  async head(uri: string): Promise<ObjectInfo | null> {
    try {
      const { bucket, key } = location(uri);
      const res = await this.request('HEAD', bucket, key, '', uri);
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

  /** ListObjectsV2, page by page (1,000 keys each). */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const m = /^s3[an]?:\/\/([^/]+)\/(.*)$/s.exec(prefix);
    if (m === null) throw new LakeError('STORE_ERROR', `not an s3:// prefix: ${prefix}`);
    const [, bucket = '', keyPrefix = ''] = m;
    const size = this.listPageSize === undefined ? '' : `&max-keys=${this.listPageSize}`;
    let token: string | null = null;
    do {
      const query: string = `list-type=2${size}&prefix=${escapeUri(keyPrefix)}${token === null ? '' : `&continuation-token=${escapeUri(token)}`}`;
      const xml = await (await this.request('GET', bucket, '', query, prefix)).text();
      for (const [, body = ''] of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = xmlText(tag(body, 'Key') ?? '');
        yield { uri: `s3://${bucket}/${key}`, size: Number(tag(body, 'Size') ?? 0), lastModified: Date.parse(tag(body, 'LastModified') ?? '') || 0 };
      }
      token = tag(xml, 'IsTruncated') === 'true' ? xmlText(tag(xml, 'NextContinuationToken') ?? '') || null : null;
    } while (token !== null);
  }

  delete(uris: readonly string[]): Promise<void> {
    return Promise.reject(readOnly('delete', uris[0] ?? ''));
  }

  /** A request for `key` of `bucket` ('' for the bucket itself), with a query string already escaped. */
  private async request(method: 'GET' | 'HEAD', bucket: string, key: string, query: string, uri: string): Promise<Response> {
    const path = key.split('/').map(escapeUri).join('/');
    const q = query === '' ? '' : `?${query}`;
    const at = (e: URL, custom: boolean): URL =>
      custom || !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket)
        ? new URL(`${e.origin}${e.pathname.replace(/\/$/, '')}/${bucket}/${path}${q}`)
        : new URL(`${e.protocol}//${bucket}.${e.host}/${path}${q}`);
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

function location(uri: string): { bucket: string; key: string } {
  const m = /^s3[an]?:\/\/([^/]+)\/(.+)$/s.exec(uri);
  if (m === null) throw new LakeError('STORE_ERROR', `not an s3:// object uri: ${uri}`);
  return { bucket: m[1] as string, key: m[2] as string };
}

const tag = (xml: string, t: string): string | undefined => new RegExp(`<${t}>([^<]*)</${t}>`).exec(xml)?.[1];

/** XML character data: the five predefined entities and numeric references. */
function xmlText(s: string): string {
  return s.replace(/&(?:#x([0-9a-f]+)|#([0-9]+)|(amp|lt|gt|quot|apos));/gi, (_, hex?: string, dec?: string, name?: string) =>
    hex !== undefined ? String.fromCodePoint(parseInt(hex, 16)) : dec !== undefined ? String.fromCodePoint(Number(dec)) : ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[(name as string).toLowerCase()] as string,
  );
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function readOnly(op: string, uri: string): LakeError {
  return new LakeError('STORE_ERROR', `${op} ${uri}: this S3 store only reads`);
}

/** `<Error><Code>NoSuchKey</Code><Message>...</Message></Error>`; a HEAD's error has no body, its status names it. */
function readError(res: Response, text: string): AwsError {
  const name = tag(text, 'Code') ?? (res.status === 404 ? 'NotFound' : `Http${res.status}`);
  return new AwsError(name, tag(text, 'Message') ?? name, res.status, res.headers.get('x-amz-request-id') ?? undefined);
}
