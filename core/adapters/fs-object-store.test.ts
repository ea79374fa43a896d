import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsObjectStore } from './fs-object-store.ts';

describe('FsObjectStore', () => {
  const dir = (): string => mkdtempSync(join(tmpdir(), 'lakesync-fs-'));

  it('put and putIfAbsent: the first putIfAbsent wins, later ones leave the object alone', async () => {
    const store = new FsObjectStore({ fsync: false });
    const uri = FsObjectStore.uriFor(join(dir(), 'a/b/obj'));
    expect(await store.putIfAbsent(uri, new Uint8Array([1]))).toBe(true);
    expect(await store.putIfAbsent(uri, new Uint8Array([2]))).toBe(false);
    expect([...(await store.get(uri))]).toEqual([1]);
    await store.put(uri, new Uint8Array([3]));
    expect([...(await store.get(uri))]).toEqual([3]);
  });

  it('putIfAbsent: concurrent writers, exactly one wins, and no reader ever sees part of an object', async () => {
    const store = new FsObjectStore({ fsync: false });
    const root = dir();
    const uri = FsObjectStore.uriFor(join(root, 'obj'));
    const size = 16 << 20; // written in several chunks
    const bodies = [1, 2, 3].map((b) => new Uint8Array(size).fill(b));
    let partial = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        if ((await store.head(uri)) !== null) {
          const got = await store.get(uri);
          if (got.length !== size) partial++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const won = await Promise.all(bodies.map((b) => store.putIfAbsent(uri, b)));
    reading = false;
    await reader;
    expect(won.filter((w) => w)).toHaveLength(1);
    const got = await store.get(uri);
    expect(got.length).toBe(size);
    expect(got.every((v) => v === got[0])).toBe(true);
    expect(partial).toBe(0);
    expect(readdirSync(root)).toEqual(['obj']); // no temporary files left
  });
});
