import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateDatabaseCommand, GlueClient } from '@aws-sdk/client-glue';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SQSEvent } from 'aws-lambda';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { AwsError, AwsFetch, awsFetchOptionsOf } from '../../core/adapters/aws-fetch.ts';
import { DynamoDbBuffer, createDynamoDbBufferTable } from '../../core/adapters/dynamodb-buffer.ts';
import { signHs256Token } from '../../core/auth/jwt.ts';
import { SqsJobQueue } from '../../core/adapters/sqs-job-queue.ts';
import type { FanoutTarget } from '../../core/lake/fanout.ts';
import type { FlushStep } from '../../core/lake/flush.ts';
import type { JobQueue, LakeJob } from '../../core/lake/queue.ts';
import type { Schema } from '../../core/schema.ts';
import { BufferShards } from '../../core/engine/shards.ts';
import { shardIndexer } from '../../functions/aws/buffer.ts';
import type { AwsSettings } from '../../functions/aws/env.ts';
import { createFlushHandler } from '../../functions/aws/flush.ts';
import { createHttpHandler } from '../../functions/aws/http.ts';
import { createJobsHandler } from '../../functions/aws/jobs.ts';
import type { LakeClients } from '../../functions/aws/lake.ts';
import { createMaintenanceHandler } from '../../functions/aws/maintenance.ts';
import { createStreamHandler } from '../../functions/aws/stream.ts';
import { LambdaDriver, scheduledEvent, startHttpBridge, type HttpBridge, type QueueSource, type StreamSource } from '../support/lambda-driver.ts';
import { motoClientConfig, motoPyicebergProperties, startMoto, type MotoServer } from '../support/moto.ts';
import { PY_CONV, pythonJson } from '../support/python.ts';
import { TEST_SECRET, tokenFor } from '../support/server.ts';

/**
 * The AWS deployment end to end, in-process against moto: Node clients sync
 * through the http function behind an API Gateway v2 bridge; the stream
 * consumer, the flush and jobs consumers and the maintenance function run
 * from moto's DynamoDB Stream, SQS queues and a schedule event, invoked the
 * way Lambda invokes them (test/support/lambda-driver.ts); pyiceberg, with
 * its Glue catalog on moto, reads the tables back.
 */

const SCHEMA: Schema = {
  version: 1,
  tables: [
    {
      name: 'todos',
      columns: [
        { name: 'title', type: 'string' },
        { name: 'done', type: 'boolean' },
        { name: 'owner', type: 'string' },
      ],
    },
    // With 3 shards, todos and notes live in different shards (2 and 1).
    { name: 'notes', columns: [{ name: 'body', type: 'string' }] },
  ],
};

const quiet = (): void => {};
let moto: MotoServer;
let clients: LakeClients;
const nodeClients: LakeSyncClient[] = [];
const bridges: HttpBridge[] = [];

beforeAll(async () => {
  moto = await startMoto();
  const config = motoClientConfig(moto);
  clients = {
    // The buffer retries its own transaction races; SDK retries would only slow a failing test down.
    dynamodb: new DynamoDBClient(config),
    s3: new S3Client(config),
    glue: new GlueClient(config),
    sqs: new SQSClient(config),
  };
});

afterAll(async () => {
  for (const c of nodeClients.splice(0)) await c.close();
  for (const b of bridges.splice(0)) await b.close();
  for (const c of Object.values(clients ?? {})) (c as { destroy(): void }).destroy();
  await moto?.stop();
});

interface Stack {
  readonly settings: AwsSettings;
  readonly dlq: { flush: string; jobs: string };
}

/** What the CDK app deploys, made directly on moto: the table with its stream, bucket, Glue database, queues with DLQs. */
async function deploy(name: string, tuning: Partial<AwsSettings> = {}): Promise<Stack> {
  const table = `${name}-buffer`;
  await createDynamoDbBufferTable(clients.dynamodb, table, { stream: true });
  const bucket = `${name}-lake`;
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const database = name.replace(/-/g, '_');
  await clients.glue.send(new CreateDatabaseCommand({ DatabaseInput: { Name: database } }));
  const queue = async (q: string, fifo: boolean): Promise<string> => {
    const out = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: fifo ? `${q}.fifo` : q, Attributes: fifo ? { FifoQueue: 'true' } : {} }),
    );
    return out.QueueUrl as string;
  };
  const flushQueueUrl = await queue(`${name}-flush`, true);
  const jobsQueueUrl = await queue(`${name}-jobs`, false);
  const dlq = { flush: await queue(`${name}-flush-dlq`, true), jobs: await queue(`${name}-jobs-dlq`, false) };
  return {
    dlq,
    settings: {
      table,
      bucket,
      warehouse: `s3://${bucket}/warehouse`,
      namespace: database,
      flushQueueUrl,
      jobsQueueUrl,
      schema: SCHEMA,
      rules: null,
      auth: { hs256Secret: TEST_SECRET },
      maxDriftMs: 60_000,
      flushMaxDeltas: 25,
      flushMaxAgeMs: 3_600_000,
      checkpointEvery: 10,
      retainDeltas: 0,
      snapshotRetentionMs: 7 * 86_400_000,
      orphanAgeMs: 3_600_000,
      ...tuning,
    },
  };
}

interface Functions {
  readonly driver: LambdaDriver;
  readonly http: HttpBridge;
  readonly stream: StreamSource;
  readonly flush: QueueSource;
  readonly jobs: QueueSource;
  maintenance(): Promise<void>;
  /** Every URL the clients fetched (to see which path initial sync took). */
  readonly fetched: string[];
}

/** The five functions behind the driver, as the event source mappings wire them. */
async function wire(stack: Stack, overrides: { flushQueue?: JobQueue; flushTimeoutMs?: number; s3?: S3Client; fanout?: FanoutTarget } = {}): Promise<Functions> {
  const { settings } = stack;
  const driver = new LambdaDriver({ endpoint: moto.endpoint, sqs: clients.sqs });
  const flushQueue = overrides.flushQueue ?? new SqsJobQueue({ client: clients.sqs, queueUrl: settings.flushQueueUrl });
  const jobsQueue = new SqsJobQueue({ client: clients.sqs, queueUrl: settings.jobsQueueUrl });
  const http = await startHttpBridge(createHttpHandler({ dynamodb: clients.dynamodb, s3: clients.s3, flushQueue, log: quiet }, settings));
  bridges.push(http);
  // The stream consumer materializes the buffer's index (small windows here, so the e2e exercises it).
  const indexed = new BufferShards(
    Array.from({ length: settings.shards ?? 1 }, (_, k) => new DynamoDbBuffer({ client: clients.dynamodb, table: settings.table, shard: String(k), materializeEvery: 5, materializeOnAppend: false })),
  );
  const stream = await driver.stream(settings.table, createStreamHandler({ flushQueue, index: shardIndexer(indexed), log: quiet }, settings));
  const lakeClients = { ...clients, ...(overrides.s3 !== undefined ? { s3: overrides.s3 } : {}) };
  const lakeOverrides = { log: quiet, ...(overrides.fanout !== undefined ? { fanout: overrides.fanout } : {}) };
  const flush = await driver.queue(settings.flushQueueUrl, createFlushHandler(lakeClients, settings, lakeOverrides), {
    dlqUrl: stack.dlq.flush,
    ...(overrides.flushTimeoutMs !== undefined ? { timeoutMs: overrides.flushTimeoutMs } : {}),
  });
  const jobs = await driver.queue(settings.jobsQueueUrl, createJobsHandler(lakeClients, settings, lakeOverrides), { dlqUrl: stack.dlq.jobs });
  const maintenance = createMaintenanceHandler({ flushQueue, jobsQueue, log: quiet }, settings);
  const fetched: string[] = [];
  return {
    driver,
    http,
    stream,
    flush,
    jobs,
    fetched,
    maintenance: async () => {
      await driver.invoke('maintenance', maintenance, scheduledEvent());
    },
  };
}

async function client(fns: Functions, clientId: string): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({
    url: fns.http.url,
    database: ':memory:',
    clientId,
    schema: SCHEMA,
    getToken: ({ clientId: id }) => tokenFor('user-1', id),
    fetch: (input, init) => {
      fns.fetched.push(String(input instanceof Request ? input.url : input));
      return fetch(input, init);
    },
  });
  nodeClients.push(c);
  return c;
}

type Row = { id: string; title: string | null; done: number | null; owner: string | null };

function rows(c: LakeSyncClient): Row[] {
  return c.db.prepare('SELECT id, title, done, owner FROM todos ORDER BY id').all() as Row[];
}

const SCAN = `${PY_CONV}
import json, sys
from pyiceberg.catalog.glue import GlueCatalog
args = json.loads(sys.argv[1])
cat = GlueCatalog('glue', **args['properties'])
out = {}
for name in args['tables']:
    rows = cat.load_table(name).scan().to_arrow().to_pylist()
    out[name] = [{k: conv(v) for k, v in r.items() if k in ('_row_id', '_delta_id', '_op', 'title', 'done', 'owner', 'body')} for r in rows]
print(json.dumps(out))
`;

interface LakeView {
  readonly state: Row[];
  readonly changes: { _delta_id: string; _row_id: string; _op: string }[];
}

function readLake(stack: Stack): LakeView {
  const ns = stack.settings.namespace;
  const out = pythonJson<Record<string, Record<string, unknown>[]>>(SCAN, [
    JSON.stringify({ properties: motoPyicebergProperties(moto), tables: [`${ns}.todos`, `${ns}.todos_changes`] }),
  ]);
  const state = (out[`${ns}.todos`] ?? [])
    .map((r) => ({
      id: r['_row_id'] as string,
      title: (r['title'] ?? null) as string | null,
      done: r['done'] === null || r['done'] === undefined ? null : r['done'] ? 1 : 0,
      owner: (r['owner'] ?? null) as string | null,
    }))
    .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return { state, changes: (out[`${ns}.todos_changes`] ?? []) as unknown as LakeView['changes'] };
}

type Note = { id: string; body: string | null };

function notes(c: LakeSyncClient): Note[] {
  return c.db.prepare('SELECT id, body FROM notes ORDER BY id').all() as Note[];
}

const byId = (x: { id: unknown }, y: { id: unknown }): number => (String(x.id) < String(y.id) ? -1 : String(x.id) > String(y.id) ? 1 : 0);

/** One table's state and change rows, as pyiceberg reads them through Glue. */
function readTable(stack: Stack, table: string): { state: Record<string, unknown>[]; changes: Record<string, unknown>[] } {
  const ns = stack.settings.namespace;
  const out = pythonJson<Record<string, Record<string, unknown>[]>>(SCAN, [
    JSON.stringify({ properties: motoPyicebergProperties(moto), tables: [`${ns}.${table}`, `${ns}.${table}_changes`] }),
  ]);
  return { state: out[`${ns}.${table}`] ?? [], changes: out[`${ns}.${table}_changes`] ?? [] };
}

/** The lake equals the clients, and its change table holds each delta exactly once. */
function expectLakeEquals(stack: Stack, expected: Row[], deltas: number): void {
  const lake = readLake(stack);
  expect(lake.state).toEqual(expected);
  const ids = lake.changes.map((c) => c._delta_id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.length).toBe(deltas);
}

async function queueDepth(url: string): Promise<number> {
  const a = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(a.Attributes?.['ApproximateNumberOfMessages'] ?? 0) + Number(a.Attributes?.['ApproximateNumberOfMessagesNotVisible'] ?? 0);
}

describe('the AWS functions on moto', () => {
  it('two clients sync through the http function; stream-triggered flush, SQS checkpoint and compaction, scheduled maintenance; pyiceberg reads what the clients hold; a new client starts from the checkpoint', async () => {
    const stack = await deploy('e2e');
    const fns = await wire(stack);
    const a = await client(fns, 'client-a');
    const b = await client(fns, 'client-b');
    let deltas = 0;
    for (let i = 0; i < 30; i++) a.insert('todos', `a${i}`, { title: `from a ${i}`, done: false, owner: 'user-1' });
    for (let i = 0; i < 12; i++) b.insert('todos', `b${i}`, { title: `from b ${i}`, done: false, owner: 'user-1' });
    deltas += 42;
    await a.sync();
    await b.sync();
    await a.sync();
    expect(rows(a)).toHaveLength(42);
    expect(rows(b)).toEqual(rows(a));

    // The stream sees 42 deltas >= 25: one flush job; the flush asks for a checkpoint (>= 10 flushed).
    await fns.driver.pump();
    const flushes = fns.driver.invocations.filter((i) => i.source === fns.flush.name);
    expect(flushes.length).toBeGreaterThanOrEqual(1);
    expect(fns.driver.invocations.every((i) => i.error === null && i.failed.length === 0)).toBe(true);
    expectLakeEquals(stack, rows(a), deltas);

    // More writes, below the stream's threshold: the scheduled maintenance flushes them, compacts, checkpoints.
    for (let i = 0; i < 10; i++) b.update('todos', `a${i}`, { done: true });
    for (let i = 0; i < 4; i++) a.delete('todos', `b${i}`);
    a.update('todos', 'a20', { title: 'edited by a' });
    b.update('todos', 'a20', { owner: 'user-1b' });
    deltas += 16;
    await a.sync();
    await b.sync();
    await a.sync();
    expect(rows(b)).toEqual(rows(a));
    await fns.driver.pump();
    expect(fns.driver.invocations.filter((i) => i.source === fns.flush.name)).toHaveLength(flushes.length); // no threshold crossed
    await fns.maintenance();
    await fns.driver.pump();
    expect(fns.driver.invocations.every((i) => i.error === null && i.failed.length === 0)).toBe(true);
    expectLakeEquals(stack, rows(a), deltas);
    expect(rows(a)).toHaveLength(38);
    expect(rows(a).find((r) => r.id === 'a20')).toEqual({ id: 'a20', title: 'edited by a', done: 0, owner: 'user-1b' });

    // The buffer forgot what the lake and the checkpoint hold: a new client must start from the checkpoint.
    const buffer = new DynamoDbBuffer({ client: clients.dynamodb, table: stack.settings.table });
    expect(await buffer.floor()).toBeGreaterThan(0n);
    const c = await client(fns, 'client-c');
    await c.sync();
    expect(rows(c)).toEqual(rows(a));
    expect(fns.fetched.filter((u) => /\/v1\/checkpoint\/[0-9]{15}-[0-9a-f]{8}\/0$/.test(u))).toHaveLength(1);

    // An admin's flush through the API: queued, run by the flush function.
    c.insert('todos', 'c0', { title: 'from c', done: true, owner: 'user-1' });
    await c.sync();
    deltas += 1;
    const res = await fetch(`${fns.http.url}/v1/admin/flush`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await tokenFor('admin', 'admin-client', { role: 'admin' })}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ queued: 'flush' });
    await fns.driver.pump();
    expectLakeEquals(stack, rows(c), deltas);
    expect(await queueDepth(stack.dlq.flush)).toBe(0);
    expect(await queueDepth(stack.dlq.jobs)).toBe(0);
  });

  it('a jobs consumer that throws mid-batch reports only the failed message, which is retried; a malformed job ends in the DLQ; fan-out delivers every delta', async () => {
    // The buffer keeps what fan-out has yet to deliver (see docs/aws.md).
    const stack = await deploy('midbatch', { retainDeltas: 1000 });
    const fannedOut: string[] = [];
    const fanout: FanoutTarget = {
      name: 'test',
      deliver: async (_range, entries) => void fannedOut.push(...entries.map((e) => e.delta.deltaId)),
    };
    // An S3 client that fails the first checkpoint chunk write: the checkpoint job fails, the jobs around it do not.
    const s3 = new S3Client(motoClientConfig(moto));
    let armed = true;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = (args as { input?: { Key?: string } }).input;
        if (armed && context.commandName === 'PutObjectCommand' && input?.Key?.includes('/_checkpoints/') === true && input.Key.endsWith('.pb')) {
          armed = false;
          throw new Error('injected: S3 write failed');
        }
        return next(args);
      },
      { step: 'initialize', name: 'faultInjection' },
    );
    const fns = await wire(stack, { s3, fanout });
    const a = await client(fns, 'client-a');
    for (let i = 0; i < 30; i++) a.insert('todos', `t${i}`, { title: `todo ${i}`, done: i % 2 === 0, owner: 'user-1' });
    await a.sync();
    // Flush only (the stream's flush asks for a checkpoint: leave that in the queue).
    await fns.driver.pump({ only: [fns.stream, fns.flush] });
    const jobs = new SqsJobQueue({ client: clients.sqs, queueUrl: stack.settings.jobsQueueUrl });
    const batch: LakeJob[] = [{ kind: 'compact', table: 'todos' }, { kind: 'lifecycle', table: 'todos' }, { kind: 'compact', table: 'todos_changes' }];
    await jobs.send(batch);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: stack.settings.jobsQueueUrl, MessageBody: '{"kind":"explode"}' }));
    await fns.driver.pump();

    const jobRuns = fns.driver.invocations.filter((i) => i.source === fns.jobs.name);
    // The first batch holds all six messages (checkpoint and fan-out from the flush, our four); exactly the checkpoint and the malformed one fail.
    expect(jobRuns[0]?.records).toBe(6);
    expect(jobRuns[0]?.failed).toHaveLength(2);
    expect(jobRuns[0]?.error).toBeNull();
    expect(armed).toBe(false);
    // The checkpoint succeeded on its retry; the malformed job failed five times and went to the DLQ.
    expect(await queueDepth(stack.settings.jobsQueueUrl)).toBe(0);
    expect(await queueDepth(stack.dlq.jobs)).toBe(1);
    const c = await client(fns, 'client-c');
    await c.sync();
    expect(rows(c)).toEqual(rows(a));
    expect(fns.fetched.some((u) => u.includes('/v1/checkpoint'))).toBe(true);
    expectLakeEquals(stack, rows(a), 30);
    expect(new Set(fannedOut).size).toBe(30);
    expect(new Set(fannedOut)).toEqual(new Set(readLake(stack).changes.map((c) => c._delta_id)));
  });

  it('a poison message on the FIFO flush queue comes back after seconds (its backoff), not after the half-hour visibility timeout', async () => {
    const stack = await deploy('poison');
    const url = stack.settings.flushQueueUrl;
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"kind":"explode"}', MessageGroupId: 'lakesync', MessageDeduplicationId: 'p' }));
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"kind":"flush"}', MessageGroupId: 'lakesync', MessageDeduplicationId: 'f' }));
    // Received as Lambda would, with the queue's half-hour visibility timeout.
    const got = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 1800, MessageSystemAttributeNames: ['All'] }));
    expect(got.Messages).toHaveLength(2);
    const arn = `arn:aws:sqs:us-east-1:123456789012:${url.split('/').pop() as string}`;
    const event = {
      Records: (got.Messages ?? []).map((m) => ({
        messageId: m.MessageId as string,
        receiptHandle: m.ReceiptHandle as string,
        body: m.Body as string,
        attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1' },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: arn,
        awsRegion: 'us-east-1',
      })),
    } as unknown as SQSEvent;
    const logged: { level: string; msg: string }[] = [];
    const flush = createFlushHandler(clients, stack.settings, { log: (e) => void logged.push(e) });
    const out = await flush(event, { getRemainingTimeInMillis: () => 60_000 } as never);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(event.Records.map((r) => r.messageId));
    expect(logged.filter((e) => e.level === 'warn')).toEqual([]);
    const visible = async (): Promise<string[]> =>
      ((await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }))).Messages ?? []).map((m) => m.Body as string);
    await new Promise((r) => setTimeout(r, 11_000));
    expect(await visible()).toContain('{"kind":"explode"}');
  }, 60_000);

  it('a batch of flush requests runs one flush, which asks for one checkpoint, not one per request', async () => {
    const stack = await deploy('coalesce', { checkpointEvery: 1 });
    const fns = await wire(stack);
    const a = await client(fns, 'client-a');
    for (let i = 0; i < 5; i++) a.insert('todos', `t${i}`, { title: `todo ${i}`, done: false, owner: 'user-1' });
    await a.sync();
    const sent: LakeJob[] = [];
    const flush = createFlushHandler(clients, stack.settings, { log: quiet, jobsQueue: { send: async (jobs) => void sent.push(...jobs) } });
    const arn = 'arn:aws:sqs:us-east-1:123456789012:coalesce-flush.fifo';
    const records = ['s1', 's2', 'tick-1'].map((ref, i) => ({
      messageId: `m${i}`,
      receiptHandle: `r${i}`,
      body: JSON.stringify({ kind: 'flush', ref }),
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: arn,
      awsRegion: 'us-east-1',
    }));
    const out = await flush({ Records: records } as unknown as SQSEvent, { getRemainingTimeInMillis: () => 60_000 } as never);
    expect(out.batchItemFailures).toEqual([]);
    // Each checkpoint job builds from every state table; ten at once (a batch of ten requests) build ten times.
    expect(sent.filter((j) => j.kind === 'checkpoint')).toHaveLength(1);
    expectLakeEquals(stack, rows(a), 5);
  }, 60_000);

  it('a duplicated stream record, a stream consumer failing mid-batch, and a flush killed half-way lose nothing and duplicate nothing', async () => {
    const stack = await deploy('faults', { flushMaxDeltas: 5 });
    // The flush queue refuses the stream consumer's first request.
    const real = new SqsJobQueue({ client: clients.sqs, queueUrl: stack.settings.flushQueueUrl });
    let refuse = 1;
    const flaky: JobQueue = {
      send: async (jobs) => {
        if (refuse-- > 0) throw new Error('injected: SQS unavailable');
        await real.send(jobs);
      },
    };
    const fns = await wire(stack, { flushQueue: flaky, flushTimeoutMs: 8_000 });
    // The first flush container hangs right after committing the change table (a Lambda killed by its timeout).
    let hung = 0;
    const hangingFlush = createFlushHandler(clients, stack.settings, {
      log: quiet,
      lake: {
        chunkDeltas: 4,
        fault: async (step: FlushStep) => {
          if (step === 'changes-committed' && hung++ === 1) await new Promise<never>(() => {});
        },
      },
    });
    fns.flush.setHandler(hangingFlush);

    const a = await client(fns, 'client-a');
    const b = await client(fns, 'client-b');
    for (let i = 0; i < 12; i++) a.insert('todos', `t${i}`, { title: `todo ${i}`, owner: 'user-1' });
    await a.sync();
    for (let i = 0; i < 6; i++) b.update('todos', `t${i}`, { done: true });
    await b.sync();
    await a.sync();

    // Stream: the first invocation fails by SequenceNumber and is retried; the flush then hangs and times out.
    await fns.driver.pump({ only: [fns.stream] });
    const streamRuns = fns.driver.invocations.filter((i) => i.source === fns.stream.name);
    expect(streamRuns[0]?.failed.length).toBeGreaterThan(0);
    expect(streamRuns[0]?.failed[0]).toMatch(/^[0-9]+$/);
    expect(streamRuns.at(-1)?.failed).toEqual([]);
    expect(await fns.flush.step()).toBe(true);
    const killed = fns.driver.invocations.filter((i) => i.source === fns.flush.name);
    expect(killed[0]?.error).toMatch(/time/i);
    expect(hung).toBe(2);

    // The same records delivered twice: at most one more (idempotent) flush request.
    const streamCalls = streamRuns.length;
    fns.stream.redeliverLast();
    // A new container picks the flush job up again.
    fns.flush.setHandler(createFlushHandler(clients, stack.settings, { log: quiet, lake: { chunkDeltas: 4 } }), 60_000);
    await fns.driver.pump();
    const redelivered = fns.driver.invocations.filter((i) => i.source === fns.stream.name).slice(streamCalls);
    expect(redelivered.length).toBeGreaterThan(0);
    expect(redelivered[0]?.records).toBe(streamRuns.at(-1)?.records);
    // And a stray flush job after everything: a no-op.
    await real.send([{ kind: 'flush', ref: 'stray' }]);
    await fns.maintenance();
    await fns.driver.pump();

    const flushRuns = fns.driver.invocations.filter((i) => i.source === fns.flush.name);
    expect(flushRuns.slice(1).filter((i) => i.error !== null || i.failed.length > 0)).toEqual([]);
    expect(rows(b)).toEqual(rows(a));
    expectLakeEquals(stack, rows(a), 18);
    expect(await queueDepth(stack.dlq.flush)).toBe(0);
  });

  it('a sharded deployment (3 shards): each table in its own log, flushed, checkpointed and trimmed by its own marks; a new client starts from a checkpoint whose cursor names every shard', async () => {
    const stack = await deploy('sharded', { shards: 3 });
    const fns = await wire(stack);
    const a = await client(fns, 'client-a');
    const b = await client(fns, 'client-b');
    for (let i = 0; i < 20; i++) a.insert('todos', `t${i}`, { title: `todo ${i}`, done: false, owner: 'user-1' });
    for (let i = 0; i < 15; i++) a.insert('notes', `n${i}`, { body: `from a ${i}` });
    for (let i = 0; i < 10; i++) b.insert('notes', `m${i}`, { body: `from b ${i}` });
    await a.sync();
    await b.sync();
    await a.sync();
    expect(notes(b)).toEqual(notes(a));
    expect(rows(b)).toEqual(rows(a));
    expect(notes(a)).toHaveLength(25);
    expect(a.cursor).toBe('0.25.20');
    const shards = new BufferShards([0, 1, 2].map((k) => new DynamoDbBuffer({ client: clients.dynamodb, table: stack.settings.table, shard: String(k) })));
    expect(await shards.heads()).toEqual([0n, 25n, 20n]); // notes in shard 1, todos in shard 2

    // 45 deltas on the stream: a flush of every shard, then a checkpoint and a trim per shard.
    await fns.driver.pump();
    expect(fns.driver.invocations.every((i) => i.error === null && i.failed.length === 0)).toBe(true);
    expectLakeEquals(stack, rows(a), 20);
    const lakeNotes = readTable(stack, 'notes');
    expect(lakeNotes.state.map((r) => ({ id: r['_row_id'], body: r['body'] })).sort(byId)).toEqual(notes(a));
    expect(new Set(lakeNotes.changes.map((r) => r['_delta_id'])).size).toBe(25);
    expect(lakeNotes.changes).toHaveLength(25);
    expect(await shards.flushed()).toEqual([0n, 25n, 20n]);
    const floors = await shards.floors();
    expect(floors[1]).toBeGreaterThan(0n);
    expect(floors[2]).toBeGreaterThan(0n);

    // A new client cannot pull from the start any more: it loads the checkpoint, then pulls on from its cursor.
    const c = await client(fns, 'client-c');
    await c.sync();
    expect(notes(c)).toEqual(notes(a));
    expect(rows(c)).toEqual(rows(a));
    expect(fns.fetched.some((u) => /\/v1\/checkpoint\/[0-9]{15}-[0-9a-f]{8}\/0$/.test(u))).toBe(true);
    c.insert('notes', 'c0', { body: 'from c' });
    c.update('todos', 't3', { done: true });
    await c.sync();
    await a.sync();
    expect(notes(a)).toEqual(notes(c));
    expect(rows(a)).toEqual(rows(c));
    expect(a.cursor).toBe('0.26.21');
    expect(await queueDepth(stack.dlq.flush)).toBe(0);
    expect(await queueDepth(stack.dlq.jobs)).toBe(0);
  });

  it('a deployment opened with another shard count than its table was written with refuses to run, in every function, and writes nothing', async () => {
    const stack = await deploy('reshard', { shards: 2 });
    const fns = await wire(stack);
    const a = await client(fns, 'client-a');
    a.insert('todos', 't0', { title: 'x', done: false, owner: 'user-1' });
    await a.sync(); // the first push records 2 shards
    const wrong = { ...stack.settings, shards: 4 };
    const http = await startHttpBridge(createHttpHandler({ dynamodb: clients.dynamodb, s3: clients.s3, log: quiet }, wrong));
    bridges.push(http);
    const res = await fetch(`${http.url}/v1/pull?cursor=`, { headers: { authorization: `Bearer ${await tokenFor('user-1', 'client-b')}` } });
    expect(res.status).toBe(500);
    const flush = createFlushHandler(clients, wrong, { log: quiet });
    await expect(fns.driver.invoke('flush-wrong', flush, { Records: [] })).rejects.toThrow(/holds a 2-shard buffer; set LAKESYNC_SHARDS to 2, not 4/);
    const shards = new BufferShards([0, 1, 2, 3].map((k) => new DynamoDbBuffer({ client: clients.dynamodb, table: stack.settings.table, shard: String(k) })));
    expect(await shards.heads()).toEqual([1n, 0n, 0n, 0n]); // todos is in shard 0 of 2; nothing else was written
  });

  it('reads its HS256 secret from Secrets Manager at the first request: 503 AUTH_UNAVAILABLE while it cannot, then tokens signed with it are accepted', async () => {
    const stack = await deploy('secret');
    const settings: AwsSettings = { ...stack.settings, auth: {}, jwtSecretArn: 'lakesync/jwt' };
    const http = await startHttpBridge(createHttpHandler({ dynamodb: clients.dynamodb, s3: clients.s3, log: quiet }, settings));
    bridges.push(http);
    const pull = async (): Promise<Response> =>
      fetch(`${http.url}/v1/pull?cursor=`, { headers: { authorization: `Bearer ${await tokenFor('user-1', 'client-a')}` } });
    const missing = await pull();
    expect(missing.status).toBe(503);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('AUTH_UNAVAILABLE');
    // The secret appears (as CloudFormation would create it); the next request reads it.
    const sm = new AwsFetch(await awsFetchOptionsOf(clients.dynamodb, 'secretsmanager'));
    await sm.send(
      (url) => ({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.CreateSecret' },
        body: JSON.stringify({ Name: 'lakesync/jwt', SecretString: TEST_SECRET }),
      }),
      (res, text) => new AwsError('CreateSecretFailed', text, res.status, undefined),
    );
    const ok = await pull();
    expect(ok.status).toBe(200);
    const forged = await fetch(`${http.url}/v1/pull?cursor=`, {
      headers: { authorization: `Bearer ${await signHs256Token('another-secret-that-is-at-least-32-bytes', { sub: 'user-1', clientId: 'client-a' })}` },
    });
    expect(forged.status).toBe(401);
  });

  it('refuses a push body over 3 MiB with 413 BODY_TOO_LARGE before reading it: one append is one DynamoDB transaction (4 MB)', async () => {
    const stack = await deploy('body');
    const http = await startHttpBridge(createHttpHandler({ dynamodb: clients.dynamodb, s3: clients.s3, log: quiet }, stack.settings));
    bridges.push(http);
    const res = await fetch(`${http.url}/v1/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await tokenFor('user-1', 'client-a')}`, 'content-type': 'application/x-protobuf', accept: 'application/json' },
      body: new Uint8Array(3 * 1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BODY_TOO_LARGE');
  });
});
