import { NoSuchBucket, NoSuchKey, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { isLakeError } from '../lake/errors.ts';
import { parseS3Uri, S3ObjectStore } from './s3-object-store.ts';

/**
 * The S3 store's error branches against a stub client: answers moto does not
 * give on demand (409 during a racing conditional write, per-key delete
 * failures, a body cut short). The store against moto is in test/lake/aws.test.ts.
 */
type Handler = (input: Record<string, unknown>) => unknown;

function stub(handlers: Record<string, Handler>): { client: S3Client; calls: { op: string; input: Record<string, unknown> }[] } {
  const calls: { op: string; input: Record<string, unknown> }[] = [];
  const client = {
    send(command: { constructor: { name: string }; input: Record<string, unknown> }): Promise<unknown> {
      const op = command.constructor.name.replace(/Command$/, '');
      calls.push({ op, input: command.input });
      const h = handlers[op];
      if (h === undefined) return Promise.reject(new Error(`stub has no ${op}`));
      return Promise.resolve().then(() => h(command.input));
    },
  };
  return { client: client as unknown as S3Client, calls };
}

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isLakeError(e) ? e.code : `not a LakeError: ${String(e)}`;
  }
}

async function* chunks(...parts: number[]): AsyncIterable<Uint8Array> {
  for (const n of parts) yield new Uint8Array(n).fill(7);
}

describe('S3ObjectStore', () => {
  it('parses s3, s3a and s3n URIs', () => {
    expect(parseS3Uri('s3://b/k/e y')).toEqual({ scheme: 's3', bucket: 'b', key: 'k/e y' });
    expect(parseS3Uri('s3a://b')).toEqual({ scheme: 's3a', bucket: 'b', key: '' });
    expect(parseS3Uri('s3n://b/')).toEqual({ scheme: 's3n', bucket: 'b', key: '' });
    expect(() => parseS3Uri('gs://b/k')).toThrow(/not an s3/);
    expect(() => parseS3Uri('s3:///k')).toThrow(/not an s3/);
  });

  it('putIfAbsent: 412 is false, 409 (a racing conditional write) asks again', async () => {
    const answers = [s3Error('ConditionalRequestConflict', 409), s3Error('PreconditionFailed', 412)];
    const { client, calls } = stub({
      PutObject: () => {
        const a = answers.shift();
        if (a !== undefined) throw a;
        return {};
      },
    });
    const store = new S3ObjectStore(client);
    expect(await store.putIfAbsent('s3://b/k', new Uint8Array(3))).toBe(false);
    expect(calls.map((c) => c.input['IfNoneMatch'])).toEqual(['*', '*']);
    expect(await store.putIfAbsent('s3://b/k', new Uint8Array(3))).toBe(true);
  });

  it('get: NoSuchKey is NOT_FOUND, NoSuchBucket and a short body are STORE_ERROR', async () => {
    const answers: Handler[] = [
      () => {
        throw new NoSuchKey({ message: 'no key', $metadata: { httpStatusCode: 404 } });
      },
      () => {
        throw new NoSuchBucket({ message: 'no bucket', $metadata: { httpStatusCode: 404 } });
      },
      () => ({ Body: chunks(4, 4), ContentLength: 10 }),
      () => ({ Body: chunks(4, 4, 4), ContentLength: 10 }),
      () => ({ Body: chunks(4, 6), ContentLength: 10 }),
      () => ({ Body: chunks(3, 2) }),
    ];
    const { client } = stub({ GetObject: (input) => (answers.shift() as Handler)(input) });
    const store = new S3ObjectStore(client);
    expect(await codeOf(store.get('s3://b/k'))).toBe('NOT_FOUND');
    expect(await codeOf(store.get('s3://b/k'))).toBe('STORE_ERROR');
    expect(await codeOf(store.get('s3://b/k'))).toBe('STORE_ERROR');
    expect(await codeOf(store.get('s3://b/k'))).toBe('STORE_ERROR');
    expect((await store.get('s3://b/k')).length).toBe(10);
    expect((await store.get('s3://b/k')).length).toBe(5);
  });

  it('delete: batches of 1000 per bucket; per-key failures are STORE_ERROR', async () => {
    const { client, calls } = stub({ DeleteObjects: () => ({}) });
    const store = new S3ObjectStore(client);
    const uris = [...Array.from({ length: 2001 }, (_, i) => `s3://one/k${i}`), 's3a://two/x', 's3://one/k0'];
    await store.delete(uris);
    const sizes = calls.map((c) => [c.input['Bucket'], (c.input['Delete'] as { Objects: unknown[] }).Objects.length]);
    expect(sizes).toEqual([
      ['one', 1000],
      ['one', 1000],
      ['one', 1],
      ['two', 1],
    ]);

    const failing = stub({ DeleteObjects: () => ({ Errors: [{ Key: 'k', Code: 'AccessDenied', Message: 'no' }] }) });
    expect(await codeOf(new S3ObjectStore(failing.client).delete(['s3://b/k']))).toBe('STORE_ERROR');
  });

  it('head: a bare 404 is null, anything else is STORE_ERROR', async () => {
    const answers = [s3Error('NotFound', 404), s3Error('Forbidden', 403)];
    const { client } = stub({
      HeadObject: () => {
        throw answers.shift();
      },
    });
    const store = new S3ObjectStore(client);
    expect(await store.head('s3://b/k')).toBeNull();
    expect(await codeOf(store.head('s3://b/k'))).toBe('STORE_ERROR');
  });
});
