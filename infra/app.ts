import { App, Validations } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import { LakeSyncStack } from './stack.ts';

const { AwsSolutionsChecks } = cdkNag;

/**
 * `npx cdk synth` / `npx cdk deploy` (cdk.json points here). Settings come
 * from `-c lakesync:<key>=<value>`; see docs/deploy-aws.md. cdk-nag's
 * AwsSolutions checks run on every synth: an unexplained finding fails it.
 */
const app = new App();
const account = process.env['CDK_DEFAULT_ACCOUNT'];
const region = process.env['CDK_DEFAULT_REGION'];
const stackName = (app.node.tryGetContext('lakesync:stackName') as string | undefined) ?? 'LakeSync';
new LakeSyncStack(app, stackName, {
  description: 'LakeSync: local-first sync gateway with an Iceberg lake (HTTP API, Lambda, DynamoDB, SQS, S3, Glue)',
  ...(account !== undefined && region !== undefined ? { env: { account, region } } : {}),
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
