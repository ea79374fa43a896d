import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Arn, CfnOutput, Duration, RemovalPolicy, Stack, Token, Validations, type CfnElement } from 'aws-cdk-lib';
import { CorsHttpMethod, HttpApi, HttpMethod, LogGroupLogDestination, WebSocketApi, WebSocketStage, type HttpStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Alarm, ComparisonOperator, TreatMissingData, type IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption, type ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { CfnDatabase } from 'aws-cdk-lib/aws-glue';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Architecture, FilterCriteria, FilterRule, Runtime, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  bundleSpec,
  DEFAULT_FUNCTIONS_DIR,
  FUNCTION_NAMES,
  NODE_MAJOR,
  PARQUET_WASM_FILE,
  parquetWasmPath,
  type FunctionName,
} from './bundling.ts';
import { HTTP_ROUTES } from './routes.ts';

/**
 * How the /v1 API verifies bearer tokens (the same choice as the local
 * server): a JWKS URL, or an HS256 secret. Give the secret as a Secrets
 * Manager secret: the http function reads it at run time (its ARN is all
 * its configuration holds). A string is put in the http function's
 * environment as it is.
 */
export type LakeSyncAuth = ({ readonly jwksUrl: string } | { readonly jwtSecret: string | ISecret }) & {
  /** The `iss` every token must carry (checked only when set: set it, and audience, when the identity provider serves other apps). */
  readonly issuer?: string;
  /** The `aud` every token must carry. */
  readonly audience?: string;
  /** The claim naming the client id (default `client_id`). */
  readonly clientIdClaim?: string;
};

/** The app config, as in lakesync.config.json. */
export interface LakeSyncAppConfig {
  readonly schema: unknown;
  readonly rules?: unknown;
}

export interface LakeSyncProps {
  /** Schema and sync rules; passed to every function as LAKESYNC_CONFIG_JSON. */
  readonly config: LakeSyncAppConfig;
  /**
   * JWKS URL (RS256/ES256 tokens from your identity provider; preferred) or an
   * HS256 secret. Only the http function verifies tokens, so only it gets
   * this. A Secrets Manager secret (ISecret) is read by the function at run
   * time, with read access granted on that secret alone; a string is stored
   * in the function's environment (encrypted at rest, but readable with
   * lambda:GetFunctionConfiguration), so use one only for trials.
   */
  readonly auth: LakeSyncAuth;
  /** Directory holding http.ts, stream.ts, flush.ts, jobs.ts, maintenance.ts. Default: this package's functions/aws. */
  readonly functionsDir?: string;
  /** When maintenance (compaction, snapshot expiry, orphan removal, checkpoint refresh) is scheduled. Default: every hour. */
  readonly maintenanceSchedule?: Schedule;
  /** Flush when this many deltas are buffered (LAKESYNC_FLUSH_MAX_DELTAS). */
  readonly flushMaxDeltas?: number;
  /** Flush when the oldest buffered delta is this old (LAKESYNC_FLUSH_MAX_AGE_MS). */
  readonly flushMaxAge?: Duration;
  /** A new checkpoint after this many flushed deltas (LAKESYNC_CHECKPOINT_EVERY). */
  readonly checkpointEvery?: number;
  /**
   * Buffer shards (LAKESYNC_SHARDS): tables are spread over this many logs
   * by a hash of their name, so a hot table only contends with the tables
   * that share its shard; a pull reads every shard. Fixed once deployed
   * (changing it would move tables between logs). Default 4.
   */
  readonly shards?: number;
  /** Deltas kept in the buffer past the newest checkpoint, per shard (LAKESYNC_RETAIN_DELTAS). */
  readonly retainDeltas?: number;
  /** Iceberg snapshots younger than this are kept (LAKESYNC_SNAPSHOT_RETENTION_MS). */
  readonly snapshotRetention?: Duration;
  /** Glue database (= Iceberg namespace). Default: derived from the stack name. */
  readonly glueDatabaseName?: string;
  /** Alarm when a dead-letter queue holds at least this many messages. Default 1. */
  readonly dlqAlarmThreshold?: number;
  /** Alarm when a function reports at least this many errors in 5 minutes. Default 1. */
  readonly functionErrorThreshold?: number;
  /** Where alarms go (for example an SnsAction). Default: alarms only change state. */
  readonly alarmAction?: IAlarmAction;
  /** Table, bucket and log groups on stack deletion. Default RETAIN (the data outlives the stack). */
  readonly removalPolicy?: RemovalPolicy;
  /** S3 server access logs for the lake bucket, into a separate bucket. Default true. */
  readonly serverAccessLogs?: boolean;
  readonly logRetention?: RetentionDays;
  /** Browser origins allowed by CORS. Default any (`*`), as the local server: tokens travel as bearer headers, never cookies. */
  readonly corsAllowOrigins?: readonly string[];
  /** API Gateway stage throttling. Default: the account's limits. */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
  /** Bundle the AWS SDK instead of using the Lambda runtime's copy (pins versions; larger bundles). Default false. */
  readonly bundleAwsSdk?: boolean;
}

interface FunctionSettings {
  readonly memoryMiB: number;
  readonly timeout: Duration;
  readonly description: string;
}

const FUNCTIONS: Readonly<Record<FunctionName, FunctionSettings>> = {
  // 29 s: API Gateway gives up on an integration after 30 s.
  http: { memoryMiB: 1024, timeout: Duration.seconds(29), description: 'LakeSync /v1 API (push, pull, checkpoint, admin, health)' },
  stream: { memoryMiB: 256, timeout: Duration.minutes(1), description: 'LakeSync buffer stream consumer: queues a flush past size/age thresholds, materializes the buffer index' },
  flush: { memoryMiB: 2048, timeout: Duration.minutes(5), description: 'LakeSync flush: buffer to Parquet on S3, committed in Glue' },
  jobs: { memoryMiB: 2048, timeout: Duration.minutes(15), description: 'LakeSync jobs: compact, checkpoint, lifecycle, fanout' },
  maintenance: { memoryMiB: 256, timeout: Duration.minutes(1), description: 'LakeSync maintenance: queues compact/lifecycle/checkpoint jobs' },
  // 29 s: the WebSocket API's integration limit, as for http.
  live: { memoryMiB: 256, timeout: Duration.seconds(29), description: 'LakeSync live updates: WebSocket connect/disconnect/ping; pokes connected clients from the buffer stream' },
};

/** SQS visibility must outlast the consumer's timeout (AWS suggests 6x) or a message is handed out twice. */
function visibilityFor(timeout: Duration): Duration {
  return Duration.seconds(Math.min(timeout.toSeconds() * 6, 43_200));
}

/** A cdk-nag finding id and why it is acceptable. */
type Ack = [id: string, reason: string];

/** Lambda's limit for all environment variables of one function together. */
const ENV_LIMIT_BYTES = 4096;

/**
 * Everything LakeSync needs in one AWS account: the /v1 HTTP API, the
 * DynamoDB buffer and its stream consumer, the flush (FIFO, serial) and jobs
 * queues with dead-letter queues, the S3 lake bucket, the Glue database, the
 * maintenance schedule and alarms. Drop it into any stack.
 */
export class LakeSync extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  /** The live-updates WebSocket API and its stage (clients' `live.url` is the stage's wss:// URL). */
  readonly liveApi: WebSocketApi;
  readonly liveStage: WebSocketStage;
  /** The base URL clients use (ends without a slash). */
  readonly url: string;
  readonly table: Table;
  readonly bucket: Bucket;
  readonly flushQueue: Queue;
  readonly jobsQueue: Queue;
  readonly deadLetterQueues: { readonly flush: Queue; readonly jobs: Queue; readonly stream: Queue };
  readonly glueDatabaseName: string;
  readonly functions: Readonly<Record<FunctionName, NodejsFunction>>;
  readonly alarms: readonly Alarm[];
  /** Stack outputs; a stack may rename them with overrideLogicalId. */
  readonly outputs: { readonly apiUrl: CfnOutput; readonly liveUrl: CfnOutput; readonly bucketName: CfnOutput; readonly glueDatabaseName: CfnOutput; readonly tableName: CfnOutput };

  constructor(scope: Construct, id: string, props: LakeSyncProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const functionsDir = props.functionsDir ?? DEFAULT_FUNCTIONS_DIR;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    // The buffer: log items (pk L#...) and small state items; see docs/dynamodb.md.
    this.table = new Table(this, 'Buffer', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      stream: StreamViewType.NEW_IMAGE,
      timeToLiveAttribute: 'ttl',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
    });

    const accessLogs = props.serverAccessLogs === false ? undefined : this.accessLogsBucket(removalPolicy);
    this.bucket = new Bucket(this, 'Lake', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy,
      ...(accessLogs !== undefined ? { serverAccessLogsBucket: accessLogs as IBucket, serverAccessLogsPrefix: 'lake/' } : {}),
      lifecycleRules: [
        // Parts of a multipart upload whose Lambda died never become files; they
        // would be billed forever. Orphaned complete files (written by a flush
        // whose commit lost) share prefixes with live files, so no prefix rule
        // can tell them apart: the lifecycle job removes them, checking the catalog.
        { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    if (accessLogs === undefined) {
      Validations.of(this.bucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason: 'Server access logs were turned off by the serverAccessLogs prop; CloudTrail data events are the alternative.',
      });
    }

    this.glueDatabaseName = props.glueDatabaseName ?? `${stack.stackName}_${id}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    new CfnDatabase(this, 'GlueDatabase', {
      catalogId: stack.account,
      databaseInput: {
        name: this.glueDatabaseName,
        description: 'LakeSync Iceberg tables',
        locationUri: this.bucket.s3UrlForObject('warehouse'),
      },
    });

    const flushDlq = this.queue('FlushDeadLetter', { fifo: true });
    this.flushQueue = this.queue('Flush', {
      fifo: true,
      // Stream batches retried by Lambda send the same flush request again; dedupe them.
      contentBasedDeduplication: true,
      visibilityTimeout: visibilityFor(FUNCTIONS.flush.timeout),
      deadLetterQueue: { queue: flushDlq, maxReceiveCount: 5 },
    });
    const jobsDlq = this.queue('JobsDeadLetter', {});
    this.jobsQueue = this.queue('Jobs', {
      visibilityTimeout: visibilityFor(FUNCTIONS.jobs.timeout),
      deadLetterQueue: { queue: jobsDlq, maxReceiveCount: 5 },
    });
    // Where stream batches go once retries are exhausted (a record of what was not counted).
    const streamDlq = this.queue('StreamFailures', {});
    Validations.of(streamDlq).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the on-failure destination of the DynamoDB stream mapping; nothing consumes it.',
    });
    this.deadLetterQueues = { flush: flushDlq, jobs: jobsDlq, stream: streamDlq };

    const environment: Record<string, string> = {
      LAKESYNC_DDB_TABLE: this.table.tableName,
      LAKESYNC_BUCKET: this.bucket.bucketName,
      LAKESYNC_WAREHOUSE: this.bucket.s3UrlForObject('warehouse'),
      LAKESYNC_GLUE_DATABASE: this.glueDatabaseName,
      LAKESYNC_FLUSH_QUEUE_URL: this.flushQueue.queueUrl,
      LAKESYNC_JOBS_QUEUE_URL: this.jobsQueue.queueUrl,
      LAKESYNC_CONFIG_JSON: JSON.stringify({ schema: props.config.schema, rules: props.config.rules ?? null }),
      LAKESYNC_SHARDS: String(shardCount(props.shards ?? 4)),
      ...optionalEnv('LAKESYNC_FLUSH_MAX_DELTAS', props.flushMaxDeltas),
      ...optionalEnv('LAKESYNC_FLUSH_MAX_AGE_MS', props.flushMaxAge?.toMilliseconds()),
      ...optionalEnv('LAKESYNC_CHECKPOINT_EVERY', props.checkpointEvery),
      ...optionalEnv('LAKESYNC_RETAIN_DELTAS', props.retainDeltas),
      ...optionalEnv('LAKESYNC_SNAPSHOT_RETENTION_MS', props.snapshotRetention?.toMilliseconds()),
    };
    // Token verification settings: the http function's alone.
    const auth = props.auth;
    const authEnv: Record<string, string> = {
      ...('jwksUrl' in auth
        ? { LAKESYNC_JWKS_URL: auth.jwksUrl }
        : typeof auth.jwtSecret === 'string'
          ? { LAKESYNC_JWT_SECRET: auth.jwtSecret }
          : { LAKESYNC_JWT_SECRET_ARN: auth.jwtSecret.secretArn }),
      ...optionalEnv('LAKESYNC_JWT_ISSUER', auth.issuer),
      ...optionalEnv('LAKESYNC_JWT_AUDIENCE', auth.audience),
      ...optionalEnv('LAKESYNC_JWT_CLIENT_ID_CLAIM', auth.clientIdClaim),
    };
    // Live updates: a WebSocket API whose stage the live function pokes clients through (its Management API).
    this.liveApi = new WebSocketApi(this, 'LiveApi', { description: 'LakeSync live updates (pokes)' });
    this.liveStage = new WebSocketStage(this, 'LiveStage', {
      webSocketApi: this.liveApi,
      stageName: 'live',
      autoDeploy: true,
      ...(props.throttle !== undefined ? { throttle: props.throttle } : {}),
    });
    const liveEnv = { LAKESYNC_LIVE_ENDPOINT: this.liveStage.callbackUrl };
    checkEnvironmentSize({ ...environment, ...authEnv, ...liveEnv });

    const functions = {} as Record<FunctionName, NodejsFunction>;
    for (const name of FUNCTION_NAMES) {
      const env = name === 'http' ? { ...environment, ...authEnv } : name === 'live' ? { ...environment, ...authEnv, ...liveEnv } : environment;
      functions[name] = this.lambda(name, functionsDir, env, props, removalPolicy, logRetention);
    }
    this.functions = functions;
    const { http, stream, flush, jobs, maintenance, live } = functions;

    // Least privilege, per function: what each handler's code calls, nothing more.
    this.table.grantReadWriteData(http); // push, pull
    this.bucket.grantRead(http); // checkpoints are served from S3
    this.flushQueue.grantSendMessages(http); // POST /v1/admin/flush
    if ('jwtSecret' in auth && typeof auth.jwtSecret !== 'string') {
      auth.jwtSecret.grantRead(http); // the HS256 secret, read once per container
      auth.jwtSecret.grantRead(live); // $connect verifies tokens too
    }
    // Its connection items only (partition W#live of the buffer table): keep, forget, list.
    live.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['W#live'] } },
      }),
    );
    // Pokes (POST) and closes (DELETE) connections of this API's stage only.
    live.addToRolePolicy(
      new PolicyStatement({
        actions: ['execute-api:ManageConnections'],
        resources: ['POST', 'DELETE'].map((method) =>
          Arn.format({ service: 'execute-api', resource: this.liveApi.apiId, resourceName: `${this.liveStage.stageName}/${method}/@connections/*` }, Stack.of(this)),
        ),
      }),
    );

    this.flushQueue.grantSendMessages(stream); // it counts from the records; the stream read is granted by the mapping
    this.table.grantReadWriteData(stream); // it materializes the buffer's row and stamp index

    this.table.grantReadWriteData(flush);
    this.bucket.grantRead(flush);
    this.bucket.grantPut(flush); // data files, manifests, metadata; never deletes
    this.grantGlue(flush, 'write');
    this.jobsQueue.grantSendMessages(flush); // checkpoint jobs

    this.table.grantReadWriteData(jobs);
    this.bucket.grantReadWrite(jobs); // includes delete: lifecycle removes orphans and expired snapshots' files
    this.grantGlue(jobs, 'write');
    this.jobsQueue.grantSendMessages(jobs); // fanout

    this.flushQueue.grantSendMessages(maintenance); // age-based flushes
    this.jobsQueue.grantSendMessages(maintenance);

    // Triggers.
    stream.addEventSource(
      // Casts: aws-cdk-lib's classes and interfaces disagree under exactOptionalPropertyTypes.
      new DynamoEventSource(this.table as ITable, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(5),
        bisectBatchOnError: true,
        retryAttempts: 10,
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(streamDlq),
        // Only new log items: state items and TTL deletions never wake the consumer.
        filters: [
          FilterCriteria.filter({
            dynamodb: { Keys: { pk: { S: FilterRule.beginsWith('L#') } } },
            eventName: FilterRule.isEqual('INSERT'),
          }),
        ],
      }),
    );
    // The stream's second consumer: pokes live clients as soon as log items arrive (no batching window).
    // Pokes are best effort: the function never fails a batch, and a poke for an old record is pointless (LATEST).
    live.addEventSource(
      new DynamoEventSource(this.table as ITable, {
        startingPosition: StartingPosition.LATEST,
        batchSize: 100,
        retryAttempts: 0,
        filters: [
          FilterCriteria.filter({
            dynamodb: { Keys: { pk: { S: FilterRule.beginsWith('L#') } } },
            eventName: FilterRule.isEqual('INSERT'),
          }),
        ],
      }),
    );
    flush.addEventSource(new SqsEventSource(this.flushQueue, { batchSize: 10, reportBatchItemFailures: true }));
    // One job per invocation: a compaction may use most of the 15 minutes.
    jobs.addEventSource(new SqsEventSource(this.jobsQueue, { batchSize: 1, reportBatchItemFailures: true }));
    new Rule(this, 'MaintenanceSchedule', {
      description: 'LakeSync maintenance (compaction, snapshot expiry, orphan removal, checkpoint refresh)',
      schedule: props.maintenanceSchedule ?? Schedule.rate(Duration.hours(1)),
      targets: [new LambdaFunction(maintenance, { retryAttempts: 2 })],
    });
    // The stream consumer only runs when records arrive: this tick flushes the
    // last deltas before writes go quiet within the flush max age.
    // EventBridge rates are whole minutes (Schedule.rate refuses 90 seconds): round up.
    const tick = Math.max(1, Math.ceil((props.flushMaxAge ?? Duration.minutes(1)).toSeconds() / 60));
    new Rule(this, 'FlushSchedule', {
      description: 'LakeSync: flush what the buffer still holds once writes go quiet',
      schedule: Schedule.rate(Duration.minutes(tick)),
      targets: [new LambdaFunction(maintenance, { retryAttempts: 2, event: RuleTargetInput.fromObject({ lakesync: 'flush' }) })],
    });

    // The HTTP API with access logs on its default stage.
    this.api = new HttpApi(this, 'Api', {
      description: 'LakeSync /v1',
      createDefaultStage: false,
      // As core/http/app.ts: bearer tokens, no cookies, so any origin may call
      // unless narrowed. API Gateway answers preflights itself (OPTIONS is not routed).
      corsPreflight: {
        allowOrigins: [...(props.corsAllowOrigins ?? ['*'])],
        allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST, CorsHttpMethod.OPTIONS],
        allowHeaders: ['authorization', 'content-type', 'accept', 'x-request-id'],
        exposeHeaders: ['x-request-id', 'retry-after', 'x-lakesync-schema-version'],
        maxAge: Duration.minutes(10),
      },
    });
    const apiLogs = new LogGroup(this, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: { destination: new LogGroupLogDestination(apiLogs) },
      ...(props.throttle !== undefined ? { throttle: props.throttle } : {}),
    });
    const integration = new HttpLambdaIntegration('Http', http);
    for (const route of HTTP_ROUTES) {
      this.api.addRoutes({ path: route.path, methods: [HttpMethod[route.method]], integration });
    }
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'The /v1 app verifies bearer tokens itself (JWKS or HS256, per request, with per-route admin checks); GET /v1/health is public by design.',
    });
    this.url = this.stage.url.replace(/\/$/, '');

    const liveIntegration = new WebSocketLambdaIntegration('Live', live);
    this.liveApi.addRoute('$connect', { integration: liveIntegration });
    this.liveApi.addRoute('$disconnect', { integration: liveIntegration });
    // A route response: the function's answer to a ping (a pong) goes back to the client.
    this.liveApi.addRoute('$default', { integration: liveIntegration, returnResponse: true });
    Validations.of(this.liveApi).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'The live function verifies the bearer token on $connect (offered as a subprotocol) and refuses the handshake; later routes only exist on a connection that passed it.',
    });
    Validations.of(this.liveStage).acknowledge({
      id: 'AwsSolutions-APIG1',
      reason: 'WebSocket stage access logs need the account-wide API Gateway CloudWatch role (AWS::ApiGateway::Account), which this construct must not change for the whole account; the live function logs connects, refusals and pokes itself.',
    });

    this.alarms = this.createAlarms(props);
    this.acknowledgeGrants();

    this.outputs = {
      apiUrl: new CfnOutput(this, 'ApiUrl', { value: this.url, description: 'Point LakeSync clients here' }),
      liveUrl: new CfnOutput(this, 'LiveUrl', { value: this.liveStage.url, description: 'Live updates: the clients’ live.url' }),
      bucketName: new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName, description: 'The lake (Iceberg warehouse under warehouse/)' }),
      glueDatabaseName: new CfnOutput(this, 'GlueDatabaseName', { value: this.glueDatabaseName, description: 'Glue database of the Iceberg tables' }),
      tableName: new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'DynamoDB buffer table' }),
    };
  }

  private accessLogsBucket(removalPolicy: RemovalPolicy): Bucket {
    const logs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      removalPolicy,
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(90) }],
    });
    Validations.of(logs).acknowledge({ id: 'AwsSolutions-S1', reason: 'This is the access-log bucket; logging it into itself would loop.' });
    return logs;
  }

  private queue(id: string, props: { fifo?: boolean; contentBasedDeduplication?: boolean; visibilityTimeout?: Duration; deadLetterQueue?: { queue: Queue; maxReceiveCount: number } }): Queue {
    return new Queue(this, id, {
      ...props,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
  }

  private lambda(
    name: FunctionName,
    functionsDir: string,
    environment: Record<string, string>,
    props: LakeSyncProps,
    removalPolicy: RemovalPolicy,
    logRetention: RetentionDays,
  ): NodejsFunction {
    const settings = FUNCTIONS[name];
    const entry = join(functionsDir, `${name}.ts`);
    if (!existsSync(entry)) throw new Error(`LakeSync: missing Lambda entry ${entry} (functionsDir ${functionsDir})`);
    const id = `${name[0]?.toUpperCase()}${name.slice(1)}Function`;
    const logGroup = new LogGroup(this, `${id}Logs`, { retention: logRetention, removalPolicy });
    const fn = new NodejsFunction(this, id, {
      entry,
      handler: 'handler',
      description: settings.description,
      runtime: runtimeFor(NODE_MAJOR),
      architecture: Architecture.ARM_64,
      memorySize: settings.memoryMiB,
      timeout: settings.timeout,
      environment,
      logGroup,
      bundling: cdkBundling(props.bundleAwsSdk === true, name),
    });
    return fn;
  }

  /**
   * cdk-nag (AwsSolutions IAM4/IAM5) findings left by the grants above, each
   * acknowledged by its exact finding id so a new wildcard still fails the check.
   */
  private acknowledgeGrants(): void {
    const stack = Stack.of(this);
    const lake = stack.resolve(stack.getLogicalId(this.bucket.node.defaultChild as CfnElement)) as string;
    const pseudo = (value: string, name: string): string => (Token.isUnresolved(value) ? `<AWS::${name}>` : value);
    const glueTables = `arn:${pseudo(stack.partition, 'Partition')}:glue:${pseudo(stack.region, 'Region')}:${pseudo(stack.account, 'AccountId')}:table/${this.glueDatabaseName}/*`;
    const s3Reason = 'CDK bucket grant (grantRead/grantPut/grantReadWrite): action wildcards cover object versions and tags, limited to this construct’s lake bucket and its objects.';
    const basic: Ack = ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.'];
    const s3 = (...actions: string[]): Ack[] => [
      ...actions.map((a): Ack => [`AwsSolutions-IAM5[Action::${a}]`, s3Reason]),
      [`AwsSolutions-IAM5[Resource::<${lake}.Arn>/*]`, 'Objects of this construct’s lake bucket only (Iceberg data, manifests and checkpoints have generated keys).'],
    ];
    const glue: Ack = [`AwsSolutions-IAM5[Resource::${glueTables}]`, 'Iceberg tables are created at run time, one pair per synced table; access is limited to this construct’s Glue database.'];
    const read = ['s3:GetObject*', 's3:GetBucket*', 's3:List*'];
    const liveApi = stack.resolve(stack.getLogicalId(this.liveApi.node.defaultChild as CfnElement)) as string;
    const connections = (method: string): Ack => [
      `AwsSolutions-IAM5[Resource::arn:${pseudo(stack.partition, 'Partition')}:execute-api:${pseudo(stack.region, 'Region')}:${pseudo(stack.account, 'AccountId')}:<${liveApi}>/${this.liveStage.stageName}/${method}/@connections/*]`,
      'Connection ids are made by API Gateway at run time; limited to this construct’s WebSocket API, its stage and one method.',
    ];
    const listStreams: Ack = ['AwsSolutions-IAM5[Resource::*]', 'dynamodb:ListStreams (added by the stream event source) supports no resource-level permissions.'];
    const findings: Record<FunctionName, Ack[]> = {
      http: [basic, ...s3(...read)],
      stream: [basic, listStreams],
      flush: [basic, ...s3(...read, 's3:Abort*'), glue],
      jobs: [basic, ...s3(...read, 's3:Abort*', 's3:DeleteObject*'), glue],
      maintenance: [basic],
      live: [basic, listStreams, connections('POST'), connections('DELETE')],
    };
    for (const name of FUNCTION_NAMES) {
      for (const [id, reason] of findings[name]) Validations.of(this.functions[name]).acknowledge({ id, reason });
    }
  }

  /** Glue Data Catalog access limited to this database and its tables (plus the catalog, which Glue requires). */
  private grantGlue(grantee: IGrantable, mode: 'read' | 'write'): void {
    const stack = Stack.of(this);
    const arn = (resource: string, resourceName?: string): string =>
      Arn.format({ service: 'glue', resource, ...(resourceName !== undefined ? { resourceName } : {}) }, stack);
    const actions = ['glue:GetDatabase', 'glue:GetDatabases', 'glue:GetTable', 'glue:GetTables'];
    if (mode === 'write') actions.push('glue:CreateDatabase', 'glue:CreateTable', 'glue:UpdateTable', 'glue:DeleteTable');
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions,
        resources: [arn('catalog'), arn('database', this.glueDatabaseName), arn('table', `${this.glueDatabaseName}/*`)],
      }),
    );
  }

  private createAlarms(props: LakeSyncProps): Alarm[] {
    const alarms: Alarm[] = [];
    const dlqThreshold = props.dlqAlarmThreshold ?? 1;
    for (const [name, queue] of Object.entries(this.deadLetterQueues)) {
      alarms.push(
        new Alarm(this, `${name}DeadLetterAlarm`, {
          alarmDescription: `LakeSync: messages in the ${name} dead-letter queue (work that failed 5 times)`,
          metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
          threshold: dlqThreshold,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    const errorThreshold = props.functionErrorThreshold ?? 1;
    for (const [name, fn] of Object.entries(this.functions)) {
      alarms.push(
        new Alarm(this, `${name}ErrorsAlarm`, {
          alarmDescription: `LakeSync: the ${name} function failed`,
          metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
          threshold: errorThreshold,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    if (props.alarmAction !== undefined) for (const alarm of alarms) alarm.addAlarmAction(props.alarmAction);
    return alarms;
  }
}

function runtimeFor(major: number): Runtime {
  if (major === 22) return Runtime.NODEJS_22_X;
  if (major === 24) return Runtime.NODEJS_24_X;
  throw new Error(`LakeSync: unsupported Node.js runtime ${major}`);
}

/** infra/bundling.ts's shared esbuild settings, as NodejsFunction bundling options. */
export function cdkBundling(bundleAwsSdk: boolean, name?: FunctionName): BundlingOptions {
  const spec = bundleSpec({ bundleAwsSdk, ...(name === undefined ? {} : { function: name }) });
  const wasm = parquetWasmPath();
  return {
    format: OutputFormat.ESM,
    target: spec.target,
    minify: spec.minify,
    sourceMap: spec.sourcemap,
    mainFields: [...spec.mainFields],
    ...(spec.banner === '' ? {} : { banner: spec.banner }),
    externalModules: [...spec.external],
    bundleAwsSDK: bundleAwsSdk,
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      // parquet-wasm's Node build reads its .wasm from next to the bundle; copy it only where referenced.
      afterBundling: (_inputDir: string, outputDir: string) => [
        `if grep -q ${PARQUET_WASM_FILE} "${outputDir}/index.mjs"; then cp "${wasm}" "${outputDir}/"; fi`,
      ],
    },
  };
}

function optionalEnv(name: string, value: number | string | undefined): Record<string, string> {
  return value === undefined ? {} : { [name]: String(value) };
}

function checkEnvironmentSize(env: Record<string, string>): void {
  const bytes = Object.entries(env).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  // Tokens (table names, queue URLs) resolve to longer strings at deploy time: keep headroom.
  if (bytes > ENV_LIMIT_BYTES - 1024) {
    throw new Error(
      `LakeSync: the functions' environment is ${bytes} bytes (Lambda allows ${ENV_LIMIT_BYTES} in total); the config JSON is too large to pass inline`,
    );
  }
}

export { HTTP_ROUTES } from './routes.ts';
export { FUNCTION_NAMES, type FunctionName } from './bundling.ts';

function shardCount(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error('LakeSync: shards must be an integer from 1 to 64');
  return n;
}
