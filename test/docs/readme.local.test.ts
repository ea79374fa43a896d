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
  let dataDir: string | undefined;
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
    dataDir = tempDir();
    server = await startChildServer({ dataDir, port, dev: true });
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

  it('the lake commands run verbatim on the example\'s data', async () => {
    expect(dataDir).toBeDefined();
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /## The lake[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const commands = block.split('\n').filter((l) => l.startsWith('npx lakesync '));
    expect(commands.length).toBeGreaterThanOrEqual(4);
    const outputs: string[] = [];
    for (const line of commands) {
      // The part before the comment, run by a shell as a user would paste it.
      const command = line.replace(/\s+#.*$/, '');
      const { stdout } = await run('bash', ['-c', command], { cwd: ROOT, env: { ...process.env, LAKESYNC_DATA_DIR: dataDir }, timeout: 60_000 });
      outputs.push(stdout);
    }
    const query = commands.findIndex((c) => c.includes('lakesync query "SELECT done'));
    expect(outputs[query]).toMatch(/done\s+count_star\(\)\n\S*\s*1/);
  });
});

