import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LakeError } from '../lake/errors.ts';
import type { ObjectInfo, ObjectStore } from '../lake/ports.ts';

/**
 * Object store on Amazon S3 (or anything that speaks its API), addressed by
 * s3://bucket/key URIs; s3a:// and s3n:// (Hadoop's spellings, found in
 * metadata that Spark wrote) name the same objects. PUT and multipart
 * uploads are atomic on S3, so readers never see half an object.
 *
 * The client is made once by the caller and shared: its region, credentials
 * and endpoint (path-style for emulators) are the caller's choice. Stores
 * that reject the SDK's default CRC32 checksums want
 * `requestChecksumCalculation: 'WHEN_REQUIRED'` on that client.
 */
export interface S3ObjectStoreOptions {
  /** Bodies larger than this go up as a multipart upload. Default 16 MiB. */
  readonly multipartThreshold?: number;
  /** Part size of multipart uploads (at least 5 MiB, S3's minimum). Default 8 MiB. */
  readonly partSize?: number;
  /** Parts uploaded at once. Default 4. */
  readonly partConcurrency?: number;
  /** Keys per ListObjectsV2 page (S3's maximum, 1000, by default). */
  readonly listPageSize?: number;
}

const MiB = 1024 * 1024;
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;
/** DeleteObjects takes at most this many keys. */
const DELETE_BATCH = 1000;

interface S3Location {
  readonly scheme: string;
  readonly bucket: string;
  readonly key: string;
}

export class S3ObjectStore implements ObjectStore {
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly listPage: { MaxKeys?: number };

  constructor(
    private readonly client: S3Client,
    options: S3ObjectStoreOptions = {},
  ) {
    this.threshold = options.multipartThreshold ?? 16 * MiB;
    this.partSize = Math.max(options.partSize ?? 8 * MiB, MIN_PART);
    this.partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.listPage = options.listPageSize === undefined ? {} : { MaxKeys: options.listPageSize };
  }

  static uriFor(bucket: string, key: string): string {
    return `s3://${bucket}/${key.replace(/^\/+/, '')}`;
  }

  async put(uri: string, bytes: Uint8Array): Promise<void> {
    const { bucket, key } = objectLocation(uri);
    try {
      if (bytes.length <= this.threshold) {
        await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length }));
        return;
      }
      // Parts are views of `bytes` (no copies); a failed upload is aborted, so no parts linger.
      const upload = new Upload({
        client: this.client,
        params: { Bucket: bucket, Key: key, Body: bytes },
        partSize: Math.max(this.partSize, Math.ceil(bytes.length / MAX_PARTS)),
        queueSize: this.partConcurrency,
        leavePartsOnError: false,
      });
      await upload.done();
    } catch (e) {
      throw storeError('put', uri, e);
    }
  }

  /**
   * A conditional PUT (If-None-Match: *): S3 decides atomically. One request
   * for any size up to S3's 5 GiB single-PUT limit; never multipart.
   */
  async putIfAbsent(uri: string, bytes: Uint8Array): Promise<boolean> {
    const { bucket, key } = objectLocation(uri);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length, IfNoneMatch: '*' }),
        );
        return true;
      } catch (e) {
        const { name, status } = awsError(e);
        if (status === 412 || name === 'PreconditionFailed') return false;
        // S3 answers 409 while another conditional write of the key is in flight: ask again, the winner is then known.
        if ((status === 409 || name === 'ConditionalRequestConflict') && attempt < 5) continue;
        throw storeError('putIfAbsent', uri, e);
      }
    }
  }

  async get(uri: string): Promise<Uint8Array> {
    const { bucket, key } = objectLocation(uri);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (res.Body === undefined) throw new LakeError('STORE_ERROR', `get ${uri}: no body`);
      return await readBody(res.Body as AsyncIterable<Uint8Array>, res.ContentLength, uri);
    } catch (e) {
      const { name } = awsError(e);
      if (name === 'NoSuchKey') throw new LakeError('NOT_FOUND', `no object ${uri}`, { cause: e });
      throw storeError('get', uri, e);
    }
  }

  async head(uri: string): Promise<ObjectInfo | null> {
    const { bucket, key } = objectLocation(uri);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { uri, size: res.ContentLength ?? 0, lastModified: res.LastModified?.getTime() ?? 0 };
    } catch (e) {
      // HEAD has no error body: a missing key is a bare 404 ("NotFound").
      const { name, status } = awsError(e);
      if (status === 404 || name === 'NotFound' || name === 'NoSuchKey') return null;
      throw storeError('head', uri, e);
    }
  }

  /** Keys in S3's order (UTF-8 binary), with the prefix's scheme. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const { scheme, bucket, key } = parseS3Uri(prefix);
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ...this.listPage, ...(token === undefined ? {} : { ContinuationToken: token }) }),
        );
      } catch (e) {
        throw storeError('list', prefix, e);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { uri: `${scheme}://${bucket}/${o.Key}`, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(uris: readonly string[]): Promise<void> {
    const byBucket = new Map<string, string[]>();
    for (const uri of uris) {
      const { bucket, key } = objectLocation(uri);
      let keys = byBucket.get(bucket);
      if (keys === undefined) byBucket.set(bucket, (keys = []));
      keys.push(key);
    }
    for (const [bucket, keys] of byBucket) {
      const unique = [...new Set(keys)];
      for (let i = 0; i < unique.length; i += DELETE_BATCH) {
        const batch = unique.slice(i, i + DELETE_BATCH);
        let res;
        try {
          res = await this.client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          );
        } catch (e) {
          throw storeError('delete', `s3://${bucket}/ (${batch.length} keys)`, e);
        }
        // DeleteObjects answers 200 and lists per-key failures; a missing key is not one.
        const failed = res.Errors ?? [];
        if (failed.length > 0) {
          const sample = failed
            .slice(0, 3)
            .map((f) => `${f.Key ?? '?'}: ${f.Code ?? ''} ${f.Message ?? ''}`.trim())
            .join('; ');
          throw new LakeError('STORE_ERROR', `delete: ${failed.length} of ${batch.length} keys in s3://${bucket} failed (${sample})`);
        }
      }
    }
  }
}

/** s3://bucket/key (or s3a://, s3n://). The key may be empty (a prefix of the whole bucket). */
export function parseS3Uri(uri: string): S3Location {
  const m = /^(s3|s3a|s3n):\/\/([^/]+)(?:\/(.*))?$/s.exec(uri);
  if (m === null || m[1] === undefined || m[2] === undefined) {
    throw new LakeError('STORE_ERROR', `not an s3:// uri: ${uri}`);
  }
  return { scheme: m[1], bucket: m[2], key: m[3] ?? '' };
}

function objectLocation(uri: string): S3Location {
  const loc = parseS3Uri(uri);
  if (loc.key === '' || loc.key.endsWith('/')) throw new LakeError('STORE_ERROR', `not an object uri: ${uri}`);
  return loc;
}

/** Stream the body into one buffer of the announced length (no chunk list, no second copy). */
async function readBody(body: AsyncIterable<Uint8Array>, length: number | undefined, uri: string): Promise<Uint8Array> {
  if (length === undefined) {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of body) {
      chunks.push(chunk);
      total += chunk.length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for await (const chunk of body) {
    if (at + chunk.length > length) throw new LakeError('STORE_ERROR', `get ${uri}: more bytes than the announced ${length}`);
    out.set(chunk, at);
    at += chunk.length;
  }
  if (at !== length) throw new LakeError('STORE_ERROR', `get ${uri}: body ended after ${at} of ${length} bytes`);
  return out;
}

/** The SDK's error name and HTTP status (none for network failures). */
export function awsError(e: unknown): { name: string; status: number | undefined } {
  if (typeof e !== 'object' || e === null) return { name: '', status: undefined };
  const err = e as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const name = typeof err.Code === 'string' ? err.Code : typeof err.name === 'string' ? err.name : '';
  const status = typeof err.$metadata?.httpStatusCode === 'number' ? err.$metadata.httpStatusCode : undefined;
  return { name, status };
}

function storeError(op: string, uri: string, e: unknown): LakeError {
  if (e instanceof LakeError) return e;
  const { name, status } = awsError(e);
  const what = name === 'NoSuchBucket' ? 'the bucket does not exist' : `${name || 'error'}${status === undefined ? '' : ` (${status})`}`;
  const message = e instanceof Error ? e.message : String(e);
  return new LakeError('STORE_ERROR', `${op} ${uri}: ${what}: ${message}`, { cause: e });
}
