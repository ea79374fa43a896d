import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { GlueClient } from '@aws-sdk/client-glue';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { BufferShards } from '../../core/engine/shards.ts';
import { openShards, shardGuard } from './buffer.ts';
import { GlueCatalog } from '../../core/adapters/glue-catalog.ts';
import { S3ObjectStore } from '../../core/adapters/s3-object-store.ts';
import { SqsJobQueue } from '../../core/adapters/sqs-job-queue.ts';
import { Checkpoints } from '../../core/lake/checkpoint.ts';
import { checkpointRootFor } from '../../core/lake/checkpoint-store.ts';
import { FanoutMarks, fanoutRootFor, type FanoutTarget } from '../../core/lake/fanout.ts';
import { Lake, type LakeOptions } from '../../core/lake/flush.ts';
import { LakeJobRunner } from '../../core/lake/job-runner.ts';
import type { JobQueue } from '../../core/lake/queue.ts';
import type { AwsSettings } from './env.ts';

/**
 * The lake side of the AWS deployment, as the flush and jobs functions use
 * it: the DynamoDB buffer, Parquet + Iceberg on S3 catalogued in Glue, and
 * the job runner with the jobs queue for follow-ups.
 */
export interface LakeClients {
  readonly dynamodb: DynamoDBClient;
  readonly s3: S3Client;
  readonly glue: GlueClient;
  readonly sqs: SQSClient;
}

export interface LakeOverrides {
  /** Extra Lake options (tests: the fault hook, small chunks). */
  readonly lake?: Partial<LakeOptions>;
  /** Where follow-up jobs go; default the jobs queue. */
  readonly jobsQueue?: JobQueue;
  /** The fan-out target; none by default (fan-out jobs are no-ops). */
  readonly fanout?: FanoutTarget | null;
  readonly now?: () => number;
}

export interface AwsLake {
  readonly shards: BufferShards;
  readonly lake: Lake;
  readonly checkpoints: Checkpoints;
  readonly runner: LakeJobRunner;
  /** Resolves once the table's shard count matches (see buffer.ts shardGuard). */
  readonly guard: () => Promise<void>;
}

export function openAwsLake(clients: LakeClients, settings: AwsSettings, overrides: LakeOverrides = {}): AwsLake {
  const shards = openShards(clients.dynamodb, settings);
  const store = new S3ObjectStore(clients.s3);
  const lake = new Lake({
    catalog: new GlueCatalog(clients.glue, store),
    store,
    schema: settings.schema,
    warehouse: settings.warehouse,
    namespace: [settings.namespace],
    ...(overrides.now !== undefined ? { now: overrides.now } : {}),
    ...overrides.lake,
  });
  const checkpoints = new Checkpoints(lake, checkpointRootFor(settings.warehouse, lake.namespace));
  const runner = new LakeJobRunner({
    buffer: shards,
    lake,
    checkpoints,
    schemaVersion: settings.schema.version,
    jobs: overrides.jobsQueue ?? new SqsJobQueue({ client: clients.sqs, queueUrl: settings.jobsQueueUrl }),
    checkpointEvery: settings.checkpointEvery,
    retainDeltas: settings.retainDeltas,
    snapshotRetentionMs: settings.snapshotRetentionMs,
    orphanAgeMs: settings.orphanAgeMs,
    fanout: overrides.fanout ?? null,
    ...(overrides.fanout != null ? { fanoutMarks: new FanoutMarks(store, fanoutRootFor(settings.warehouse, lake.namespace), overrides.fanout.name) } : {}),
    ...(overrides.now !== undefined ? { now: overrides.now } : {}),
  });
  return { shards, lake, checkpoints, runner, guard: shardGuard(clients.dynamodb, settings) };
}
