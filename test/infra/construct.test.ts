/**
 * The LakeSync construct's CloudFormation: resources and the properties that
 * matter for correctness (stream filter, FIFO flush queue, DLQs, TLS-only,
 * encryption), least-privilege IAM, routes equal to docs/openapi.json, and
 * bundles built as infra/bundling.ts says.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { beforeAll, describe, expect, it } from 'vitest';
import { ESM_BANNER, PARQUET_WASM_FILE } from '../../infra/bundling.ts';
import { HTTP_ROUTES } from '../../infra/routes.ts';
import { LakeSyncStack } from '../../infra/stack.ts';
import { APP_CONFIG, FIXTURE_FUNCTIONS, ROOT, constructStack, newApp } from './support.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

let template: Template;
let assemblyDir: string;

beforeAll(() => {
  const { app, stack } = constructStack({
    maintenanceSchedule: Schedule.rate(Duration.minutes(30)),
    flushMaxDeltas: 5000,
    flushMaxAge: Duration.seconds(30),
  });
  template = Template.fromStack(stack);
  assemblyDir = app.synth().directory;
});

function resources(type: string): Array<[string, Resource]> {
  return Object.entries(template.findResources(type)) as Array<[string, Resource]>;
}

function functionId(name: string): string {
  const match = resources('AWS::Lambda::Function').find(([id]) => id.startsWith(`LakeSync${name}Function`));
  if (match === undefined) throw new Error(`no ${name} function`);
  return match[0];
}

function statementsOf(fn: string): Statement[] {
  const policies = resources('AWS::IAM::Policy').filter(([, p]) =>
    JSON.stringify((p.Properties['Roles'] as unknown[])[0]).includes(`LakeSync${fn}FunctionServiceRole`),
  );
  return policies.flatMap(([, p]) => (p.Properties['PolicyDocument'] as { Statement: Statement[] }).Statement);
}

function actionsOf(fn: string): string[] {
  return statementsOf(fn).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
}

describe('LakeSync construct', () => {
  it('has the DynamoDB buffer per the contract: pk/sk, on-demand, NEW_IMAGE stream, TTL, PITR, encryption', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      GlobalSecondaryIndexes: Match.absent(),
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  it('has six arm64 ESM functions on a Node.js 22+ runtime with the contract environment', () => {
    const fns = resources('AWS::Lambda::Function');
    expect(fns).toHaveLength(6);
    for (const [id, fn] of fns) {
      expect(fn.Properties['Architectures']).toEqual(['arm64']);
      expect(fn.Properties['Handler']).toBe('index.handler');
      const runtime = fn.Properties['Runtime'] as string;
      expect(Number(/^nodejs(\d+)\.x$/.exec(runtime)?.[1])).toBeGreaterThanOrEqual(22);
      const env = (fn.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables;
      for (const name of [
        'LAKESYNC_DDB_TABLE',
        'LAKESYNC_BUCKET',
        'LAKESYNC_WAREHOUSE',
        'LAKESYNC_GLUE_DATABASE',
        'LAKESYNC_FLUSH_QUEUE_URL',
        'LAKESYNC_JOBS_QUEUE_URL',
        'LAKESYNC_CONFIG_JSON',
      ]) {
        expect(env, name).toHaveProperty(name);
      }
      // Only the functions facing clients verify tokens: http, and live on $connect.
      if (/^LakeSync(Http|Live)Function/.test(id)) expect(env).toHaveProperty('LAKESYNC_JWKS_URL');
      else expect(env, id).not.toHaveProperty('LAKESYNC_JWKS_URL');
      expect(env).not.toHaveProperty('LAKESYNC_JWT_SECRET');
      expect(JSON.parse(env['LAKESYNC_CONFIG_JSON'] as string)).toEqual({ schema: APP_CONFIG.schema, rules: APP_CONFIG.rules });
      expect(env['LAKESYNC_FLUSH_MAX_DELTAS']).toBe('5000');
      expect(env['LAKESYNC_FLUSH_MAX_AGE_MS']).toBe('30000');
      expect(env['LAKESYNC_SHARDS']).toBe('4'); // the default
    }
  });

  it('bundles minified ESM, with the CommonJS banner and parquet-wasm only where imported, without inline source maps', () => {
    const assets = readdirSync(assemblyDir).filter((d) => d.startsWith('asset.'));
    expect(assets.length).toBeGreaterThan(0);
    let withWasm = 0;
    for (const asset of assets) {
      const code = readFileSync(join(assemblyDir, asset, 'index.mjs'), 'utf8');
      expect(code).not.toContain('sourceMappingURL=data:');
      const hasWasm = existsSync(join(assemblyDir, asset, PARQUET_WASM_FILE));
      // The CommonJS banner only where it is needed (parquet-wasm's Node build).
      expect(code.startsWith(ESM_BANNER)).toBe(hasWasm);
      expect(hasWasm).toBe(code.includes(PARQUET_WASM_FILE));
      if (hasWasm) withWasm++;
    }
    // The flush and jobs fixtures import parquet-wasm (one shared asset: same content).
    expect(withWasm).toBeGreaterThan(0);
  });

  it('routes exactly the documented /v1 operations (minus dev-only ones) to the http function', () => {
    const openapi = JSON.parse(readFileSync(join(ROOT, 'docs/openapi.json'), 'utf8')) as {
      paths: Record<string, Record<string, { tags?: string[] }>>;
    };
    const documented = Object.entries(openapi.paths)
      .flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => !(op.tags ?? []).includes('dev')).map(([m]) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(HTTP_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(documented);
    const httpApi = resources('AWS::ApiGatewayV2::Api').find(([, a]) => a.Properties['ProtocolType'] === 'HTTP')?.[0] as string;
    const onHttp = (r: { Properties: Record<string, unknown> }): boolean => JSON.stringify(r.Properties['ApiId']) === JSON.stringify({ Ref: httpApi });
    const keys = resources('AWS::ApiGatewayV2::Route')
      .filter(([, r]) => onHttp(r))
      .map(([, r]) => r.Properties['RouteKey'] as string)
      .sort();
    expect(keys).toEqual(documented);
    const integrations = resources('AWS::ApiGatewayV2::Integration').filter(([, r]) => onHttp(r));
    expect(integrations).toHaveLength(1);
    expect(integrations[0]?.[1].Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    expect(JSON.stringify(integrations[0]?.[1].Properties['IntegrationUri'])).toContain(functionId('Http'));
    // Preflights are answered by API Gateway, for any origin by default (as the local server).
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: { AllowOrigins: ['*'], AllowHeaders: Match.arrayWith(['authorization', 'content-type']), ExposeHeaders: Match.arrayWith(['x-request-id', 'retry-after']) },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue() },
    });
  });

  it('outputs the API URL', () => {
    const outputs = template.findOutputs('*');
    const url = Object.entries(outputs).find(([id]) => id.startsWith('LakeSyncApiUrl'));
    expect(JSON.stringify(url?.[1])).toContain('execute-api');
    // Clients append /v1/...: no trailing slash.
    const parts = (url?.[1] as { Value: { 'Fn::Join': [string, unknown[]] } }).Value['Fn::Join'][1];
    expect(JSON.stringify(parts.at(-1))).not.toMatch(/\/"?$/);
  });

  it('has the live-updates WebSocket API: three routes to the live function, a wss URL output, a second stream mapping, least-privilege grants', () => {
    const ws = resources('AWS::ApiGatewayV2::Api').filter(([, a]) => a.Properties['ProtocolType'] === 'WEBSOCKET');
    expect(ws).toHaveLength(1);
    const wsId = ws[0]?.[0] as string;
    const routes = resources('AWS::ApiGatewayV2::Route').filter(([, r]) => JSON.stringify(r.Properties['ApiId']) === JSON.stringify({ Ref: wsId }));
    expect(routes.map(([, r]) => r.Properties['RouteKey']).sort()).toEqual(['$connect', '$default', '$disconnect']);
    // Only $default answers (pongs): it alone has a route response.
    expect(routes.filter(([, r]) => r.Properties['RouteResponseSelectionExpression'] !== undefined).map(([, r]) => r.Properties['RouteKey'])).toEqual(['$default']);
    const integrations = resources('AWS::ApiGatewayV2::Integration').filter(([, r]) => JSON.stringify(r.Properties['ApiId']) === JSON.stringify({ Ref: wsId }));
    expect(integrations).toHaveLength(1);
    expect(JSON.stringify(integrations[0]?.[1].Properties['IntegrationUri'])).toContain(functionId('Live'));
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { ApiId: { Ref: wsId }, StageName: 'live', AutoDeploy: true });
    const live = Object.entries(template.findOutputs('*')).find(([id]) => id.startsWith('LakeSyncLiveUrl'));
    expect(JSON.stringify(live?.[1])).toContain('wss://');
    // The stream's second consumer: new log items, at once, from LATEST, never retried.
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('Live') },
      StartingPosition: 'LATEST',
      MaximumRetryAttempts: 0,
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } } }, eventName: ['INSERT'] }) }] },
    });
    const policy = JSON.stringify(resources('AWS::IAM::Policy').find(([id]) => id.startsWith('LakeSyncLiveFunctionServiceRoleDefaultPolicy'))?.[1]);
    // Its connection items only, and only its own stage's connections.
    expect(policy).toContain('"dynamodb:LeadingKeys":["W#live"]');
    expect(policy).not.toContain('dynamodb:BatchWriteItem');
    expect(policy).toContain('/live/POST/@connections/*');
    expect(policy).toContain('/live/DELETE/@connections/*');
    const env = (resources('AWS::Lambda::Function').find(([id]) => id.startsWith('LakeSyncLiveFunction'))?.[1].Properties['Environment'] as { Variables: Record<string, unknown> }).Variables;
    expect(JSON.stringify(env['LAKESYNC_LIVE_ENDPOINT'])).toContain('execute-api');
  });

  it('the app stack takes the token checks from context (lakesync:jwtIssuer, jwtAudience, jwtClientIdClaim)', () => {
    const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS, 'lakesync:jwtIssuer': 'https://idp.example.com', 'lakesync:jwtAudience': 'todo-app', 'lakesync:jwtClientIdClaim': 'device_id' });
    const checked = Template.fromStack(new LakeSyncStack(app, 'LakeSync')).findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: Match.objectLike({ LAKESYNC_JWT_ISSUER: 'https://idp.example.com', LAKESYNC_JWT_AUDIENCE: 'todo-app', LAKESYNC_JWT_CLIENT_ID_CLAIM: 'device_id' }) } },
    });
    expect(Object.keys(checked)).toHaveLength(2);
  });

  it('gives the app stack short output names and the generated secret’s ARN; only the http function may read the secret, by its ARN', () => {
    const app = newApp({ 'lakesync:functionsDir': FIXTURE_FUNCTIONS });
    const t = Template.fromStack(new LakeSyncStack(app, 'LakeSync'));
    const outputs = t.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual(['ApiUrl', 'BucketName', 'GlueDatabaseName', 'JwtSecretArn', 'LiveUrl', 'TableName']);
    const secretId = Object.keys(t.findResources('AWS::SecretsManager::Secret'))[0] as string;
    const fns = Object.entries(t.findResources('AWS::Lambda::Function')) as [string, { Properties: { Environment: { Variables: Record<string, unknown> } } }][];
    for (const [id, fn] of fns) {
      const env = fn.Properties.Environment.Variables;
      expect(env).not.toHaveProperty('LAKESYNC_JWT_SECRET'); // the secret itself is in no function's configuration
      if (/^LakeSync(Http|Live)Function/.test(id)) expect(env['LAKESYNC_JWT_SECRET_ARN']).toEqual({ Ref: secretId });
      else expect(env, id).not.toHaveProperty('LAKESYNC_JWT_SECRET_ARN');
    }
    const readers = Object.entries(t.findResources('AWS::IAM::Policy'))
      .filter(([, p]) => JSON.stringify(p).includes('secretsmanager:GetSecretValue'))
      .map(([id]) => id);
    expect(readers.sort()).toEqual([expect.stringMatching(/^LakeSyncHttpFunctionServiceRoleDefaultPolicy/), expect.stringMatching(/^LakeSyncLiveFunctionServiceRoleDefaultPolicy/)]);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['secretsmanager:GetSecretValue']), Resource: { Ref: secretId } })]) },
    });
  });

  it('has the flush FIFO and jobs queues, each with a dead-letter queue, encrypted and TLS-only', () => {
    const queues = resources('AWS::SQS::Queue');
    expect(queues).toHaveLength(5); // flush, flush DLQ, jobs, jobs DLQ, stream failures
    for (const [, q] of queues) {
      expect(q.Properties['SqsManagedSseEnabled']).toBe(true);
      expect(q.Properties['MessageRetentionPeriod']).toBe(14 * 86_400);
    }
    const fifo = queues.filter(([, q]) => q.Properties['FifoQueue'] === true);
    expect(fifo).toHaveLength(2);
    const flush = queues.find(([id]) => /^LakeSyncFlush[0-9A-F]{8}$/.test(id));
    expect(flush?.[1].Properties).toMatchObject({
      FifoQueue: true,
      ContentBasedDeduplication: true,
      VisibilityTimeout: 6 * 300,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: { 'Fn::GetAtt': [expect.stringMatching(/^LakeSyncFlushDeadLetter/), 'Arn'] } },
    });
    const jobs = queues.find(([id]) => /^LakeSyncJobs[0-9A-F]{8}$/.test(id));
    expect(jobs?.[1].Properties).toMatchObject({
      VisibilityTimeout: 6 * 900,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: { 'Fn::GetAtt': [expect.stringMatching(/^LakeSyncJobsDeadLetter/), 'Arn'] } },
    });
    expect(jobs?.[1].Properties['FifoQueue']).toBeUndefined();
    const policies = resources('AWS::SQS::QueuePolicy');
    expect(policies).toHaveLength(5);
    for (const [, p] of policies) {
      expect(JSON.stringify(p.Properties['PolicyDocument'])).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('wires the stream mapping (batching, filter, bisect, retries, on-failure queue) and SQS mappings with partial batch failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('Stream') },
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 5,
      StartingPosition: 'TRIM_HORIZON',
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LakeSyncStreamFailures'), 'Arn'] } } },
    });
    const stream = resources('AWS::Lambda::EventSourceMapping').find(([, m]) => 'StartingPosition' in m.Properties);
    const filters = (stream?.[1].Properties['FilterCriteria'] as { Filters: Array<{ Pattern: string }> }).Filters;
    expect(filters.map((f) => JSON.parse(f.Pattern) as unknown)).toEqual([
      { dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } } }, eventName: ['INSERT'] },
    ]);
    for (const name of ['Flush', 'Jobs']) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: functionId(name) },
        EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^LakeSync${name}[0-9A-F]{8}$`), 'Arn'] },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    }
  });

  it('has the lake bucket: public access blocked, encrypted, TLS-only, aborts stale multipart uploads, logs access', () => {
    const lake = resources('AWS::S3::Bucket').find(([id]) => id.startsWith('LakeSyncLake'));
    expect(lake?.[1].Properties).toMatchObject({
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' })] },
      LoggingConfiguration: { DestinationBucketName: { Ref: expect.stringMatching(/^LakeSyncAccessLogs/) } },
    });
    const policies = resources('AWS::S3::BucketPolicy');
    expect(policies).toHaveLength(2);
    for (const [, p] of policies) expect(JSON.stringify(p.Properties['PolicyDocument'])).toContain('"aws:SecureTransport":"false"');
  });

  it('has the Glue database and an hourly-or-chosen schedule on the maintenance function', () => {
    template.hasResourceProperties('AWS::Glue::Database', {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseInput: { Name: 'userstack_lakesync' },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(30 minutes)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId('Maintenance'), 'Arn'] } })],
    });
  });

  it('ticks the maintenance function every flush max age (at least a minute) to flush what went quiet', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId('Maintenance'), 'Arn'] }, Input: '{"lakesync":"flush"}' })],
    });
  });

  it('alarms on every dead-letter queue and on every function’s errors', () => {
    const alarms = resources('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms.filter((a) => a['MetricName'] === 'ApproximateNumberOfMessagesVisible')).toHaveLength(3);
    expect(alarms.filter((a) => a['MetricName'] === 'Errors' && a['Namespace'] === 'AWS/Lambda')).toHaveLength(6);
    for (const a of alarms) expect(a['Threshold']).toBe(1);
  });

  it('grants least privilege: Glue scoped to the database and only for the lake writers, deletes only for jobs', () => {
    for (const fn of ['Http', 'Stream', 'Flush', 'Jobs', 'Maintenance']) {
      for (const s of statementsOf(fn)) {
        const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
        expect(actions.some((a) => a === '*' || a.endsWith(':*')), `${fn} ${actions.join()}`).toBe(false);
        if (s.Resource === '*') expect(actions, fn).toEqual(['dynamodb:ListStreams']);
        if (actions.some((a) => a.startsWith('glue:'))) {
          const text = JSON.stringify(s.Resource);
          expect(text).toContain(':catalog');
          expect(text).toContain(':database/userstack_lakesync');
          expect(text).toContain(':table/userstack_lakesync/*');
          expect((s.Resource as unknown[]).length).toBe(3);
        }
      }
    }
    expect(actionsOf('Jobs')).toContain('s3:DeleteObject*');
    for (const fn of ['Http', 'Flush', 'Stream', 'Maintenance']) expect(actionsOf(fn)).not.toContain('s3:DeleteObject*');
    expect(actionsOf('Http').filter((a) => a.startsWith('s3:Put'))).toEqual([]);
    expect(actionsOf('Flush')).toContain('s3:PutObject');
    for (const fn of ['Http', 'Stream', 'Maintenance']) expect(actionsOf(fn).filter((a) => a.startsWith('glue:')), fn).toEqual([]);
    for (const fn of ['Flush', 'Jobs']) expect(actionsOf(fn), fn).toContain('glue:UpdateTable');
    // Maintenance only enqueues: no table data, no bucket. The stream consumer
    // enqueues and materializes the buffer's index (table data), never the bucket.
    expect(actionsOf('Maintenance').filter((a) => a.startsWith('s3:') || a === 'dynamodb:PutItem' || a === 'dynamodb:Query')).toEqual([]);
    expect(actionsOf('Stream').filter((a) => a.startsWith('s3:'))).toEqual([]);
    expect(actionsOf('Stream')).toContain('dynamodb:PutItem');
    for (const fn of ['Stream', 'Maintenance']) expect(actionsOf(fn), fn).toContain('sqs:SendMessage');
    expect(actionsOf('Stream')).toContain('dynamodb:GetRecords');
    expect(JSON.stringify(statementsOf('Stream'))).toContain('StreamArn');
    expect(JSON.stringify(statementsOf('Http'))).not.toContain('StreamArn');
  });
});

describe('LakeSync construct props', () => {
  it('passes an HS256 secret instead of a JWKS URL, narrows CORS, and deletes data on request', async () => {
    const { RemovalPolicy } = await import('aws-cdk-lib');
    const { stack } = constructStack({
      auth: { jwtSecret: 'not-a-real-secret-but-long-enough-0123456789' },
      corsAllowOrigins: ['https://app.example.com'],
      removalPolicy: RemovalPolicy.DESTROY,
      serverAccessLogs: false,
    });
    const t = Template.fromStack(stack);
    // A string secret goes into the environment of the functions that verify tokens as given (and nowhere else).
    const withSecret = t.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: Match.objectLike({ LAKESYNC_JWT_SECRET: 'not-a-real-secret-but-long-enough-0123456789', LAKESYNC_JWKS_URL: Match.absent() }) } },
    });
    expect(Object.keys(withSecret).sort()).toEqual([expect.stringMatching(/^LakeSyncHttpFunction/), expect.stringMatching(/^LakeSyncLiveFunction/)]);
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', { CorsConfiguration: { AllowOrigins: ['https://app.example.com'] } });
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    t.resourceCountIs('AWS::S3::Bucket', 1);
  });

  it('passes the token issuer, audience and client id claim to the functions that verify tokens', () => {
    const { stack } = constructStack({
      auth: { jwksUrl: 'https://idp.example.com/jwks.json', issuer: 'https://idp.example.com', audience: 'todo-app', clientIdClaim: 'device_id' },
    });
    const checked = Template.fromStack(stack).findResources('AWS::Lambda::Function', {
      Properties: {
        Environment: {
          Variables: Match.objectLike({ LAKESYNC_JWT_ISSUER: 'https://idp.example.com', LAKESYNC_JWT_AUDIENCE: 'todo-app', LAKESYNC_JWT_CLIENT_ID_CLAIM: 'device_id' }),
        },
      },
    });
    expect(Object.keys(checked).sort()).toEqual([expect.stringMatching(/^LakeSyncHttpFunction/), expect.stringMatching(/^LakeSyncLiveFunction/)]);
  });

  it('rounds a flush max age that is no whole number of minutes up to the next minute for the flush tick (EventBridge rates are whole minutes)', () => {
    const { stack } = constructStack({ flushMaxAge: Duration.seconds(90) });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(2 minutes)', Targets: [Match.objectLike({ Input: '{"lakesync":"flush"}' })] });
  });

  it('refuses a config too large for the Lambda environment', () => {
    const tables = Array.from({ length: 80 }, (_, i) => ({ name: `table_${i}`, columns: [{ name: 'c', type: 'string' }] }));
    expect(() => constructStack({ config: { schema: { version: 1, tables } } })).toThrow(/environment is \d+ bytes/);
  });

  it('names a missing Lambda entry', () => {
    expect(() => constructStack({ functionsDir: join(ROOT, 'test/infra/no-such-dir') })).toThrow(/missing Lambda entry/);
  });
});
