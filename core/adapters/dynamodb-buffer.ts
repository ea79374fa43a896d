import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { LakeSyncError } from '../errors.ts';
import type { Hlc } from '../hlc.ts';
import {
  FORGOTTEN,
  type AppendResult,
  type DeltaBuffer,
  type LogEntry,
  type LogEntryDraft,
  type ReadResult,
  type RowRef,
  type RowWrite,
  type StoredRow,
} from '../engine/ports.ts';
import { Packer, packRow, packSegment, SegmentReader, unpackRow } from '../codec/storage.ts';

/**
 * DeltaBuffer on one DynamoDB table (single-table design), for the AWS
 * deployment: many Lambdas append and read at once.
 *
 * Keys: partition key `pk` (S), sort key `sk` (S). Numbers in sort keys are
 * zero-padded 20-digit decimals (u64 fits), so string order is numeric order.
 *
 * | item      | pk                     | sk          | attributes                                   |
 * |-----------|------------------------|-------------|----------------------------------------------|
 * | head      | `H#<shard>`            | `-`         | v: last seq handed out (N)                   |
 * | meta      | `M#<shard>`            | `-`         | flushed (N), floor (N)                       |
 * | log       | `L#<shard>`            | first seq   | n: entry count (N), b: packSegment body (B)  |
 * | stamp     | `S#<clientId>`         | hlc         | d: delta id, q: seq (N) — or t, i (pending)  |
 * | row       | `R#<len>:<table>:<id>` | `-`         | v: version (N), s: packRow state (B) [+lock] |
 * | txn       | `T#<txn id>`           | `-`         | st: 'c' committed (f: first seq) / 'a'       |
 *
 * Server order. An append is one TransactWriteItems holding the head
 * counter's update (condition: v still equals the head we read), the log
 * items of its entries (seqs head+1..head+n), one stamp item per entry
 * (condition attribute_not_exists: a stored or repeated stamp cancels the
 * transaction → conflict) and the row items (condition on the expected
 * version). Two appends that read the same head both condition on it, so one
 * of them is cancelled and retries with the new head (inside append(); it is
 * not the engine's conflict). The head counter is therefore the
 * serialization point: a head value v is only ever visible together with
 * every log item up to v. read() first reads the head (strongly consistent
 * GetItem, serializable with transactions), then queries log items with
 * sk <= head only: every transaction that wrote a seq <= head has completed,
 * so a consistent Query sees all of them, and a later transaction that is
 * half visible to Query (Query is only read-committed across a
 * transaction's items) lies above head and is not looked at. No reader can
 * ever skip a seq.
 *
 * Packing and the 400 KB item limit. An append writes its entries as one
 * packSegment body, like a SQLite segment, split into several log items of
 * at most SEGMENT_BYTES (350 KB) each when it is larger (each item has its
 * own first seq and count), all inside the same transaction.
 *
 * Transaction limits (100 items, 4 MB). An append that fits (1 head + log
 * items + stamps + rows <= 100 items, under ~3.5 MB) is one transaction.
 * A larger one (a 1,000-delta push) cannot be: it is committed in two
 * phases with a commit record, so it stays atomic for readers:
 *  1. prepare: stamps are put as *pending* (t = txn id, i = index; condition
 *     attribute_not_exists) and rows are *locked* (x = txn id, ps = new
 *     state; condition on the expected version and no lock), in
 *     transactions of up to 100 items. A failed condition aborts: the
 *     record T#txn is put as 'a', the pending items are removed, and the
 *     result is a conflict.
 *  2. commit: one transaction with the head update, all log items and the
 *     record T#txn put as 'c' with its first seq (condition
 *     attribute_not_exists, so commit and abort exclude each other). The log
 *     items of one append must fit in this transaction: an append whose
 *     packed entries exceed ~3.5 MB fails with BODY_TOO_LARGE (keep
 *     maxBodyBytes at 3 MB or less with this buffer). If the commit's
 *     answer is lost and the record turns out committed, the append is ok.
 *  3. finalize: locked rows roll forward (state = ps, version + 1).
 *     Pending stamps stay pending: existing() resolves them through the
 *     record (seq = f + i) — they are only read for duplicates.
 * Readers resolve a lock or pending stamp through its record: committed →
 * the new state / a stored stamp (and roll the row forward); aborted →
 * clean it up; no record and older than LOCK_LEASE_MS → the writer died:
 * put the record as 'a' (it can then never commit), clean up. An in-flight
 * prepare makes a competing append of the same stamps or rows conflict
 * until it commits or its lease ends.
 *
 * Trim deletes whole log items whose last seq <= min(upTo, flushed)
 * (BatchWriteItem) after raising the floor in the meta item, so floor()
 * never promises an entry that is gone. Stamps stay (they deduplicate
 * forever; a stamp with seq <= floor answers FORGOTTEN). Optionally, give
 * log items a TTL attribute (`ttlAttribute`, epoch seconds, now +
 * `ttlSeconds`) as a safety net against a trim that never runs; the floor
 * is not raised by TTL deletion, so keep the TTL far above the flush
 * interval (a pull below a TTL-deleted item would miss entries).
 *
 * Write units, ~200-byte deltas, pushes of 10: per append 1 head item
 * (<1 KB: 2 WCU transactional), 1 log item (~2 KB: 4-6 WCU), 10 stamps
 * (2 WCU each) and 10 rows (~0.3 KB, 2 WCU each): ~46-48 WCU per 10
 * deltas, ~4,600-4,800 WCU per 1,000 deltas. Stamps and rows dominate (4
 * WCU per delta); unpacked, the log would cost 2 WCU per delta, not ~0.5.
 * Counted from the items sent in test/lake/dynamodb-buffer.test.ts (moto
 * reports no consumed capacity for transactions): 4,600 WCU per 1,000
 * deltas in pushes of 10; 5,420 in pushes of 100, which take the two-phase
 * path (a push fits one transaction up to ~49 deltas with their rows) and
 * pay one more write per row to finalize it. `consumedWriteUnits` sums what
 * real DynamoDB reports for the commit transactions.
 *
 * Sharding (not used yet: the port has one global seq space). The head,
 * meta and log partitions are keyed by `shard`, e.g. a hash of the delta's
 * table name: each shard would have its own counter, so appends to
 * different shards do not contend. The pull cursor would then become a
 * vector of per-shard seqs ({shard: seq}), each read with read() above;
 * floor and flushed would be per shard too. Stamps are per client, not per
 * shard (a stamp is unique across tables), and rows are keyed by table
 * already. An append touching several shards would update each touched
 * counter in its one transaction.
 */
export interface DynamoDbBufferOptions {
  readonly client: DynamoDBClient;
  readonly table: string;
  /** The shard of the head/meta/log partitions (see above). Default '0'. */
  readonly shard?: string;
  /** Give log items this TTL attribute (epoch seconds), `ttlSeconds` from their append. */
  readonly ttlAttribute?: string;
  readonly ttlSeconds?: number;
  /** How long a prepared, uncommitted large append holds its stamps and rows. Default 60 s. */
  readonly lockLeaseMs?: number;
}

/** Largest log item body: under the 400 KB item limit, with room for keys and attributes. */
const SEGMENT_BYTES = 350_000;
/** DynamoDB's limits per TransactWriteItems, with a margin for the size. */
const TX_ITEMS = 100;
const TX_BYTES = 3_500_000;
const BATCH_GET = 100;
const BATCH_WRITE = 25;
const MAX_HEAD_RETRIES = 1000;

const pad = (n: bigint | number): string => n.toString().padStart(20, '0');
const N = (n: bigint | number): AttributeValue => ({ N: n.toString() });
const S = (s: string): AttributeValue => ({ S: s });

function rowPk(table: string, rowId: string): string {
  return `R#${table.length}:${table}:${rowId}`;
}

/** Create the table (on-demand capacity). For tests and first deployments. */
export async function createDynamoDbBufferTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
}

interface Cancellation {
  readonly codes: string[];
  readonly items: (Record<string, AttributeValue> | undefined)[];
}

function cancellation(err: unknown): Cancellation | null {
  const e = err as { name?: string; CancellationReasons?: { Code?: string; Item?: Record<string, AttributeValue> }[] };
  if (e.name !== 'TransactionCanceledException') return null;
  const reasons = e.CancellationReasons ?? [];
  return { codes: reasons.map((r) => r.Code ?? 'None'), items: reasons.map((r) => r.Item) };
}

function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string }).name === 'ConditionalCheckFailedException';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type TxnState = { readonly state: 'committed'; readonly first: bigint } | { readonly state: 'aborted' } | { readonly state: 'open' };

interface Segment {
  readonly first: number; // index of its first entry in the append
  readonly count: number;
  readonly body: Uint8Array;
}

export class DynamoDbBuffer implements DeltaBuffer {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly headKey: Record<string, AttributeValue>;
  private readonly metaKey: Record<string, AttributeValue>;
  private readonly logPk: string;
  private readonly lease: number;
  /** Our last view of the head: the first guess of the next append. */
  private knownHead = 0n;
  private readonly packer = new Packer();
  /** Total write units consumed so far (as DynamoDB reports them). */
  consumedWriteUnits = 0;

  constructor(private readonly options: DynamoDbBufferOptions) {
    this.client = options.client;
    this.table = options.table;
    const shard = options.shard ?? '0';
    this.headKey = { pk: S(`H#${shard}`), sk: S('-') };
    this.metaKey = { pk: S(`M#${shard}`), sk: S('-') };
    this.logPk = `L#${shard}`;
    this.lease = options.lockLeaseMs ?? 60_000;
  }

  // ---- stamps ----

  async existing(clientId: string, hlcs: readonly Hlc[]): Promise<(string | null)[]> {
    const out = new Array<string | null>(hlcs.length).fill(null);
    if (hlcs.length === 0) return out;
    let min = hlcs[0] as Hlc;
    let max = min;
    for (const h of hlcs) {
      if (h < min) min = h;
      if (h > max) max = h;
    }
    const pk = `S#${clientId}`;
    // One range query finds every stored stamp of this batch: usually none.
    // If far more stamps lie in between than the batch holds, ask by key instead.
    const cap = 2 * hlcs.length + 16;
    let found: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          ConsistentRead: true,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          ExpressionAttributeValues: { ':pk': S(pk), ':lo': S(pad(min)), ':hi': S(pad(max)) },
          Limit: cap + 1 - found.length,
          ExclusiveStartKey: start,
        }),
      );
      found.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start !== undefined && found.length <= cap);
    if (found.length === 0) return out;
    if (found.length > cap) {
      const keys = [...new Set(hlcs)].map((h) => ({ pk: S(pk), sk: S(pad(h)) }));
      found = await this.batchGet(keys);
    }
    const byHlc = new Map<string, Record<string, AttributeValue>>();
    for (const item of found) byHlc.set(item.sk?.S as string, item);
    const floor = await this.metaValue('floor');
    for (let i = 0; i < hlcs.length; i++) {
      const item = byHlc.get(pad(hlcs[i] as Hlc));
      if (item === undefined) continue;
      const seq = await this.stampSeq(item);
      if (seq !== null) out[i] = seq <= floor ? FORGOTTEN : (item.d?.S as string);
    }
    return out;
  }

  /** The seq of a stored stamp; null for a pending stamp of an open or aborted append (removed if aborted). */
  private async stampSeq(item: Record<string, AttributeValue>): Promise<bigint | null> {
    if (item.q !== undefined) return BigInt(item.q.N as string);
    const txn = item.t?.S as string;
    const state = await this.resolveTxn(txn, Number(item.ts?.N ?? '0'));
    if (state.state === 'committed') return state.first + BigInt(item.i?.N as string);
    if (state.state === 'aborted') {
      await this.ignoreCondition(
        this.client.send(
          new DeleteItemCommand({
            TableName: this.table,
            Key: { pk: item.pk as AttributeValue, sk: item.sk as AttributeValue },
            ConditionExpression: 't = :t',
            ExpressionAttributeValues: { ':t': S(txn) },
          }),
        ),
      );
    }
    return null;
  }

  // ---- rows ----

  async loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    const out = new Array<StoredRow | undefined>(keys.length);
    if (keys.length === 0) return out;
    const unique = [...new Set(keys.map((k) => rowPk(k.table, k.rowId)))];
    const items = await this.batchGet(unique.map((pk) => ({ pk: S(pk), sk: S('-') })));
    const byPk = new Map<string, Record<string, AttributeValue>>();
    for (const item of items) byPk.set(item.pk?.S as string, item);
    const rows = new Map<string, StoredRow | undefined>();
    for (const k of keys) {
      const pk = rowPk(k.table, k.rowId);
      if (rows.has(pk)) continue;
      const item = byPk.get(pk);
      rows.set(pk, item === undefined ? undefined : await this.rowOf(k.table, k.rowId, item));
    }
    for (let i = 0; i < keys.length; i++) out[i] = rows.get(rowPk((keys[i] as RowRef).table, (keys[i] as RowRef).rowId));
    return out;
  }

  /** A row item's current row; a lock is resolved (and rolled forward or back) first. */
  private async rowOf(table: string, rowId: string, item: Record<string, AttributeValue>): Promise<StoredRow | undefined> {
    const version = Number(item.v?.N ?? '0');
    const committed = (): StoredRow | undefined =>
      version === 0 ? undefined : { version, state: unpackRow(table, rowId, item.s?.B as Uint8Array) };
    const txn = item.x?.S;
    if (txn === undefined) return committed();
    const state = await this.resolveTxn(txn, Number(item.xt?.N ?? '0'));
    if (state.state === 'open') return committed(); // an append in flight: a competing write will conflict
    const key = { pk: item.pk as AttributeValue, sk: item.sk as AttributeValue };
    if (state.state === 'committed') {
      await this.rollForward(key, txn);
      return { version: version + 1, state: unpackRow(table, rowId, item.ps?.B as Uint8Array) };
    }
    await this.rollBack(key, txn, version);
    return committed();
  }

  private rollForward(key: Record<string, AttributeValue>, txn: string): Promise<void> {
    return this.ignoreCondition(
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: 'SET v = v + :one, s = ps REMOVE x, ps, xt',
          ConditionExpression: 'x = :x',
          ExpressionAttributeValues: { ':one': N(1), ':x': S(txn) },
        }),
      ),
    );
  }

  private rollBack(key: Record<string, AttributeValue>, txn: string, version: number): Promise<void> {
    const cond = { ConditionExpression: 'x = :x', ExpressionAttributeValues: { ':x': S(txn) } };
    return this.ignoreCondition(
      this.client.send(
        version === 0
          ? new DeleteItemCommand({ TableName: this.table, Key: key, ...cond })
          : new UpdateItemCommand({ TableName: this.table, Key: key, UpdateExpression: 'REMOVE x, ps, xt', ...cond }),
      ),
    );
  }

  /** The fate of a large append; a dead writer's (no record, lease over) is decided as aborted. */
  private async resolveTxn(txn: string, lockedAt: number): Promise<TxnState> {
    const key = { pk: S(`T#${txn}`), sk: S('-') };
    for (;;) {
      const got = await this.client.send(new GetItemCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
      const st = got.Item?.st?.S;
      if (st === 'c') return { state: 'committed', first: BigInt(got.Item?.f?.N as string) };
      if (st === 'a') return { state: 'aborted' };
      if (Date.now() - lockedAt < this.lease) return { state: 'open' };
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: { ...key, st: S('a') },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        return { state: 'aborted' };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        // It committed (or was aborted) meanwhile: read again.
      }
    }
  }

  // ---- append ----

  async append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    // A stamp repeated in the batch: DynamoDB refuses two operations on one item anyway.
    const stampKeys = new Set<string>();
    for (const e of entries) {
      const k = `${e.delta.clientId}\u0000${e.delta.hlc}`;
      if (stampKeys.has(k)) return { ok: false, reason: 'conflict' };
      stampKeys.add(k);
    }
    const segments = this.segments(entries);
    const p = this.packer;
    const rowBodies = rows.map((w) => {
      p.reset();
      packRow(p, w.state);
      return p.view(0).slice();
    });
    let bytes = 1_000;
    for (const s of segments) bytes += s.body.length + 100;
    for (const b of rowBodies) bytes += b.length + 200;
    bytes += entries.length * 150;
    const items = 1 + segments.length + entries.length + rows.length;
    if (items <= TX_ITEMS && bytes <= TX_BYTES) return this.appendOne(entries, rows, segments, rowBodies);
    return this.appendTwoPhase(entries, rows, segments, rowBodies);
  }

  /** The entries packed into log item bodies of at most SEGMENT_BYTES each. */
  private segments(entries: readonly LogEntryDraft[]): Segment[] {
    const out: Segment[] = [];
    const p = this.packer;
    const pack = (from: number, to: number): void => {
      if (from === to) return;
      p.reset();
      packSegment(p, entries.slice(from, to));
      if (p.pos > SEGMENT_BYTES) {
        if (to - from === 1) throw new RangeError(`a delta of ${p.pos} bytes does not fit in a DynamoDB item`);
        const mid = (from + to) >>> 1;
        pack(from, mid);
        pack(mid, to);
        return;
      }
      out.push({ first: from, count: to - from, body: p.view(0).slice() });
    };
    pack(0, entries.length);
    return out;
  }

  private headUpdate(head: bigint, next: bigint): TransactWriteItem {
    return {
      Update: {
        TableName: this.table,
        Key: this.headKey,
        UpdateExpression: 'SET v = :next',
        ConditionExpression: head === 0n ? 'attribute_not_exists(v) OR v = :head' : 'v = :head',
        ExpressionAttributeValues: { ':next': N(next), ':head': N(head) },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  private logPuts(head: bigint, segments: readonly Segment[]): TransactWriteItem[] {
    const ttl =
      this.options.ttlAttribute === undefined
        ? {}
        : { [this.options.ttlAttribute]: N(Math.floor(Date.now() / 1000) + (this.options.ttlSeconds ?? 30 * 86_400)) };
    return segments.map((s) => ({
      Put: {
        TableName: this.table,
        Item: { pk: S(this.logPk), sk: S(pad(head + 1n + BigInt(s.first))), n: N(s.count), b: { B: s.body }, ...ttl },
      },
    }));
  }

  /**
   * Run a transaction whose first item is the head update, retrying while
   * only the head moved (another append got there first). Returns the
   * cancellation if anything else failed, or the head it committed on.
   */
  private async withHead(build: (head: bigint) => TransactWriteItem[]): Promise<{ head: bigint } | Cancellation> {
    let head = this.knownHead;
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.client.send(new TransactWriteItemsCommand({ TransactItems: build(head), ReturnConsumedCapacity: 'TOTAL' }));
        for (const c of out.ConsumedCapacity ?? []) this.consumedWriteUnits += c.WriteCapacityUnits ?? c.CapacityUnits ?? 0;
        return { head };
      } catch (err) {
        const c = cancellation(err);
        if (c === null) throw err;
        const rest = c.codes.slice(1);
        if (rest.includes('ConditionalCheckFailed')) return c;
        if (attempt >= MAX_HEAD_RETRIES) throw new Error('DynamoDB append: too much contention on the head counter', { cause: err });
        if (c.codes[0] === 'ConditionalCheckFailed') {
          const seen = c.items[0]?.v?.N;
          head = seen !== undefined ? BigInt(seen) : await this.readHead();
        } else {
          // TransactionConflict (another transaction on the same items): back off, then go again.
          await sleep(Math.random() * Math.min(100, 2 ** Math.min(attempt, 7)));
          head = await this.readHead();
        }
      }
    }
  }

  private async appendOne(
    entries: readonly LogEntryDraft[],
    rows: readonly RowWrite[],
    segments: readonly Segment[],
    rowBodies: readonly Uint8Array[],
  ): Promise<AppendResult> {
    const build = (head: bigint): TransactWriteItem[] => {
      const items: TransactWriteItem[] = [this.headUpdate(head, head + BigInt(entries.length)), ...this.logPuts(head, segments)];
      entries.forEach((e, i) => {
        items.push({
          Put: {
            TableName: this.table,
            Item: { pk: S(`S#${e.delta.clientId}`), sk: S(pad(e.delta.hlc)), d: S(e.delta.deltaId), q: N(head + 1n + BigInt(i)) },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        });
      });
      rows.forEach((w, i) => {
        const expected = w.expectedVersion;
        items.push({
          Put: {
            TableName: this.table,
            Item: { pk: S(rowPk(w.state.table, w.state.rowId)), sk: S('-'), v: N(expected + 1), s: { B: rowBodies[i] as Uint8Array } },
            // A lock of a large append in flight also fails it: its item has x.
            ...(expected === 0
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : { ConditionExpression: 'v = :v AND attribute_not_exists(x)', ExpressionAttributeValues: { ':v': N(expected) } }),
          },
        });
      });
      return items;
    };
    const r = await this.withHead(build);
    if (!('head' in r)) return { ok: false, reason: 'conflict' };
    const last = r.head + BigInt(entries.length);
    this.knownHead = last;
    return { ok: true, lastSeq: last };
  }

  private async appendTwoPhase(
    entries: readonly LogEntryDraft[],
    rows: readonly RowWrite[],
    segments: readonly Segment[],
    rowBodies: readonly Uint8Array[],
  ): Promise<AppendResult> {
    let logBytes = 0;
    for (const s of segments) logBytes += s.body.length + 100;
    if (logBytes > TX_BYTES) {
      // The commit must hold every log item (the head covers them all): 4 MB per transaction.
      throw new LakeSyncError('BODY_TOO_LARGE', `an append of ${logBytes} bytes does not fit in one DynamoDB transaction`);
    }
    const txn = crypto.randomUUID();
    const now = N(Date.now());
    // 1. prepare: pending stamps and row locks.
    const prepared: TransactWriteItem[] = [];
    entries.forEach((e, i) => {
      prepared.push({
        Put: {
          TableName: this.table,
          Item: { pk: S(`S#${e.delta.clientId}`), sk: S(pad(e.delta.hlc)), d: S(e.delta.deltaId), t: S(txn), i: N(i), ts: now },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      });
    });
    rows.forEach((w, i) => {
      const key = { pk: S(rowPk(w.state.table, w.state.rowId)), sk: S('-') };
      const values = { ':x': S(txn), ':ps': { B: rowBodies[i] as Uint8Array }, ':now': now };
      prepared.push(
        w.expectedVersion === 0
          ? {
              Put: {
                TableName: this.table,
                Item: { ...key, v: N(0), x: values[':x'], ps: values[':ps'], xt: now },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            }
          : {
              Update: {
                TableName: this.table,
                Key: key,
                UpdateExpression: 'SET x = :x, ps = :ps, xt = :now',
                ConditionExpression: 'v = :v AND attribute_not_exists(x)',
                ExpressionAttributeValues: { ...values, ':v': N(w.expectedVersion) },
              },
            },
      );
    });
    let bytesBudget = 0;
    let chunk: TransactWriteItem[] = [];
    const chunks: TransactWriteItem[][] = [];
    for (const item of prepared) {
      const size = (rowBodies.length > 0 ? 400 : 200) + (item.Put?.Item?.ps?.B?.length ?? item.Update?.ExpressionAttributeValues?.[':ps']?.B?.length ?? 0);
      if (chunk.length === TX_ITEMS || bytesBudget + size > TX_BYTES) {
        chunks.push(chunk);
        chunk = [];
        bytesBudget = 0;
      }
      chunk.push(item);
      bytesBudget += size;
    }
    if (chunk.length > 0) chunks.push(chunk);
    let failed = false;
    for (const c of chunks) {
      try {
        await this.client.send(new TransactWriteItemsCommand({ TransactItems: c }));
      } catch (err) {
        if (cancellation(err) === null) {
          await this.abort(txn, entries, rows);
          throw err;
        }
        failed = true; // a stored stamp, a stale version or a lock (a TransactionConflict is retried by the engine)
        break;
      }
    }
    if (failed) {
      await this.abort(txn, entries, rows);
      return { ok: false, reason: 'conflict' };
    }
    // 2. commit: head, log items and the commit record, in one transaction.
    const r = await this.withHead((head) => [
      this.headUpdate(head, head + BigInt(entries.length)),
      ...this.logPuts(head, segments),
      {
        Put: {
          TableName: this.table,
          Item: { pk: S(`T#${txn}`), sk: S('-'), st: S('c'), f: N(head + 1n) },
          ConditionExpression: 'attribute_not_exists(pk)', // aborted by a reader after our lease: we lost
        },
      },
    ]);
    let first: bigint;
    if ('head' in r) first = r.head + 1n;
    else {
      // The record exists: aborted by a reader after our lease, or committed by
      // an earlier attempt of ours whose answer was lost (an SDK retry).
      const state = await this.resolveTxn(txn, 0);
      if (state.state !== 'committed') {
        await this.abort(txn, entries, rows);
        return { ok: false, reason: 'conflict' };
      }
      first = state.first;
    }
    const last = first - 1n + BigInt(entries.length);
    this.knownHead = last;
    // 3. finalize the rows (a reader would roll them forward too).
    await this.parallel(rows, (w) => this.rollForward({ pk: S(rowPk(w.state.table, w.state.rowId)), sk: S('-') }, txn));
    return { ok: true, lastSeq: last };
  }

  /** Decide a large append as aborted and remove what it prepared (never one that committed). */
  private async abort(txn: string, entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<void> {
    if ((await this.resolveTxn(txn, 0)).state === 'committed') return;
    await this.parallel(entries, (e) =>
      this.ignoreCondition(
        this.client.send(
          new DeleteItemCommand({
            TableName: this.table,
            Key: { pk: S(`S#${e.delta.clientId}`), sk: S(pad(e.delta.hlc)) },
            ConditionExpression: 't = :t',
            ExpressionAttributeValues: { ':t': S(txn) },
          }),
        ),
      ),
    );
    await this.parallel(rows, (w) =>
      this.rollBack({ pk: S(rowPk(w.state.table, w.state.rowId)), sk: S('-') }, txn, w.expectedVersion),
    );
  }

  // ---- read ----

  async read(after: bigint, limit: number): Promise<ReadResult> {
    const head = await this.readHead();
    const entries: LogEntry[] = [];
    if (head <= after || limit <= 0) return { entries, lastSeq: after, hasMore: false };
    const from = after + 1n;
    const take = (item: Record<string, AttributeValue>): void => {
      const first = BigInt(item.sk?.S as string);
      const reader = new SegmentReader(item.b?.B as Uint8Array);
      let seq = first;
      if (from > first) {
        const skip = from - first;
        if (skip >= BigInt(reader.count)) return;
        reader.skip(Number(skip));
        seq = from;
      }
      while (reader.index < reader.count && entries.length < limit && seq <= head) {
        entries.push(reader.next(seq));
        seq += 1n;
      }
    };
    // The item holding `from`: the last one starting at or before it.
    const before = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        ConsistentRead: true,
        KeyConditionExpression: 'pk = :pk AND sk <= :from',
        ExpressionAttributeValues: { ':pk': S(this.logPk), ':from': S(pad(from)) },
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    for (const item of before.Items ?? []) take(item);
    // Then the items after it, up to the head we read (never a half-visible later append).
    let start: Record<string, AttributeValue> | undefined;
    while (entries.length < limit) {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          ConsistentRead: true,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          ExpressionAttributeValues: { ':pk': S(this.logPk), ':lo': S(pad(from + 1n)), ':hi': S(pad(head)) },
          Limit: 8,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        if (entries.length >= limit) break;
        take(item);
      }
      start = page.LastEvaluatedKey;
      if (start === undefined) break;
    }
    const last = entries.length > 0 ? (entries[entries.length - 1] as LogEntry).seq : after;
    if (head > this.knownHead) this.knownHead = head;
    return { entries, lastSeq: last, hasMore: entries.length === limit && last < head };
  }

  async head(): Promise<bigint> {
    const head = await this.readHead();
    if (head > this.knownHead) this.knownHead = head;
    return head;
  }

  private async readHead(): Promise<bigint> {
    const got = await this.client.send(new GetItemCommand({ TableName: this.table, Key: this.headKey, ConsistentRead: true }));
    return BigInt(got.Item?.v?.N ?? '0');
  }

  // ---- flush progress, trim ----

  private async metaValue(name: 'flushed' | 'floor'): Promise<bigint> {
    const got = await this.client.send(new GetItemCommand({ TableName: this.table, Key: this.metaKey, ConsistentRead: true }));
    return BigInt(got.Item?.[name]?.N ?? '0');
  }

  /** Raise a meta value, never lower it. */
  private raiseMeta(name: 'flushed' | 'floor', value: bigint): Promise<void> {
    return this.ignoreCondition(
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: this.metaKey,
          UpdateExpression: 'SET #a = :v',
          ConditionExpression: 'attribute_not_exists(#a) OR #a < :v',
          ExpressionAttributeNames: { '#a': name },
          ExpressionAttributeValues: { ':v': N(value) },
        }),
      ),
    );
  }

  flushedThrough(): Promise<bigint> {
    return this.metaValue('flushed');
  }

  async markFlushed(seq: bigint): Promise<void> {
    if (seq > (await this.readHead())) throw new RangeError('cannot mark beyond the head as flushed');
    await this.raiseMeta('flushed', seq);
  }

  async trim(upTo: bigint): Promise<void> {
    const flushed = await this.metaValue('flushed');
    const to = upTo < flushed ? upTo : flushed;
    if (to <= 0n) return;
    const doomed: Record<string, AttributeValue>[] = [];
    let floor = 0n;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          ConsistentRead: true,
          KeyConditionExpression: 'pk = :pk AND sk <= :to',
          ExpressionAttributeValues: { ':pk': S(this.logPk), ':to': S(pad(to)) },
          ProjectionExpression: 'pk, sk, n',
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const last = BigInt(item.sk?.S as string) + BigInt(item.n?.N as string) - 1n;
        if (last > to) continue;
        doomed.push({ pk: item.pk as AttributeValue, sk: item.sk as AttributeValue });
        if (last > floor) floor = last;
      }
      start = page.LastEvaluatedKey;
    } while (start !== undefined);
    if (doomed.length === 0) return;
    // The floor first: floor() must never promise an entry already deleted.
    await this.raiseMeta('floor', floor);
    for (let i = 0; i < doomed.length; i += BATCH_WRITE) {
      let requests = doomed.slice(i, i + BATCH_WRITE).map((Key) => ({ DeleteRequest: { Key } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: requests } }));
        requests = (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
        if (requests.length > 0) await sleep(Math.min(1000, 10 * 2 ** attempt));
      }
    }
  }

  floor(): Promise<bigint> {
    return this.metaValue('floor');
  }

  close(): Promise<void> {
    return Promise.resolve(); // the client is the caller's
  }

  // ---- helpers ----

  private async batchGet(keys: Record<string, AttributeValue>[]): Promise<Record<string, AttributeValue>[]> {
    const out: Record<string, AttributeValue>[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET) {
      let pending: Record<string, AttributeValue>[] = keys.slice(i, i + BATCH_GET);
      for (let attempt = 0; pending.length > 0; attempt++) {
        const got = await this.client.send(
          new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }),
        );
        out.push(...(got.Responses?.[this.table] ?? []));
        pending = got.UnprocessedKeys?.[this.table]?.Keys ?? [];
        if (pending.length > 0) await sleep(Math.min(1000, 10 * 2 ** attempt));
      }
    }
    return out;
  }

  private async ignoreCondition(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  /** Run `f` over `items`, 16 at a time. */
  private async parallel<T>(items: readonly T[], f: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) await f(items[next++] as T);
    };
    await Promise.all(Array.from({ length: Math.min(16, items.length) }, worker));
  }
}
