import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteBuffer } from './sqlite-buffer.ts';
import { runBufferConformance } from './buffer.conformance.ts';

const paths = new WeakMap<object, string>();

runBufferConformance('sqlite', {
  create: () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ls-buf-')), 'buffer.sqlite');
    const b = new SqliteBuffer({ path, synchronous: 'normal' });
    paths.set(b, path);
    return Promise.resolve(b);
  },
  reopen: async (b) => {
    const path = paths.get(b)!;
    await b.close();
    const next = new SqliteBuffer({ path });
    paths.set(next, path);
    return next;
  },
});
