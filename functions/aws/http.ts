import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyResult, Context } from 'aws-lambda';
import { Buffer } from 'node:buffer';
import { awsAuthenticator } from './auth.ts';
import { guarded, openShards, shardGuard } from './buffer.ts';
import { AwsFetch, awsFetchOptionsOf } from '../../core/adapters/aws-fetch.ts';
import { S3FetchReader } from '../../core/adapters/aws-fetch-s3.ts';
import { fetchDynamoDbApi } from '../../core/adapters/dynamodb-api-fetch.ts';
import type { DynamoDbApi } from '../../core/adapters/dynamodb-api.ts';
import { getSecretString } from '../../core/adapters/aws-fetch-secrets.ts';
import type { Authenticator } from '../../core/auth/principal.ts';
import { CheckpointService } from '../../core/engine/checkpoints.ts';
import { Gateway } from '../../core/engine/gateway.ts';
import { HybridLogicalClock } from '../../core/hlc.ts';
import { createHttpApp } from '../../core/http/app.ts';
import { CheckpointStore, checkpointRootFor } from '../../core/lake/checkpoint-store.ts';
import type { ObjectStore } from '../../core/lake/ports.ts';
import { jobKey, type JobQueue } from '../../core/lake/queue.ts';
import { awsFetchFromEnv, settingsFromEnv, type AwsSettings } from './env.ts';
import { jsonLog, lambda, perContainer, type Log } from './lambda.ts';

/**
 * API Gateway HTTP API (payload v2) -> the /v1 app (core/http/app.ts):
 * push and pull on the DynamoDB buffer, checkpoints read from S3. Nothing
 * here loads Parquet or Arrow: checkpoints are served by CheckpointStore,
 * which only reads objects. Nor the AWS SDK, whose loading would cost
 * 140-190 ms of each cold start: DynamoDB and S3 are spoken over signed
 * fetch (core/adapters/aws-fetch.ts).
 */
export interface HttpDeps {
  /** The buffer's DynamoDB: the fetch client, or an SDK client whose settings (region, credentials, endpoint) it takes. */
  readonly dynamodb: DynamoDbApi | DynamoDBClient;
  /** Checkpoints are read here: any object store, or an SDK client whose settings the fetch reader takes. */
  readonly s3: ObjectStore | S3Client;
  /** POST /v1/admin/flush enqueues a flush job here; by default an SQS queue client made on first use. */
  readonly flushQueue?: JobQueue;
  /**
   * Reads a Secrets Manager secret's string (the HS256 secret, when
   * settings.jwtSecretArn is set). Default: GetSecretValue over signed fetch,
   * set up like the DynamoDB client (or from the environment).
   */
  readonly secrets?: (secretId: string) => Promise<string>;
  readonly log?: Log;
}

export type HttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResult>;

export function createHttpHandler(deps: HttpDeps, settings: AwsSettings): HttpHandler {
  const dynamodb = 'call' in deps.dynamodb ? deps.dynamodb : fetchDynamoDbApi(new AwsFetch(awsFetchOptionsOf(deps.dynamodb, 'dynamodb')));
  const shards = openShards(dynamodb, settings);
  const gateway = new Gateway({
    buffer: shards,
    schema: settings.schema,
    rules: settings.rules,
    clock: new HybridLogicalClock({ maxDriftMs: settings.maxDriftMs }),
    // One append is at most one DynamoDB transaction (4 MB, ~3.5 MB of packed entries): a larger
    // body is refused up front, as the same BODY_TOO_LARGE, instead of after decoding (docs/dynamodb.md).
    limits: { maxBodyBytes: 3 * 1024 * 1024 },
  });
  const store = 'get' in deps.s3 ? deps.s3 : new S3FetchReader(new AwsFetch(awsFetchOptionsOf(deps.s3, 's3')));
  const checkpoints = new CheckpointStore(store, checkpointRootFor(settings.warehouse, [settings.namespace]));
  let flushQueue: Promise<JobQueue> | null = deps.flushQueue === undefined ? null : Promise.resolve(deps.flushQueue);
  const queue = (): Promise<JobQueue> =>
    (flushQueue ??= (async () => {
      // Loaded on demand: an admin call is rare, and the SQS client should not cost every cold start.
      // (Sent as SqsJobQueue sends, not through it: esbuild would hoist that module's static SDK import into the bundle's top.)
      const { SQSClient, SendMessageCommand } = await import('@aws-sdk/client-sqs');
      const client = new SQSClient({});
      const url = settings.flushQueueUrl;
      return {
        async send(jobs) {
          for (const job of jobs) {
            const fifo = url.endsWith('.fifo') ? { MessageGroupId: 'lakesync', MessageDeduplicationId: jobKey(job) } : {};
            await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(job), ...fifo }));
          }
        },
      };
    })());
  const app = createHttpApp({
    gateway,
    auth: authenticator(deps, settings),
    checkpoints: new CheckpointService(checkpoints, gateway.rules),
    log: deps.log ?? jsonLog,
    // The flush itself runs in the flush function; this only asks for one.
    flushNow: async () => {
      const head = await gateway.head();
      await (await queue()).send([{ kind: 'flush', ref: `admin-${Date.now()}` }]);
      return { queued: 'flush', head };
    },
  });
  return lambda(guarded(shardGuard(dynamodb, settings), apiGatewayV2(app)));
}

/** The HS256 secret (if in Secrets Manager) is read with the DynamoDB client's settings, or from the environment. */
function authenticator(deps: HttpDeps, settings: AwsSettings): Authenticator {
  const read =
    deps.secrets ??
    ((id: string) => {
      const aws = 'call' in deps.dynamodb ? awsFetchFromEnv(process.env, 'secretsmanager') : new AwsFetch(awsFetchOptionsOf(deps.dynamodb, 'secretsmanager'));
      return getSecretString(aws, id);
    });
  return awsAuthenticator(settings, read);
}

/**
 * API Gateway HTTP API payload v2 <-> fetch Request/Response, as
 * hono/aws-lambda's handle() does it for v2 events (headers with non-ASCII
 * values URI-encoded, cookies, base64 bodies unless text or JSON), without
 * its other event kinds and streaming: 4 KB less in the bundle.
 *
 * Unlike hono's, it escapes the path again: an HTTP API hands over rawPath
 * percent-decoded (GET /v1/rows/t/50%25 arrives as /v1/rows/t/50%; REST
 * APIs and function URLs keep the encoding, which is why this adapter is
 * for HTTP APIs only), so a row id holding `#`, `?`, `%` or a space would
 * otherwise be cut short or read as another. A `%2F` is decoded to a `/`
 * before routing, so such a row id cannot be reached through an HTTP API at all.
 */
export function apiGatewayV2(app: { fetch(req: Request): Response | Promise<Response> }): HttpHandler {
  return async (event) => {
    let req: Request;
    try {
      const headers = new Headers();
      if (event.cookies !== undefined) headers.set('cookie', event.cookies.join('; '));
      for (const [k, v] of Object.entries(event.headers ?? {})) if (v) headers.set(k, /[^\x00-\x7F]/.test(v) ? encodeURIComponent(v) : v);
      const body = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : undefined;
      if (body !== undefined) headers.set('content-length', String(body.length));
      const q = event.rawQueryString;
      req = new Request(`https://${event.requestContext.domainName}${event.rawPath.split('/').map(encodeURIComponent).join('/')}${q ? `?${q}` : ''}`, { method: event.requestContext.http.method, headers, ...(body ? { body } : {}) });
    } catch (e) {
      // A request fetch cannot even represent (a bad URL or header) is the caller's error.
      if (!(e instanceof TypeError || e instanceof URIError)) throw e;
      return { statusCode: 400, body: 'Invalid request', isBase64Encoded: false, headers: { 'content-type': 'text/plain;charset=UTF-8' } };
    }
    const res = await app.fetch(req);
    const type = res.headers.get('content-type');
    const encoding = res.headers.get('content-encoding');
    const binary = (type !== null && !/^text\/(?:plain|html|css|javascript|csv)|(?:\/|\+)(?:json|xml)\s*(?:;|$)/i.test(type)) || (!!encoding && !/^identity$/i.test(encoding));
    const cookies = res.headers.getSetCookie();
    res.headers.delete('set-cookie');
    const out: APIGatewayProxyResult & { cookies?: string[] } = {
      statusCode: res.status,
      body: binary ? Buffer.from(await res.arrayBuffer()).toString('base64') : await res.text(),
      isBase64Encoded: binary,
      headers: {},
    };
    res.headers.forEach((v, k) => ((out.headers as Record<string, string>)[k] = v));
    if (cookies.length > 0) out.cookies = cookies;
    return out;
  };
}

export const handler: HttpHandler = perContainer(() =>
  createHttpHandler(
    { dynamodb: fetchDynamoDbApi(awsFetchFromEnv(process.env, 'dynamodb')), s3: new S3FetchReader(awsFetchFromEnv(process.env, 's3')) },
    settingsFromEnv(process.env),
  ),
);
