import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, freePort, startChildServer, tempDir, type ChildServer } from '../support/server.ts';

const run = promisify(execFile);

/** The README's fenced blocks tagged `readme-example`, verbatim. */
function readmeExamples(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts readme-example\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

describe('README', () => {
  let server: ChildServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('gives the two commands for a fresh clone', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });

  it('client example runs verbatim against `npm start` in dev mode', async () => {
    const [example] = readmeExamples();
    expect(example).toBeDefined();
    const port = await freePort();
    server = await startChildServer({ dataDir: tempDir(), port, dev: true });
    // Inside the repo so `import ... from 'lakesync/client'` resolves through package.json exports.
    const dir = join(ROOT, '.tmp');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `readme-example-${port}.ts`);
    writeFileSync(file, example as string);
    const cwd = tempDir();
    try {
      const { stdout } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), file], {
        cwd,
        env: { ...process.env, LAKESYNC_URL: server.url },
        timeout: 30_000,
      });
      expect(stdout).toContain('Buy milk');
    } finally {
      rmSync(file, { force: true });
    }
  });
});
