import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  Context,
  DynamoDBBatchResponse,
  DynamoDBRecord,
  DynamoDBStreamEvent,
  ScheduledEvent,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import { isLogInsert } from '../../functions/aws/stream-records.ts';
import { MOTO_CREDENTIALS, MOTO_REGION } from './moto.ts';

/**
 * A local stand-in for the Lambda service, for the AWS functions run
 * in-process against moto:
 *
 * - `http()`: an HTTP server on 127.0.0.1 that turns each request into an
 *   API Gateway HTTP API (payload v2) event for the http handler, and its
 *   result back into a response, so real clients can talk to it.
 * - `stream()`: polls moto's DynamoDB Streams (GetShardIterator,
 *   GetRecords), applies the event source mapping's filter, and invokes the
 *   consumer with batches; a record reported in `batchItemFailures` (by
 *   SequenceNumber) and everything after it is delivered again, as Lambda
 *   does.
 * - `queue()`: polls an SQS queue (ReceiveMessage), invokes the consumer
 *   with real SQS event batches, deletes what succeeded, makes failed
 *   messages visible again at once, and after `maxReceiveCount` receives
 *   moves a failing message to its DLQ. A failed or timed-out invocation
 *   fails the whole batch.
 *
 * Nothing runs on timers: `pump()` polls every source until a whole round
 * finds no work, so tests are deterministic about when functions run.
 */

export type Handler<E, R> = (event: E, context: Context) => Promise<R>;

export interface Invocation {
  readonly source: string;
  readonly records: number;
  /** Item identifiers reported failed; every record when the invocation itself failed. */
  readonly failed: readonly string[];
  readonly error: string | null;
}

export interface DriverOptions {
  /** moto's endpoint (http://127.0.0.1:port). */
  readonly endpoint: string;
  readonly sqs: SQSClient;
  /** Invocation timeout for every function unless a source says otherwise (Lambda's default is 3 s; ours 60 s). */
  readonly timeoutMs?: number;
}

function lambdaContext(functionName: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${MOTO_REGION}:123456789012:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The invocation, failed when it outlives its timeout (Lambda would kill it; here it is abandoned). */
async function invoke<E, R>(name: string, handler: Handler<E, R>, event: E, timeoutMs: number): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Task timed out after ${timeoutMs} ms`)), timeoutMs + 1000);
  });
  try {
    return await Promise.race([handler(event, lambdaContext(name, timeoutMs)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

// ---------- API Gateway HTTP API (payload v2) ----------

const TEXT_TYPES = /^(text\/|application\/(json|javascript|xml|x-www-form-urlencoded))/i;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

export function apiGatewayEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k === 'cookie') continue;
    headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const cookies = req.headers.cookie?.split(';').map((c) => c.trim());
  const binary = body.length > 0 && !TEXT_TYPES.test(headers['content-type'] ?? '');
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    // As an HTTP API does: the path percent-decoded (%2F included), which the http function must undo.
    rawPath: decodedPath(url.pathname),
    rawQueryString: url.search.slice(1),
    ...(cookies !== undefined ? { cookies } : {}),
    headers,
    ...(url.search.length > 1 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      domainName: headers['host'] ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: binary ? body.toString('base64') : body.toString('utf8') } : {}),
    isBase64Encoded: binary,
  };
}

export interface HttpBridge {
  readonly url: string;
  /** Swap the function (a new container). */
  setHandler(handler: Handler<APIGatewayProxyEventV2, APIGatewayProxyResult>): void;
  close(): Promise<void>;
}

export async function startHttpBridge(
  handler: Handler<APIGatewayProxyEventV2, APIGatewayProxyResult>,
  timeoutMs = 30_000,
): Promise<HttpBridge> {
  let current = handler;
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        const event = apiGatewayEvent(req, await readBody(req));
        const r = await invoke('http', current, event, timeoutMs);
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = String(v);
        for (const [k, v] of Object.entries(r.multiValueHeaders ?? {})) headers[k] = v.map(String);
        const cookies = (r as { cookies?: string[] }).cookies;
        if (cookies !== undefined && cookies.length > 0) headers['set-cookie'] = cookies;
        const body = r.isBase64Encoded === true ? Buffer.from(r.body, 'base64') : Buffer.from(r.body ?? '', 'utf8');
        res.writeHead(r.statusCode, headers);
        res.end(body);
      } catch (e) {
        // What API Gateway answers when the integration fails.
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'Internal Server Error', error: errorText(e) }));
      }
    })();
  });
  // Idle sockets are closed by the client first: a server closing one as the client reuses it resets
  // the request (likely when a test blocks the event loop, e.g. waiting for pyiceberg).
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setHandler: (h) => {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

// ---------- DynamoDB Streams (moto speaks the JSON protocol; it checks no signature) ----------

async function awsJson<T>(endpoint: string, service: 'dynamodb', target: string, body: unknown): Promise<T> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': target,
      authorization: `AWS4-HMAC-SHA256 Credential=${MOTO_CREDENTIALS.accessKeyId}/20260101/${MOTO_REGION}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${target} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** The contract's event source mapping filter: new log items only. */
export const logInsertFilter: (r: DynamoDBRecord) => boolean = isLogInsert;

interface Source {
  readonly name: string;
  /** One poll and (when there was work) one invocation; false when there was nothing to do. */
  step(): Promise<boolean>;
}

export interface StreamSource extends Source {
  setHandler(handler: Handler<DynamoDBStreamEvent, DynamoDBBatchResponse>): void;
  /** Deliver the records of the last successful batch once more (a duplicated delivery). */
  redeliverLast(): void;
}

export interface StreamOptions {
  readonly batchSize?: number;
  readonly filter?: (r: DynamoDBRecord) => boolean;
  readonly maxRetries?: number;
  readonly timeoutMs?: number;
}

export interface QueueSource extends Source {
  readonly queueUrl: string;
  /** Swap the function (a new container), optionally with another timeout. */
  setHandler(handler: Handler<SQSEvent, SQSBatchResponse>, timeoutMs?: number): void;
}

export interface QueueOptions {
  readonly batchSize?: number;
  readonly maxReceiveCount?: number;
  /** Where messages go after maxReceiveCount failed receives; without one they stay. */
  readonly dlqUrl?: string;
  readonly timeoutMs?: number;
}

export class LambdaDriver {
  readonly invocations: Invocation[] = [];
  private readonly sources: Source[] = [];

  constructor(private readonly opts: DriverOptions) {}

  private record(inv: Invocation): void {
    this.invocations.push(inv);
  }

  /** A stream event source mapping on the table's latest stream, from its start (TRIM_HORIZON). */
  async stream(tableName: string, handler: Handler<DynamoDBStreamEvent, DynamoDBBatchResponse>, options: StreamOptions = {}): Promise<StreamSource> {
    const { endpoint } = this.opts;
    const described = await awsJson<{ Table: { LatestStreamArn?: string } }>(endpoint, 'dynamodb', 'DynamoDB_20120810.DescribeTable', { TableName: tableName });
    const streamArn = described.Table.LatestStreamArn;
    if (streamArn === undefined) throw new Error(`table ${tableName} has no stream`);
    const stream = await awsJson<{ StreamDescription: { Shards: { ShardId: string }[] } }>(endpoint, 'dynamodb', 'DynamoDBStreams_20120810.DescribeStream', {
      StreamArn: streamArn,
    });
    const shardId = stream.StreamDescription.Shards[0]?.ShardId;
    if (shardId === undefined) throw new Error(`stream of ${tableName} has no shard`);
    const batchSize = options.batchSize ?? 100;
    const filter = options.filter ?? logInsertFilter;
    const maxRetries = options.maxRetries ?? 10;
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs ?? 60_000;
    let current = handler;
    let lastSeq: string | null = null;
    // Fetched and filtered, not yet processed successfully (the head is retried first).
    let pending: DynamoDBRecord[] = [];
    let lastBatch: DynamoDBRecord[] = [];
    let redeliver: DynamoDBRecord[] = [];
    let attempts = 0;
    const fetchNew = async (): Promise<void> => {
      for (;;) {
        // A fresh iterator each time: moto replaces a table's stream shard when a transaction rolls back.
        const it = await awsJson<{ ShardIterator: string }>(endpoint, 'dynamodb', 'DynamoDBStreams_20120810.GetShardIterator', {
          StreamArn: streamArn,
          ShardId: shardId,
          ...(lastSeq === null ? { ShardIteratorType: 'TRIM_HORIZON' } : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: lastSeq }),
        });
        const got = await awsJson<{ Records: DynamoDBRecord[] }>(endpoint, 'dynamodb', 'DynamoDBStreams_20120810.GetRecords', {
          ShardIterator: it.ShardIterator,
          Limit: 1000,
        });
        if (got.Records.length === 0) return;
        for (const r of got.Records) {
          lastSeq = r.dynamodb?.SequenceNumber ?? lastSeq;
          const at = r.dynamodb?.ApproximateCreationDateTime as unknown;
          const seconds = typeof at === 'number' ? at : typeof at === 'string' ? Date.parse(at) / 1000 : Date.now() / 1000;
          const rec: DynamoDBRecord = { ...r, eventSourceARN: streamArn, dynamodb: { ...r.dynamodb, ApproximateCreationDateTime: Math.floor(seconds) } };
          if (filter(rec)) pending.push(rec);
        }
      }
    };
    const source: StreamSource = {
      name: `stream:${tableName}`,
      setHandler: (h) => {
        current = h;
      },
      redeliverLast: () => {
        redeliver = [...lastBatch];
      },
      step: async () => {
        await fetchNew();
        const fromRedelivery = redeliver.length > 0;
        const batch = fromRedelivery ? redeliver.splice(0, batchSize) : pending.slice(0, batchSize);
        if (batch.length === 0) return false;
        let failedFrom = -1;
        let error: string | null = null;
        try {
          const r = await invoke(source.name, current, { Records: batch }, timeoutMs);
          const ids = (r?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
          if (ids.length > 0) {
            // Lambda restarts from the lowest failed sequence number.
            failedFrom = Math.min(...ids.map((id) => batch.findIndex((b) => b.dynamodb?.SequenceNumber === id)).map((i) => (i < 0 ? 0 : i)));
          }
        } catch (e) {
          failedFrom = 0;
          error = errorText(e);
        }
        const failed = failedFrom < 0 ? [] : batch.slice(failedFrom).map((b) => b.dynamodb?.SequenceNumber ?? '');
        this.record({ source: source.name, records: batch.length, failed, error });
        if (fromRedelivery) {
          if (failedFrom >= 0) redeliver.unshift(...batch.slice(failedFrom));
          return true;
        }
        if (failedFrom < 0) {
          pending = pending.slice(batch.length);
          lastBatch = batch;
          attempts = 0;
        } else {
          pending = pending.slice(failedFrom);
          if (++attempts > maxRetries) {
            // An on-failure destination would get it; here the test sees it in `invocations`.
            pending = pending.slice(1);
            attempts = 0;
          }
        }
        return true;
      },
    };
    this.sources.push(source);
    return source;
  }

  /** An SQS event source mapping with ReportBatchItemFailures. */
  async queue(queueUrl: string, handler: Handler<SQSEvent, SQSBatchResponse>, options: QueueOptions = {}): Promise<QueueSource> {
    const { sqs } = this.opts;
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    const arn = attrs.Attributes?.['QueueArn'] ?? queueUrl;
    let timeoutMs = options.timeoutMs ?? this.opts.timeoutMs ?? 60_000;
    const maxReceiveCount = options.maxReceiveCount ?? 5;
    const fifo = queueUrl.endsWith('.fifo');
    let current = handler;
    const toRecord = (m: Message): SQSRecord => {
      const a = m.Attributes ?? {};
      return {
        messageId: m.MessageId ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
        body: m.Body ?? '',
        attributes: {
          ApproximateReceiveCount: a['ApproximateReceiveCount'] ?? '1',
          SentTimestamp: a['SentTimestamp'] ?? String(Date.now()),
          SenderId: a['SenderId'] ?? 'local',
          ApproximateFirstReceiveTimestamp: a['ApproximateFirstReceiveTimestamp'] ?? String(Date.now()),
          ...(fifo
            ? { MessageGroupId: a['MessageGroupId'], MessageDeduplicationId: a['MessageDeduplicationId'], SequenceNumber: a['SequenceNumber'] }
            : {}),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: arn,
        awsRegion: MOTO_REGION,
      };
    };
    const source: QueueSource = {
      name: `queue:${queueUrl.split('/').pop() ?? queueUrl}`,
      queueUrl,
      setHandler: (h, t) => {
        current = h;
        if (t !== undefined) timeoutMs = t;
      },
      step: async () => {
        const got = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: options.batchSize ?? 10,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
            WaitTimeSeconds: 0,
            VisibilityTimeout: Math.ceil(timeoutMs / 1000) * 6,
          }),
        );
        const messages = got.Messages ?? [];
        if (messages.length === 0) return false;
        const records = messages.map(toRecord);
        let failed: Set<string>;
        let error: string | null = null;
        try {
          const r = await invoke(source.name, current, { Records: records }, timeoutMs);
          failed = new Set((r?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        } catch (e) {
          failed = new Set(records.map((r) => r.messageId));
          error = errorText(e);
        }
        this.record({ source: source.name, records: records.length, failed: [...failed], error });
        for (const r of records) {
          if (!failed.has(r.messageId)) {
            await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
          } else if (options.dlqUrl !== undefined && Number(r.attributes.ApproximateReceiveCount) >= maxReceiveCount) {
            await sqs.send(
              new SendMessageCommand({
                QueueUrl: options.dlqUrl,
                MessageBody: r.body,
                ...(options.dlqUrl.endsWith('.fifo') ? { MessageGroupId: r.attributes.MessageGroupId ?? 'dlq', MessageDeduplicationId: r.messageId } : {}),
              }),
            );
            await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
          } else {
            // Back on the queue at once (a real queue would wait out the visibility timeout).
            await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle, VisibilityTimeout: 0 }));
          }
        }
        return true;
      },
    };
    this.sources.push(source);
    return source;
  }

  /** Poll every source, round after round, until one round finds no work anywhere. */
  async pump(options: { maxRounds?: number; only?: readonly Source[] } = {}): Promise<number> {
    const sources = options.only ?? this.sources;
    const maxRounds = options.maxRounds ?? 200;
    let steps = 0;
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const s of sources) {
        if (await s.step()) {
          busy = true;
          steps++;
        }
      }
      if (!busy) return steps;
    }
    throw new Error(`still busy after ${maxRounds} rounds`);
  }

  /** Invoke a function once with any event (EventBridge schedules). */
  async invoke<E, R>(name: string, handler: Handler<E, R>, event: E): Promise<R> {
    try {
      const r = await invoke(name, handler, event, this.opts.timeoutMs ?? 60_000);
      this.record({ source: name, records: 1, failed: [], error: null });
      return r;
    } catch (e) {
      this.record({ source: name, records: 1, failed: ['event'], error: errorText(e) });
      throw e;
    }
  }
}

/** An EventBridge scheduled event, as a rule with a schedule expression sends it. */
export function scheduledEvent(ruleName = 'lakesync-maintenance'): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: MOTO_REGION,
    resources: [`arn:aws:events:${MOTO_REGION}:123456789012:rule/${ruleName}`],
    detail: {},
  };
}
