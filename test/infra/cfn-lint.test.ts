/**
 * cfn-lint (from PyPI, in the project venv) on the synthesized template:
 * no errors, and no warnings except the ones listed here with a reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LakeSyncStack } from '../../infra/stack.ts';
import { ensurePythonEnv, VENV } from '../support/python.ts';
import { FIXTURE_FUNCTIONS, newApp } from './support.ts';

/** Findings we accept, with why. */
const ACCEPTED: Readonly<Record<string, string>> = {
  // CDK's NodejsFunction adds DependsOn on its role although Role already
  // references it; redundant but harmless, and not ours to change.
  W3005: 'redundant DependsOn emitted by aws-cdk-lib for Lambda service roles',
};

interface Finding {
  readonly Rule: { readonly Id: string };
  readonly Message: string;
  readonly Level: string;
}

let dir: string;

beforeAll(() => {
  ensurePythonEnv((line) => console.log(line));
  dir = mkdtempSync(join(tmpdir(), 'lakesync-cfnlint-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function lint(template: unknown): Finding[] {
  const file = join(dir, 'template.json');
  writeFileSync(file, JSON.stringify(template, null, 1));
  const r = spawnSync(join(VENV, 'bin/cfn-lint'), ['--format', 'json', file], { encoding: 'utf8' });
  if (r.error !== undefined) throw r.error;
  // Exit code bits: 2 errors, 4 warnings, 8 informational; 1 means cfn-lint itself failed.
  if (r.status === 1) throw new Error(`cfn-lint failed: ${r.stderr}`);
  return JSON.parse(r.stdout === '' ? '[]' : r.stdout) as Finding[];
}

describe('cfn-lint', () => {
  for (const [name, context] of [
    ['app stack with a generated HS256 secret', {}],
    ['app stack with a JWKS URL, CORS and destroy-on-delete', { 'lakesync:jwksUrl': 'https://idp.example.com/jwks.json', 'lakesync:corsAllowOrigins': 'https://app.example.com', 'lakesync:removal': 'destroy' }],
  ] as const) {
    it(`passes on the ${name}`, () => {
      const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS, ...context });
      new LakeSyncStack(app, 'LakeSync');
      const template = app.synth().getStackByName('LakeSync').template as unknown;
      const findings = lint(template);
      const unexplained = findings.filter((f) => !(f.Rule.Id in ACCEPTED)).map((f) => `${f.Level} ${f.Rule.Id}: ${f.Message}`);
      expect(unexplained).toEqual([]);
    });
  }
});
