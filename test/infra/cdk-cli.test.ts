/**
 * `npx cdk synth` as a user runs it: offline (no version check, no notices),
 * bundling with the local esbuild, cdk-nag run as a validation plugin.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_FUNCTIONS, ROOT } from './support.ts';

describe('cdk CLI', () => {
  it('synthesizes the app offline with cdk-nag passing', () => {
    const out = mkdtempSync(join(tmpdir(), 'lakesync-cdk-'));
    try {
      const r = spawnSync(
        join(ROOT, 'node_modules/.bin/cdk'),
        ['synth', '--quiet', '--output', out, '-c', `lakesync:functionsDir=${FIXTURE_FUNCTIONS}`],
        { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CI: 'true' } },
      );
      expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
      const template = JSON.parse(readFileSync(join(out, 'LakeSync.template.json'), 'utf8')) as { Outputs: Record<string, unknown> };
      expect(Object.keys(template.Outputs)).toContain('ApiUrl');
      expect(existsSync(join(out, 'validation-report.json'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
