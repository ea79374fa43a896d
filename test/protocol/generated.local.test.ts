import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../support/server.ts';

const run = promisify(execFile);
const buf = join(ROOT, 'node_modules/.bin/buf');

describe('protocol sources', () => {
  it('the committed TypeScript is what buf + protoc-gen-es generate from proto/', async () => {
    const out = tempDir('ls-gen-');
    await run(buf, ['generate', '--output', out], { cwd: ROOT, env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}` } });
    const file = 'core/protocol/gen/lakesync/v1/sync_pb.ts';
    expect(readFileSync(join(out, file), 'utf8')).toBe(readFileSync(join(ROOT, file), 'utf8'));
  });

  it('the .proto files pass buf lint', async () => {
    await expect(run(buf, ['lint'], { cwd: ROOT })).resolves.toBeDefined();
  });
});
