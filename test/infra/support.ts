import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { LakeSync, type LakeSyncProps } from '../../infra/lakesync-construct.ts';

/** Stand-ins for functions/aws/*.ts, so the infra tests do not depend on the handlers. */
const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURE_FUNCTIONS = resolve(here, 'fixtures/functions');
export const ROOT = resolve(here, '../..');

export const APP_CONFIG = JSON.parse(readFileSync(join(ROOT, 'lakesync.config.json'), 'utf8')) as LakeSyncProps['config'];

/** The feature flags of the repository's cdk.json, so tests synthesize what `cdk synth` does. */
export function cdkContext(): Record<string, unknown> {
  return (JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
}

export function newApp(context: Record<string, unknown> = {}): App {
  return new App({ context: { ...cdkContext(), ...context } });
}

/** A user's stack with the construct dropped in. */
export function constructStack(props: Partial<LakeSyncProps> = {}, app: App = newApp()): { app: App; stack: Stack; lakesync: LakeSync } {
  const stack = new Stack(app, 'UserStack');
  const lakesync = new LakeSync(stack, 'LakeSync', {
    config: APP_CONFIG,
    auth: { jwksUrl: 'https://issuer.example.com/.well-known/jwks.json' },
    functionsDir: FIXTURE_FUNCTIONS,
    ...props,
  });
  return { app, stack, lakesync };
}
