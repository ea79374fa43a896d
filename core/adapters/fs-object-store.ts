import { link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LakeError } from '../lake/errors.ts';
import type { ObjectInfo, ObjectStore } from '../lake/ports.ts';

/**
 * Object store on local disk (the embedded default), addressed by file://
 * URIs. A put writes a temporary file and renames it into place, so readers
 * never see half an object; fsync makes it durable before the catalog
 * commit that references it.
 */
export class FsObjectStore implements ObjectStore {
  constructor(private readonly options: { fsync?: boolean } = {}) {}

  static uriFor(path: string): string {
    return pathToFileURL(path).href;
  }

  private path(uri: string): string {
    // REST catalogs may hand back file:/path as well as file:///path.
    if (!uri.startsWith('file:')) throw new LakeError('STORE_ERROR', `not a file: uri: ${uri}`);
    return fileURLToPath(uri);
  }

  /** Write a temporary file beside `path` (fsynced unless turned off); returns its path. */
  private async writeTemp(path: string, bytes: Uint8Array): Promise<string> {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(bytes);
        if (this.options.fsync !== false) await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return tmp;
  }

  /** The new name is only durable once its directory is synced. */
  private async syncDir(path: string): Promise<void> {
    // Windows cannot open a directory for syncing (and makes renames durable itself).
    if (this.options.fsync === false || process.platform === 'win32') return;
    const dh = await open(dirname(path), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  async put(uri: string, bytes: Uint8Array): Promise<void> {
    const path = this.path(uri);
    const tmp = await this.writeTemp(path, bytes);
    try {
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await this.syncDir(path);
  }

  /**
   * Like put, but the object appears by link(2), which fails if the name
   * exists: one writer wins, and no reader sees a half-written object (an
   * exclusive create would show it while its bytes are written, and leave
   * it truncated after a crash).
   */
  async putIfAbsent(uri: string, bytes: Uint8Array): Promise<boolean> {
    const path = this.path(uri);
    const tmp = await this.writeTemp(path, bytes);
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      await rm(tmp, { force: true });
    }
    await this.syncDir(path);
    return true;
  }

  async get(uri: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.path(uri)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LakeError('NOT_FOUND', `no object ${uri}`);
      throw e;
    }
  }

  async head(uri: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.path(uri));
      return { uri, size: s.size, lastModified: s.mtimeMs };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // List the directory part of the prefix recursively, then filter by the full prefix.
    const base = this.path(prefix.endsWith('/') ? prefix : prefix.slice(0, prefix.lastIndexOf('/') + 1));
    let entries: string[];
    try {
      entries = (await readdir(base, { recursive: true })) as string[];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const rel of entries.sort()) {
      // Temporary files of writes in progress are listed too: one left by a process killed before
      // its rename is never referenced, so orphan removal (past its age cut-off) deletes it.
      const path = join(base, rel);
      const uri = pathToFileURL(path).href;
      if (!uri.startsWith(prefix)) continue;
      const s = await stat(path).catch(() => null);
      if (s === null || !s.isFile()) continue;
      yield { uri, size: s.size, lastModified: s.mtimeMs };
    }
  }

  async delete(uris: readonly string[]): Promise<void> {
    for (const uri of uris) await rm(this.path(uri), { force: true });
  }
}
