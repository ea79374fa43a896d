/**
 * cdk-nag's AwsSolutions pack finds nothing unexplained: zero violations,
 * and every acknowledgement names one finding and says why.
 */
import { Validations, type App } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { LakeSyncStack } from '../../infra/stack.ts';
import { FIXTURE_FUNCTIONS, constructStack, newApp } from './support.ts';

// cdk-nag is CommonJS; Node cannot see its named exports statically.
const { AwsSolutionsChecks } = cdkNag;

function violations(app: App): string[] {
  app.synth();
  const report = new AwsSolutionsChecks(app).validateScope(app);
  return report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
}

function acknowledgements(root: IConstruct): Array<{ id: string; reason: string; path: string }> {
  const out: Array<{ id: string; reason: string; path: string }> = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) out.push({ id: id.replace(/^annotation::/i, ''), reason, path: c.node.path });
    }
  }
  return out;
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing in the construct dropped into a user stack', () => {
    const { app } = constructStack();
    expect(violations(app)).toEqual([]);
  });

  it('finds nothing in the app’s stack (generated HS256 secret, context settings)', () => {
    const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS, 'lakesync:schedule': 'cron(0 3 * * ? *)' });
    new LakeSyncStack(app, 'LakeSync');
    expect(violations(app)).toEqual([]);
  });

  it('finds nothing with an existing HS256 secret given by name (read at run time; the grant ends in -??????)', () => {
    const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS, 'lakesync:jwtSecretName': 'lakesync/jwt' });
    new LakeSyncStack(app, 'LakeSync');
    expect(violations(app)).toEqual([]);
  });

  it('finds nothing with server access logs off and a JWKS URL', () => {
    const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS, 'lakesync:jwksUrl': 'https://idp.example.com/jwks.json' });
    new LakeSyncStack(app, 'LakeSync');
    const { app: app2 } = constructStack({ serverAccessLogs: false });
    expect(violations(app)).toEqual([]);
    expect(violations(app2)).toEqual([]);
  });

  it('acknowledges only named AwsSolutions findings, each with a reason', () => {
    const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS });
    new LakeSyncStack(app, 'LakeSync');
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(ack.reason.length, `${ack.id} at ${ack.path}`).toBeGreaterThan(30);
    }
    // IAM5 acknowledgements name the exact wildcard, never the whole rule.
    for (const ack of acks.filter((a) => a.id.startsWith('AwsSolutions-IAM'))) expect(ack.id).toContain('[');
    // The only Resource::* is dynamodb:ListStreams on the two stream consumers.
    expect(acks.filter((a) => a.id.endsWith('[Resource::*]')).map((a) => a.path).sort()).toEqual(['LakeSync/LakeSync/LiveFunction', 'LakeSync/LakeSync/StreamFunction']);
  });
});
