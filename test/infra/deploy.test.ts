/**
 * `cdk bootstrap` and `cdk deploy`, run as a user runs them, against moto's
 * CloudFormation (with the three resource types it lacks added by
 * test/support/moto_cfn.py); then the function code that deploy published
 * (the zips in the bootstrap bucket) runs, with the environment CloudFormation
 * gave each function, against the resources the stack created: a Node client
 * syncs through the http function, the stream consumer triggers a flush,
 * pyiceberg reads the lake through Glue.
 *
 * What moto's CloudFormation does not model is not created (API Gateway,
 * alarms, bucket and queue policies; table TTL, PITR and encryption settings):
 * the template tests (construct.test.ts, nag.test.ts, cfn-lint.test.ts) cover
 * those. The API Gateway in front of the http function is the local bridge
 * (test/support/lambda-driver.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { dynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { DynamoDbLiveConnections } from '../../core/adapters/dynamodb-live-connections.ts';
import { signHs256Token } from '../../core/auth/jwt.ts';
import { clientProtocols } from '../../core/live/protocol.ts';
import type { Schema } from '../../core/schema.ts';
import { LambdaDriver, scheduledEvent, startHttpBridge, type HttpBridge } from '../support/lambda-driver.ts';
import { MOTO_CREDENTIALS, MOTO_REGION, motoClientConfig, motoPyicebergProperties, startMoto, type MotoServer } from '../support/moto.ts';
import { PY_CONV, pythonJson } from '../support/python.ts';
import { APP_CONFIG, ROOT } from './support.ts';

const ACCOUNT = '123456789012';

let moto: MotoServer;
let work: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  moto = await startMoto({ cloudFormation: true, timeoutMs: 60_000 });
  work = mkdtempSync(join(tmpdir(), 'lakesync-deploy-'));
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await moto?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

/** The CDK CLI, as a user runs it, pointed at moto. */
function cdk(args: readonly string[]): string {
  const r = spawnSync(join(ROOT, 'node_modules/.bin/cdk'), args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
    env: {
      ...process.env,
      // "localhost", not 127.0.0.1: moto's CloudFormation finds a template's bucket in a TemplateURL by that name.
      AWS_ENDPOINT_URL: moto.endpoint.replace('127.0.0.1', 'localhost'),
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      AWS_REGION: MOTO_REGION,
      AWS_DEFAULT_REGION: MOTO_REGION,
      CDK_DISABLE_VERSION_CHECK: '1',
      CI: 'true',
    },
  });
  expect(r.status, `cdk ${args.join(' ')}\n${r.stderr}\n${r.stdout}`).toBe(0);
  return `${r.stdout}\n${r.stderr}`;
}

interface Deployed {
  status: string;
  /** Logical id -> [type, status]. */
  resources: Record<string, [string, string]>;
  functions: Record<string, { name: string; runtime: string; handler: string; env: Record<string, string>; dir: string }>;
  mappings: { source: string; function: string; batchSize: number; responseTypes: string[]; filters: string[] }[];
  secret: string;
  glueDatabases: string[];
  queues: Record<string, { fifo: boolean; redrive: string | null }>;
}

/** What the stack created, read back through the AWS APIs (boto3), and each function's published code unpacked. */
function inspect(outDir: string): Deployed {
  return pythonJson<Deployed>(
    `
import boto3, io, json, sys, zipfile
endpoint, out, account, region = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id='testing', aws_secret_access_key='testing')
cf, lam, s3 = boto3.client('cloudformation', **kw), boto3.client('lambda', **kw), boto3.client('s3', **kw)
stack = cf.describe_stacks(StackName='LakeSync')['Stacks'][0]
summaries = cf.list_stack_resources(StackName='LakeSync')['StackResourceSummaries']
template = cf.get_template(StackName='LakeSync')['TemplateBody']
if isinstance(template, str): template = json.loads(template)
functions, env0 = {}, None
for r in summaries:
    if r['ResourceType'] != 'AWS::Lambda::Function': continue
    cfg = lam.get_function_configuration(FunctionName=r['PhysicalResourceId'])
    code = template['Resources'][r['LogicalResourceId']]['Properties']['Code']
    bucket = f'cdk-hnb659fds-assets-{account}-{region}'
    body = s3.get_object(Bucket=bucket, Key=code['S3Key'])['Body'].read()
    target = f"{out}/{r['LogicalResourceId']}"
    zipfile.ZipFile(io.BytesIO(body)).extractall(target)
    functions[r['LogicalResourceId']] = dict(name=cfg['FunctionName'], runtime=cfg['Runtime'], handler=cfg['Handler'], env=cfg.get('Environment', {}).get('Variables', {}), dir=target)
mappings = []
for m in lam.list_event_source_mappings()['EventSourceMappings']:
    mappings.append(dict(source=m['EventSourceArn'].split(':')[2], function=m['FunctionArn'].split(':')[-1], batchSize=m.get('BatchSize', 0),
                         responseTypes=m.get('FunctionResponseTypes', []), filters=[f['Pattern'] for f in m.get('FilterCriteria', {}).get('Filters', [])]))
http = next(f for k, f in functions.items() if k.startswith('LakeSyncHttpFunction'))
secret = boto3.client('secretsmanager', **kw).get_secret_value(SecretId=http['env']['LAKESYNC_JWT_SECRET_ARN'])['SecretString']
sqs = boto3.client('sqs', **kw)
queues = {}
for url in sqs.list_queues().get('QueueUrls', []):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes']
    queues[url.rsplit('/', 1)[1]] = dict(fifo=a.get('FifoQueue') == 'true', redrive=a.get('RedrivePolicy'))
print(json.dumps(dict(
    status=stack['StackStatus'],
    resources={r['LogicalResourceId']: [r['ResourceType'], r['ResourceStatus']] for r in summaries},
    functions=functions, mappings=mappings, secret=secret,
    glueDatabases=[d['Name'] for d in boto3.client('glue', **kw).get_databases()['DatabaseList']],
    queues=queues)))
`,
    [moto.endpoint, outDir, ACCOUNT, MOTO_REGION],
  );
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** A published bundle's handler, loaded as Lambda loads it (index.mjs, export `handler`). */
async function loadHandler(dir: string, handler: string): Promise<Handler> {
  const [file, name] = handler.split('.') as [string, string];
  const mod = (await import(pathToFileURL(join(dir, `${file}.mjs`)).href)) as Record<string, Handler>;
  const fn = mod[name];
  if (typeof fn !== 'function') throw new Error(`${dir}/${file}.mjs exports no ${name}`);
  return fn;
}

describe('cdk deploy', () => {
  it('bootstraps and deploys to moto; the published functions, with the environment the stack gave them, sync a client and flush to Iceberg tables pyiceberg reads', { timeout: 360_000 }, async () => {
    cdk(['bootstrap', `aws://${ACCOUNT}/${MOTO_REGION}`]);
    const out = cdk(['deploy', '--require-approval', 'never', '--output', join(work, 'cdk.out'), '-c', 'lakesync:flushMaxDeltas=20']);
    expect(out).toContain('LakeSync');

    const d = inspect(join(work, 'code'));
    expect(d.status).toBe('CREATE_COMPLETE');
    const created = (type: string): string[] =>
      Object.entries(d.resources)
        .filter(([, [t, s]]) => t === type && s === 'CREATE_COMPLETE')
        .map(([id]) => id);
    expect(created('AWS::Lambda::Function')).toHaveLength(6);
    expect(created('AWS::DynamoDB::Table')).toHaveLength(1);
    expect(created('AWS::SQS::Queue')).toHaveLength(5);
    expect(created('AWS::S3::Bucket').length).toBeGreaterThanOrEqual(1);
    expect(created('AWS::Events::Rule')).toHaveLength(2);
    expect(created('AWS::Lambda::EventSourceMapping')).toHaveLength(4);
    expect(created('AWS::SecretsManager::Secret')).toHaveLength(1);
    expect(created('AWS::Glue::Database')).toHaveLength(1);

    const fn = (prefix: string): Deployed['functions'][string] => {
      const found = Object.entries(d.functions).find(([id]) => id.startsWith(`LakeSync${prefix}Function`));
      if (found === undefined) throw new Error(`no ${prefix} function`);
      return found[1];
    };
    const http = fn('Http');
    for (const f of Object.values(d.functions)) {
      expect(f.handler).toBe('index.handler');
      expect(Number(/^nodejs(\d+)\.x$/.exec(f.runtime)?.[1])).toBeGreaterThanOrEqual(22);
      expect(f.env).not.toHaveProperty('LAKESYNC_JWT_SECRET');
    }
    expect(d.glueDatabases).toContain(http.env['LAKESYNC_GLUE_DATABASE']);
    expect(d.secret.length).toBe(48);
    // The wiring Lambda would run: stream -> stream function (log inserts only), queues -> flush and jobs, with partial batch failures.
    const mapped = (f: Deployed['functions'][string]): Deployed['mappings'] => d.mappings.filter((m) => m.function === f.name);
    expect(mapped(fn('Stream'))).toMatchObject([{ source: 'dynamodb', batchSize: 100, responseTypes: ['ReportBatchItemFailures'] }]);
    expect(JSON.parse(mapped(fn('Stream'))[0]?.filters[0] ?? '{}')).toEqual({ dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } } }, eventName: ['INSERT'] });
    // The stream's second consumer pokes live clients; the same filter.
    expect(mapped(fn('Live'))).toMatchObject([{ source: 'dynamodb', batchSize: 100 }]);
    expect(JSON.parse(mapped(fn('Live'))[0]?.filters[0] ?? '{}')).toEqual({ dynamodb: { Keys: { pk: { S: [{ prefix: 'L#' }] } } }, eventName: ['INSERT'] });
    expect(fn('Live').env['LAKESYNC_LIVE_ENDPOINT']).toMatch(/^https:\/\/.+\.execute-api\..+\/live$/);
    expect(mapped(fn('Flush'))).toMatchObject([{ source: 'sqs', batchSize: 10, responseTypes: ['ReportBatchItemFailures'] }]);
    expect(mapped(fn('Jobs'))).toMatchObject([{ source: 'sqs', batchSize: 1, responseTypes: ['ReportBatchItemFailures'] }]);
    const flushQueue = Object.entries(d.queues).find(([name]) => /Flush[0-9A-F]{8}-.*\.fifo$/.test(name));
    expect(flushQueue?.[1]).toMatchObject({ fifo: true });
    expect(flushQueue?.[1].redrive).toContain('FlushDeadLetter');

    // The published code, in this process, with the deployed environment (plus moto's endpoint and credentials).
    const saved = { ...process.env };
    cleanups.push(() => {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    });
    // moto's CloudFormation gives queue URLs on AWS's own host (as AWS does), and the SQS client sends to
    // a queue URL's host: the same queues at moto's address.
    const atMoto = (url: string): string => url.replace(/^https:\/\/sqs\.[a-z0-9-]+\.amazonaws\.com/, moto.endpoint);
    Object.assign(process.env, http.env, {
      LAKESYNC_FLUSH_QUEUE_URL: atMoto(http.env['LAKESYNC_FLUSH_QUEUE_URL'] as string),
      LAKESYNC_JOBS_QUEUE_URL: atMoto(http.env['LAKESYNC_JOBS_QUEUE_URL'] as string),
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      AWS_REGION: MOTO_REGION,
    });
    for (const f of Object.values(d.functions)) {
      // Every function has the shared settings; only http and live have the auth ones, only live its endpoint.
      for (const [k, v] of Object.entries(f.env)) if (!k.startsWith('LAKESYNC_JWT') && k !== 'LAKESYNC_LIVE_ENDPOINT') expect(process.env[k], k).toBe(k.endsWith('_QUEUE_URL') ? atMoto(v) : v);
    }
    const handlers = {
      http: await loadHandler(http.dir, http.handler),
      stream: await loadHandler(fn('Stream').dir, fn('Stream').handler),
      flush: await loadHandler(fn('Flush').dir, fn('Flush').handler),
      jobs: await loadHandler(fn('Jobs').dir, fn('Jobs').handler),
      maintenance: await loadHandler(fn('Maintenance').dir, fn('Maintenance').handler),
    };
    const sqs = new SQSClient(motoClientConfig(moto));
    cleanups.push(() => sqs.destroy());
    const driver = new LambdaDriver({ endpoint: moto.endpoint, sqs });
    const bridge: HttpBridge = await startHttpBridge(handlers.http as never);
    cleanups.push(() => bridge.close());
    await driver.stream(http.env['LAKESYNC_DDB_TABLE'] as string, handlers.stream as never);
    await driver.queue(process.env['LAKESYNC_FLUSH_QUEUE_URL'] as string, handlers.flush as never);
    await driver.queue(process.env['LAKESYNC_JOBS_QUEUE_URL'] as string, handlers.jobs as never);

    const schema = APP_CONFIG.schema as Schema;
    const client = await LakeSyncClient.open({
      url: bridge.url,
      database: ':memory:',
      clientId: 'device-1',
      schema,
      getToken: ({ clientId }) => signHs256Token(d.secret, { sub: 'user-1', clientId }),
    });
    cleanups.push(() => client.close());
    for (let i = 0; i < 24; i++) client.insert('todos', `t${i}`, { title: `todo ${i}`, done: i % 2 === 0, owner: 'user-1' });
    await client.sync();
    client.update('todos', 't3', { title: 'edited' });
    client.delete('todos', 't4');
    await client.sync();
    // 26 deltas >= 20 (the deployed LAKESYNC_FLUSH_MAX_DELTAS): the stream function queues a flush.
    await driver.pump();
    await driver.invoke('maintenance', handlers.maintenance as never, scheduledEvent());
    await driver.pump();
    const failed = driver.invocations.filter((i) => i.error !== null || i.failed.length > 0);
    expect(failed.map((i) => [i.source, i.error, i.failed])).toEqual([]);
    expect(driver.invocations.some((i) => i.source.includes('Flush'))).toBe(true);

    const expected = (client.db.prepare('SELECT id, title, done, owner FROM todos ORDER BY id').all() as { id: string; title: string; done: number; owner: string }[]).map(
      (r) => ({ _row_id: r.id, title: r.title, done: r.done === 1, owner: r.owner }),
    );
    expect(expected).toHaveLength(23);
    const lake = pythonJson<Record<string, unknown>[]>(
      `${PY_CONV}
import json, sys
from pyiceberg.catalog.glue import GlueCatalog
args = json.loads(sys.argv[1])
rows = GlueCatalog('glue', **args['properties']).load_table(args['table']).scan().to_arrow().to_pylist()
print(json.dumps(sorted([{k: conv(r[k]) for k in ('_row_id', 'title', 'done', 'owner')} for r in rows], key=lambda r: r['_row_id'])))
`,
      [JSON.stringify({ properties: motoPyicebergProperties(moto), table: `${http.env['LAKESYNC_GLUE_DATABASE']}.todos` })],
    );
    expect(lake).toEqual(expected);

    // The published live function: $connect with a valid token (the secret read from Secrets Manager) keeps
    // the connection in the buffer table, without one it refuses the handshake, $disconnect forgets it.
    process.env['LAKESYNC_LIVE_ENDPOINT'] = fn('Live').env['LAKESYNC_LIVE_ENDPOINT'];
    const live = await loadHandler(fn('Live').dir, fn('Live').handler);
    const ddb = new DynamoDBClient(motoClientConfig(moto));
    cleanups.push(() => ddb.destroy());
    const connections = new DynamoDbLiveConnections(dynamoDbApi(ddb), http.env['LAKESYNC_DDB_TABLE'] as string);
    const context = { getRemainingTimeInMillis: () => 29_000 };
    const routeEvent = (eventType: string, headers: Record<string, string> = {}): unknown => ({
      requestContext: { eventType, connectionId: 'conn-1=', requestId: `r-${eventType}`, routeKey: `$${eventType.toLowerCase()}` },
      headers,
      isBase64Encoded: false,
    });
    expect(await live(routeEvent('CONNECT', { 'Sec-WebSocket-Protocol': 'lakesync.v1' }), context)).toMatchObject({ statusCode: 401 });
    const token = await signHs256Token(d.secret, { sub: 'user-1', clientId: 'device-2' });
    expect(await live(routeEvent('CONNECT', { 'Sec-WebSocket-Protocol': clientProtocols(token).join(', ') }), context)).toEqual({
      statusCode: 200,
      headers: { 'Sec-WebSocket-Protocol': 'lakesync.v1' },
    });
    expect((await connections.list()).map((c) => c.id)).toEqual(['conn-1=']);
    expect(await live(routeEvent('DISCONNECT'), context)).toEqual({ statusCode: 200 });
    expect(await connections.list()).toEqual([]);
  });
});
