import type { AttributeValue, DynamoDBClient, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { dynamoDbApi, type DynamoDbApi } from './dynamodb-api.ts';
import { LakeSyncError } from '../errors.ts';
import type { Hlc } from '../hlc.ts';
import {
  FORGOTTEN,
  rowKey,
  type AppendResult,
  type DeltaBuffer,
  type LogEntry,
  type LogEntryDraft,
  type ReadResult,
  type RowRef,
  type RowWrite,
  type StoredRow,
} from '../engine/ports.ts';
import { applyDelta, type RowState } from '../merge.ts';
import { Packer, packRow, packSegment, SegmentReader, unpackRow } from '../codec/storage.ts';
import { decodeRowWrites, decodeStamps, encodeRowWrites, encodeStamps, type RowWriteRef, type StampSeq } from './dynamodb-buffer-codec.ts';

/**
 * DeltaBuffer on one DynamoDB table (single-table design), for the AWS
 * deployment: many Lambdas append and read at once. The full design, its
 * proofs and its write-unit costs are in docs/dynamodb.md; in short:
 *
 * | item  | pk                     | sk                     | attributes                                          |
 * |-------|------------------------|------------------------|-----------------------------------------------------|
 * | log   | `L#<shard>`            | first seq              | n, b: packSegment body, w: row writes, t: token     |
 * | meta  | `M#<shard>`            | `-`                    | flushed, floor, ix (materialized through), mz, mt   |
 * | row   | `R#<len>:<table>:<id>` | `-`                    | v: version, s: packRow state, q: through seq        |
 * | stamp | `S#<clientId>`         | first hlc `#` through  | c: count, b: (hlc, seq) pairs                       |
 *
 * (Row and stamp keys of a shard other than '0' start `R<shard>#`, `S<shard>#`.)
 *
 * The log is the source of truth. An append is ONE conditional PutItem of
 * its log item at sk = head + 1 (attribute_not_exists): that put is the
 * serialization point of the shard. Before it, the appender reads the
 * state as of head (stamps, row versions); if anyone appended since, the
 * key head + 1 is taken, the put fails and the appender reads again. Log
 * keys are never freed while a writer could still aim at them (trim leaves
 * a stub; TTL deletes only items days old), so a stale head cannot reuse a
 * seq; a buffer whose cache is older than the TTL treats a gap as a stale
 * view and never puts below `flushed` (docs/dynamodb.md). Readers see an append all at once (one item), and seqs without gaps.
 *
 * Rows and stamps are an index materialized from the log in batches (every
 * `materializeEvery` entries, and before a trim), not per append: row items
 * hold a row's state through seq q, stamp items a client's stamps of one
 * batch. Readers combine the index with the log tail after `ix`. A row's
 * new state is stored in the log only when it is not the fold of the
 * append's deltas over its previous state (the engine's states always are).
 * An append of more than ~350 KB is split into several log items written by
 * one TransactWriteItems; readers only take whole appends.
 */
export interface DynamoDbBufferOptions {
  /** An SDK client, or the operations over anything else (dynamodb-api-fetch.ts: fetch, without the SDK). */
  readonly client: DynamoDBClient | DynamoDbApi;
  readonly table: string;
  /**
   * This buffer's shard: its log, meta, row and stamp items are its own
   * (see docs/dynamodb.md#sharding). Letters and digits; default '0'.
   */
  readonly shard?: string;
  /**
   * Give log items this TTL attribute (epoch seconds), `ttlSeconds` (at
   * least one day, default 30 days) after their append. Then trim only
   * raises the floor and TTL deletes the items, which costs no write units.
   */
  readonly ttlAttribute?: string;
  readonly ttlSeconds?: number;
  /** Unused since appends are single puts (no locks, no leases); accepted for compatibility. */
  readonly lockLeaseMs?: number;
  /** Materialize row and stamp items once the log tail holds this many entries. Default 1000. */
  readonly materializeEvery?: number;
  /**
   * Let the append that crosses `materializeEvery` materialize (default
   * true). False leaves it to `materializeIndex()` calls elsewhere (e.g. the
   * stream consumer) and to trim, so pushes do not pay that latency; as a
   * backstop an append still materializes once the tail is 8 times
   * `materializeEvery` long (the other caller has stopped).
   */
  readonly materializeOnAppend?: boolean;
}

/** Largest log item body: under the 400 KB item limit, with room for keys and attributes. */
const SEGMENT_BYTES = 350_000;
/** Largest packed row state: its row item (with key and attributes) must stay under the 400 KB item limit. */
const ROW_BYTES = 380_000;
/** Row-write descriptors and explicit states ride in the first log item of an append. */
const WRITES_BYTES = 40_000;
/** DynamoDB's limits per TransactWriteItems, with a margin for the size. */
const TX_ITEMS = 100;
const TX_BYTES = 3_500_000;
const BATCH_GET = 100;
/** A stamp item holds stamps of one client within one hour of hlc (wall ms << 16) ... */
const STAMP_SPAN = 3_600_000n << 16n;
/** ... and at most this many (at most ~20 bytes each: under the item limit). */
const STAMP_GROUP = 15_000;
/** A materialization claimed longer ago than this is taken over. */
const CLAIM_MS = 30_000;
const MIN_TTL_SECONDS = 86_400;
const MAX_APPEND_ATTEMPTS = 1000;
/** Without materializeOnAppend, an append still materializes past this many windows of tail. */
const BACKSTOP = 8n;

const pad = (n: bigint | number): string => n.toString().padStart(20, '0');
const N = (n: bigint | number): AttributeValue => ({ N: n.toString() });
const S = (s: string): AttributeValue => ({ S: s });
type Item = Record<string, AttributeValue>;

/**
 * Row and stamp items of shard '0' keep their original keys; another shard's
 * carry its name, so shards on one table never share an index item (a stamp
 * item names seqs of its own shard's log).
 */
function indexPrefix(kind: 'R' | 'S', shard: string): string {
  return shard === '0' ? `${kind}#` : `${kind}${shard}#`;
}

/**
 * Create the table (on-demand capacity). For tests and first deployments;
 * `stream` adds the NEW_IMAGE stream the AWS deployment's flush trigger reads.
 */
export async function createDynamoDbBufferTable(client: DynamoDBClient | DynamoDbApi, table: string, options: { stream?: boolean } = {}): Promise<void> {
  await dynamoDbApi(client).call('CreateTable', {
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
    ...(options.stream === true ? { StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' } } : {}),
  });
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string }).name;
}

/** The put lost the race for its key (or, for a transaction, any condition failed). */
function lostRace(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'ConditionalCheckFailedException') return true;
  if (name !== 'TransactionCanceledException') return false;
  const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.some((r) => r.Code === 'ConditionalCheckFailed');
}

/**
 * A write met a transaction in flight on one of its keys: a plain put gets
 * TransactionConflictException, a transaction is cancelled with a
 * TransactionConflict reason. Either way: wait a little, read again.
 */
function isTransactionConflict(err: unknown): boolean {
  if (errorName(err) === 'TransactionConflictException') return true;
  if (errorName(err) !== 'TransactionCanceledException') return false;
  const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.some((r) => r.Code === 'TransactionConflict');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  let s = '';
  for (const b of bytes) s += b.toString(36).padStart(2, '0');
  return s;
}

/** One row write of a decoded append. */
interface TailWrite {
  readonly key: string;
  readonly table: string;
  readonly rowId: string;
  /** The entries (indexes into the append) of this row, for the fold; unused when `state` is set. */
  readonly entries: readonly number[];
  readonly state?: Uint8Array;
}

/** One whole append of the log, decoded. */
interface TailAppend {
  readonly first: bigint;
  readonly last: bigint;
  readonly entries: readonly LogEntry[];
  readonly writes: readonly TailWrite[];
  readonly token: string;
}

interface Meta {
  readonly flushed: bigint;
  readonly floor: bigint;
  /** Row and stamp items hold every append through ix. */
  readonly ix: bigint;
}

interface CurrentRow {
  readonly state: RowState | undefined;
  readonly version: number;
  /** The row item's `q`: appends through it are already in `state`. */
  readonly q: bigint;
}

interface Segment {
  readonly first: number; // index of its first entry in the append
  readonly count: number;
  readonly body: Uint8Array;
}

/** A raw log item as queried, with its range. */
interface LogItem {
  readonly first: bigint;
  readonly count: number;
  /** The append it belongs to: [appendFirst, appendLast]. */
  readonly appendFirst: bigint;
  readonly appendLast: bigint;
  readonly item: Item;
}

function logItem(item: Item): LogItem {
  const first = BigInt(item.sk?.S as string);
  const count = Number(item.n?.N as string);
  const appendFirst = item.a?.N !== undefined ? BigInt(item.a.N) : first;
  const appendLast = item.e?.N !== undefined ? BigInt(item.e.N) : first + BigInt(count) - 1n;
  return { first, count, appendFirst, appendLast, item };
}

interface WholeAppends {
  readonly appends: LogItem[][];
  /** The log was taken through this seq (start - 1 when nothing). */
  readonly end: bigint;
  /** A key right after what was taken is gone while later items exist: only TTL deletes log items. */
  readonly gap: boolean;
}

/**
 * Whole appends from items sorted by first seq, starting with the append
 * that begins at `start`: stops at an append with a part not (yet) visible,
 * and at a gap unless `skipGaps` (then what TTL deleted is stepped over:
 * its seqs were handed out, they must never be taken again). Stubs
 * (trimmed items) come back as appends without body.
 */
function wholeAppends(items: readonly LogItem[], start: bigint, skipGaps = false): WholeAppends {
  const out: LogItem[][] = [];
  let expected = start;
  let gap = false;
  let i = 0;
  while (i < items.length) {
    const head = items[i] as LogItem;
    if (head.first < expected) {
      i++;
      continue;
    }
    if (head.first !== expected || head.appendFirst !== head.first) {
      // The first part of the next append is not visible yet (a transaction in flight): the end for now.
      if (head.appendFirst === expected) break;
      gap = true;
      if (!skipGaps) break;
      // To this append's start when it is visible, else past the append (its start expired).
      expected = head.appendFirst === head.first ? head.first : head.appendLast + 1n;
      continue;
    }
    const parts = [head];
    let end = head.first + BigInt(head.count) - 1n;
    let j = i + 1;
    while (end < head.appendLast && j < items.length && (items[j] as LogItem).first === end + 1n) {
      const p = items[j] as LogItem;
      parts.push(p);
      end = p.first + BigInt(p.count) - 1n;
      j++;
    }
    if (end < head.appendLast) break; // a part of a multi-item append is not visible yet
    out.push(parts);
    expected = end + 1n;
    i = j;
  }
  return { appends: out, end: expected - 1n, gap };
}

function isStub(item: Item): boolean {
  return item.b === undefined;
}

export class DynamoDbBuffer implements DeltaBuffer {
  private readonly api: DynamoDbApi;
  private readonly table: string;
  private readonly metaKey: Item;
  private readonly logPk: string;
  private readonly rowPrefix: string;
  private readonly stampPrefix: string;
  private readonly every: number;
  private readonly onAppend: boolean;
  private readonly ttl: { readonly attribute: string; readonly seconds: number } | null;
  private readonly packer = new Packer();
  /** Decoded appends (tailStart - 1, tailEnd], immutable once written: cached across calls. */
  private tail: TailAppend[] = [];
  private tailStart = 1n;
  private tailEnd = 0n;
  /** The meta item as last read: its values only grow, so an old view is a safe lower bound. */
  private meta: Meta | null = null;
  /** When `meta` was last read (ms): with TTL, an old view may miss keys TTL freed since. */
  private metaReadAt = 0;
  /** Write units DynamoDB reported (real DynamoDB reports them for single-item writes). */
  consumedWriteUnits = 0;

  private rowPk(table: string, rowId: string): string {
    return `${this.rowPrefix}${table.length}:${table}:${rowId}`;
  }

  constructor(options: DynamoDbBufferOptions) {
    this.api = dynamoDbApi(options.client);
    this.table = options.table;
    const shard = options.shard ?? '0';
    if (!/^[0-9A-Za-z]{1,16}$/.test(shard)) throw new RangeError('shard must be 1-16 letters or digits');
    this.metaKey = { pk: S(`M#${shard}`), sk: S('-') };
    this.logPk = `L#${shard}`;
    this.rowPrefix = indexPrefix('R', shard);
    this.stampPrefix = indexPrefix('S', shard);
    this.every = Math.max(1, options.materializeEvery ?? 1000);
    this.onAppend = options.materializeOnAppend ?? true;
    const seconds = options.ttlSeconds ?? 30 * 86_400;
    if (options.ttlAttribute !== undefined && seconds < MIN_TTL_SECONDS) {
      // A shorter TTL could free a log key a slow writer still aims at (see docs/dynamodb.md).
      throw new RangeError(`ttlSeconds must be at least ${MIN_TTL_SECONDS}`);
    }
    this.ttl = options.ttlAttribute === undefined ? null : { attribute: options.ttlAttribute, seconds };
  }

  // ---- meta ----

  private async readMeta(): Promise<Meta> {
    const at = Date.now();
    const got = await this.api.call('GetItem', { TableName: this.table, Key: this.metaKey, ConsistentRead: true });
    this.metaReadAt = at;
    const v = (name: string): bigint => BigInt(got.Item?.[name]?.N ?? '0');
    const meta = { flushed: v('flushed'), floor: v('floor'), ix: v('ix') };
    this.remember(meta);
    return meta;
  }

  private remember(m: Meta): void {
    const old = this.meta;
    const max = (a: bigint, b: bigint | undefined): bigint => (b !== undefined && b > a ? b : a);
    this.meta = { flushed: max(m.flushed, old?.flushed), floor: max(m.floor, old?.floor), ix: max(m.ix, old?.ix) };
  }

  /**
   * A consistent view: `read(ix)` (index items) and the log tail after ix,
   * both read after ix was. Any ix read before is as good as a fresh one
   * (everything through it was indexed before it was raised), only the tail
   * is longer: so a cached ix serves, refreshed when the tail grows long.
   * Both reads run at once: an append the tail misses because it came later
   * is either also missed by the index (and then our put fails, since it
   * holds head + 1) or seen there (it is committed). But a tail that meets
   * a stub means trim (and before it, indexing) went past our ix while we
   * read: the index read may have missed it, so read again with a fresh ix.
   */
  private async view<T>(read: (meta: Meta) => Promise<T>): Promise<{ meta: Meta; tail: TailAppend[]; head: bigint; value: T }> {
    let fresh =
      this.meta === null ||
      this.tailEnd - this.meta.ix > BigInt(2 * this.every) ||
      (this.ttl !== null && Date.now() - this.metaReadAt > (this.ttl.seconds * 1000) / 4);
    for (let round = 0; ; round++) {
      const meta = fresh || this.meta === null ? await this.readMeta() : this.meta;
      // Gaps (TTL) are stepped over only against a fresh meta: then they lie after ix, long expired.
      const [value, t] = await Promise.all([read(meta), this.fetchTail(meta.ix, fresh)]);
      // With TTL, even the newest items may have expired: every seq through `flushed` was handed out.
      const head = this.ttl !== null && meta.flushed > t.head ? meta.flushed : t.head;
      if (!t.stale) return { meta, tail: t.tail, head, value };
      if (round > 100) throw new Error('DynamoDB buffer: the log keeps being trimmed under this reader');
      fresh = true;
    }
  }

  /** Raise a meta value, never lower it. */
  private raiseMeta(name: 'flushed' | 'floor' | 'ix', value: bigint): Promise<void> {
    return this.ignoreCondition(
      this.api.call('UpdateItem', {
        TableName: this.table,
        Key: this.metaKey,
        UpdateExpression: 'SET #a = :v',
        ConditionExpression: 'attribute_not_exists(#a) OR #a < :v',
        ExpressionAttributeNames: { '#a': name },
        ExpressionAttributeValues: { ':v': N(value) },
      }),
    );
  }

  // ---- the log tail (appends after ix) ----

  /**
   * The whole appends after `ix` up to the head, read with a consistent
   * Query (only items not cached yet). Callers read `ix` (readMeta) before
   * the index items they combine with this tail: whatever the index missed
   * then lies after ix, so it is here.
   */
  private async fetchTail(ix: bigint, skipGaps: boolean): Promise<{ tail: TailAppend[]; head: bigint; stale: boolean }> {
    for (let round = 0; ; round++) {
      if (this.tailStart > ix + 1n || this.tailEnd < ix) {
        this.tail = [];
        this.tailStart = ix + 1n;
        this.tailEnd = ix;
      }
      const from = this.tailEnd + 1n;
      const items: LogItem[] = [];
      for await (const item of this.query(this.logPk, pad(from), null)) items.push(logItem(item));
      // Another call may have moved the cache meanwhile: take what continues it.
      const whole = wholeAppends(items, this.tailEnd + 1n, skipGaps);
      // A gap: TTL deleted keys after our cached tail (it is older than the TTL): read meta again.
      if (whole.gap && !skipGaps) return { tail: [], head: this.tailEnd, stale: true };
      for (const parts of whole.appends) {
        // Trim stubs an append's items in no fixed order: any stubbed part stubs the whole append.
        if (parts.some((p) => isStub(p.item))) return { tail: [], head: this.tailEnd, stale: true };
        const a = this.decodeAppend(parts);
        if (a.first <= this.tailEnd) break;
        this.tail.push(a);
        this.tailEnd = a.last;
      }
      if (whole.end > this.tailEnd) this.tailEnd = whole.end; // expired seqs, stepped over
      if (this.tailStart <= ix + 1n && this.tailEnd >= ix) {
        // Keep the cache small: what precedes ix is in the index now.
        if (this.tail.length > 0 && (this.tail[0] as TailAppend).last <= ix) {
          this.tail = this.tail.filter((a) => a.last > ix);
          this.tailStart = ix + 1n;
        }
        return { tail: this.tail.slice(), head: this.tailEnd, stale: false };
      }
      if (round > 100) throw new Error('DynamoDB buffer: the log tail keeps moving');
    }
  }

  private decodeAppend(parts: readonly LogItem[]): TailAppend {
    const first = (parts[0] as LogItem).first;
    const head = (parts[0] as LogItem).item;
    const entries: LogEntry[] = [];
    if (!parts.some((p) => isStub(p.item))) {
      for (const p of parts) {
        const reader = new SegmentReader(p.item.b?.B as Uint8Array);
        let seq = p.first;
        while (reader.index < reader.count) entries.push(reader.next(seq++));
      }
    }
    const last = (parts[parts.length - 1] as LogItem).first + BigInt((parts[parts.length - 1] as LogItem).count) - 1n;
    const writes: TailWrite[] = [];
    const refs = head.w?.B === undefined ? [] : decodeRowWrites(head.w.B);
    const explicit = head.x?.L ?? [];
    let x = 0;
    let byKey: Map<string, number[]> | null = null;
    for (const r of refs) {
      let table: string;
      let rowId: string;
      if (r.entry >= 0) {
        const d = (entries[r.entry] as LogEntry).delta;
        table = d.table;
        rowId = d.rowId;
      } else {
        table = r.table as string;
        rowId = r.rowId as string;
      }
      const key = rowKey(table, rowId);
      if (r.explicit) {
        writes.push({ key, table, rowId, entries: [], state: explicit[x++]?.B as Uint8Array });
        continue;
      }
      if (byKey === null) {
        byKey = new Map();
        entries.forEach((e, i) => {
          const k = rowKey(e.delta.table, e.delta.rowId);
          const list = byKey?.get(k);
          if (list === undefined) byKey?.set(k, [i]);
          else list.push(i);
        });
      }
      writes.push({ key, table, rowId, entries: byKey.get(key) ?? [] });
    }
    return { first, last, entries, writes, token: head.t?.S ?? '' };
  }

  // ---- rows ----

  /** Row items (the materialized index) of these keys, read consistently. */
  private async loadBase(refs: readonly { table: string; rowId: string }[]): Promise<Map<string, CurrentRow>> {
    const byPk = new Map<string, { key: string; table: string; rowId: string }>();
    for (const r of refs) byPk.set(this.rowPk(r.table, r.rowId), { key: rowKey(r.table, r.rowId), table: r.table, rowId: r.rowId });
    const out = new Map<string, CurrentRow>();
    const items = await this.batchGet([...byPk.keys()].map((pk) => ({ pk: S(pk), sk: S('-') })));
    for (const item of items) {
      const ref = byPk.get(item.pk?.S as string);
      if (ref === undefined) continue;
      out.set(ref.key, {
        state: unpackRow(ref.table, ref.rowId, item.s?.B as Uint8Array),
        version: Number(item.v?.N ?? '0'),
        q: BigInt(item.q?.N ?? '0'),
      });
    }
    return out;
  }

  /** Rows after the tail's writes (only `wanted` keys when given): base rows are updated in place. */
  private applyTail(rows: Map<string, CurrentRow>, tail: readonly TailAppend[], wanted: ReadonlySet<string> | null): void {
    for (const a of tail) {
      for (const w of a.writes) {
        if (wanted !== null && !wanted.has(w.key)) continue;
        const prev = rows.get(w.key);
        if (prev !== undefined && prev.q >= a.first) continue; // already in the row item
        let state: RowState | undefined;
        if (w.state !== undefined) state = unpackRow(w.table, w.rowId, w.state);
        else {
          state = prev?.state;
          for (const i of w.entries) state = applyDelta(state, (a.entries[i] as LogEntry).delta);
        }
        rows.set(w.key, { state, version: (prev?.version ?? 0) + 1, q: prev?.q ?? 0n });
      }
    }
  }

  async loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    const out = new Array<StoredRow | undefined>(keys.length);
    if (keys.length === 0) return out;
    const { tail, value: rows } = await this.view(() => this.loadBase(keys));
    this.applyTail(rows, tail, new Set(keys.map((k) => rowKey(k.table, k.rowId))));
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as RowRef;
      const r = rows.get(rowKey(k.table, k.rowId));
      out[i] = r === undefined || r.state === undefined || r.version === 0 ? undefined : { state: r.state, version: r.version };
    }
    return out;
  }

  // ---- stamps ----

  /** Stamps of this client in the stamp items, for these hlcs: hlc → seq. */
  private async indexedStamps(clientId: string, hlcs: readonly Hlc[]): Promise<Map<Hlc, bigint>> {
    const found = new Map<Hlc, bigint>();
    if (hlcs.length === 0) return found;
    const want = new Set(hlcs);
    const sorted = [...want].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    // An item holding hlc h starts within STAMP_SPAN below it: one range query per cluster.
    const clusters: [Hlc, Hlc][] = [];
    for (const h of sorted) {
      const last = clusters[clusters.length - 1];
      if (last !== undefined && h - last[1] <= STAMP_SPAN) last[1] = h;
      else clusters.push([h, h]);
    }
    for (const [lo, hi] of clusters) {
      const from = lo > STAMP_SPAN ? lo - STAMP_SPAN : 0n;
      for await (const item of this.query(`${this.stampPrefix}${clientId}`, pad(from), `${pad(hi)}$`)) {
        for (const s of decodeStamps(item.b?.B as Uint8Array)) if (want.has(s.hlc)) found.set(s.hlc, s.seq);
      }
    }
    return found;
  }

  async existing(clientId: string, hlcs: readonly Hlc[]): Promise<(string | null)[]> {
    const out = new Array<string | null>(hlcs.length).fill(null);
    if (hlcs.length === 0) return out;
    // A floor older than the real one only costs a look at a stub (FORGOTTEN all the same).
    const { meta, tail, value: indexed } = await this.view(() => this.indexedStamps(clientId, hlcs));
    const inTail = new Map<Hlc, string>();
    const want = new Set(hlcs);
    for (const a of tail) for (const e of a.entries) if (e.delta.clientId === clientId && want.has(e.delta.hlc)) inTail.set(e.delta.hlc, e.delta.deltaId);
    const ids = new Map<bigint, string>();
    for (let i = 0; i < hlcs.length; i++) {
      const h = hlcs[i] as Hlc;
      const id = inTail.get(h);
      if (id !== undefined) {
        out[i] = id;
        continue;
      }
      const seq = indexed.get(h);
      if (seq === undefined) continue;
      if (seq <= meta.floor) {
        out[i] = FORGOTTEN;
        continue;
      }
      let known = ids.get(seq);
      if (known === undefined) {
        known = await this.deltaIdAt(seq);
        ids.set(seq, known);
      }
      out[i] = known;
    }
    return out;
  }

  /** The delta id stored at a seq; FORGOTTEN when its log item was trimmed meanwhile. */
  private async deltaIdAt(seq: bigint): Promise<string> {
    const item = await this.itemAtOrBefore(seq);
    if (item === undefined || isStub(item)) return FORGOTTEN;
    const { first } = logItem(item);
    const reader = new SegmentReader(item.b?.B as Uint8Array);
    const skip = Number(seq - first);
    if (skip >= reader.count) return FORGOTTEN;
    reader.skip(skip);
    return reader.next(seq).delta.deltaId;
  }

  // ---- append ----

  async append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    if (entries.length === 0) {
      // The log is the source of row states: a row write needs an entry (the engine always has one).
      if (rows.length > 0) throw new RangeError('DynamoDB buffer: row writes without log entries');
      return { ok: true, lastSeq: await this.head() };
    }
    // The batch's stamps, per client; a stamp repeated in the batch is a conflict.
    const byClient = new Map<string, Hlc[]>();
    const stampKeys = new Set<string>();
    for (const e of entries) {
      const k = `${e.delta.clientId}\u0000${e.delta.hlc}`;
      if (stampKeys.has(k)) return { ok: false, reason: 'conflict' };
      stampKeys.add(k);
      const list = byClient.get(e.delta.clientId);
      if (list === undefined) byClient.set(e.delta.clientId, [e.delta.hlc]);
      else list.push(e.delta.hlc);
    }
    const segments = this.segments(entries);
    const rowRefs = rows.map((w) => ({ table: w.state.table, rowId: w.state.rowId }));
    const wanted = new Set(rowRefs.map((r) => rowKey(r.table, r.rowId)));
    const token = randomToken();
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      const { meta, tail, head, value } = await this.view(() =>
        Promise.all([
          Promise.all([...byClient].map(([c, hlcs]) => this.indexedStamps(c, hlcs))),
          rows.length > 0 ? this.loadBase(rowRefs) : Promise.resolve(new Map<string, CurrentRow>()),
        ]),
      );
      const [indexed, current] = value;
      if (attempt > 0) {
        // Our put of an earlier attempt may have gone through with its answer lost.
        const ours = tail.find((a) => a.token === token);
        if (ours !== undefined) return this.appended(ours.last, meta.ix);
      }
      if (indexed.some((m) => m.size > 0)) {
        // Or it went through and was indexed since: its stamps, at consecutive seqs, under our token.
        if (attempt > 0) {
          const clients = [...byClient.keys()];
          const last = await this.indexedAppend(entries, (c) => indexed[clients.indexOf(c)], token);
          if (last !== null) return this.appended(last, meta.ix);
        }
        return { ok: false, reason: 'conflict' };
      }
      for (const a of tail) for (const e of a.entries) if (stampKeys.has(`${e.delta.clientId}\u0000${e.delta.hlc}`)) return { ok: false, reason: 'conflict' };
      this.applyTail(current, tail, wanted);
      for (const w of rows) {
        if ((current.get(rowKey(w.state.table, w.state.rowId))?.version ?? 0) !== w.expectedVersion) return { ok: false, reason: 'conflict' };
      }
      const writes = this.describeWrites(entries, rows, current);
      try {
        await this.putLog(head, entries.length, segments, writes, token);
      } catch (err) {
        if (lostRace(err)) continue; // someone appended at head + 1 first: read again
        if (isTransactionConflict(err)) {
          await sleep(Math.random() * Math.min(100, 2 ** Math.min(attempt, 7)));
          continue;
        }
        throw err;
      }
      return this.appended(head + BigInt(entries.length), meta.ix);
    }
    throw new Error('DynamoDB append: too much contention on the log head');
  }

  /**
   * The last seq of our own earlier put, found through the stamp index: the
   * batch's stamps at consecutive seqs, and the log item there holds our
   * token. Null otherwise (also when that item was trimmed: a stub keeps no
   * token, and the append answers `conflict`).
   */
  private async indexedAppend(
    entries: readonly LogEntryDraft[],
    stampsOf: (clientId: string) => Map<Hlc, bigint> | undefined,
    token: string,
  ): Promise<bigint | null> {
    let first: bigint | null = null;
    for (let i = 0; i < entries.length; i++) {
      const d = (entries[i] as LogEntryDraft).delta;
      const seq = stampsOf(d.clientId)?.get(d.hlc);
      if (seq === undefined) return null;
      if (first === null) first = seq;
      if (seq !== first + BigInt(i)) return null;
    }
    if (first === null) return null;
    const got = await this.api.call('GetItem', { TableName: this.table, Key: { pk: S(this.logPk), sk: S(pad(first)) }, ConsistentRead: true });
    return got.Item?.t?.S === token ? first + BigInt(entries.length) - 1n : null;
  }

  /** After a committed append: materialize the index when the tail has grown long enough. */
  private async appended(last: bigint, ix: bigint): Promise<AppendResult> {
    if (last - ix >= BigInt(this.every) * (this.onAppend ? 1n : BACKSTOP)) {
      try {
        await this.materialize(false);
      } catch {
        // The append is committed; the next append (or trim) materializes.
      }
    }
    return { ok: true, lastSeq: last };
  }

  /**
   * How each row write is stored: by reference when its state is the fold
   * of this append's entries of the row over the current state (readers
   * recompute it), else explicitly.
   */
  private describeWrites(
    entries: readonly LogEntryDraft[],
    rows: readonly RowWrite[],
    current: Map<string, CurrentRow>,
  ): { refs: RowWriteRef[]; explicit: Uint8Array[] } {
    const byKey = new Map<string, number[]>();
    entries.forEach((e, i) => {
      const k = rowKey(e.delta.table, e.delta.rowId);
      const list = byKey.get(k);
      if (list === undefined) byKey.set(k, [i]);
      else list.push(i);
    });
    const refs: RowWriteRef[] = [];
    const explicit: Uint8Array[] = [];
    const p = this.packer;
    const packed = (s: RowState): Uint8Array => {
      p.reset();
      packRow(p, s);
      return p.view(0).slice();
    };
    for (const w of rows) {
      const k = rowKey(w.state.table, w.state.rowId);
      const list = byKey.get(k);
      const mine = packed(w.state);
      // Refused up front: a committed row too large for its row item would block materialization (and trim) forever.
      if (mine.length + k.length > ROW_BYTES) {
        throw new LakeSyncError(
          'BODY_TOO_LARGE',
          `row ${w.state.table}/${w.state.rowId} would be ${mine.length} bytes packed, over DynamoDB's item limit`,
        );
      }
      if (list !== undefined) {
        let state = current.get(k)?.state;
        for (const i of list) state = applyDelta(state, (entries[i] as LogEntryDraft).delta);
        if (state !== undefined && equalBytes(packed(state), mine)) {
          refs.push({ entry: list[0] as number, explicit: false });
          continue;
        }
        refs.push({ entry: list[0] as number, explicit: true });
      } else refs.push({ entry: -1, table: w.state.table, rowId: w.state.rowId, explicit: true });
      explicit.push(mine);
    }
    return { refs, explicit };
  }

  /** Put the append's log item(s) at head + 1: the serialization point. */
  private async putLog(
    head: bigint,
    count: number,
    segments: readonly Segment[],
    writes: { refs: RowWriteRef[]; explicit: Uint8Array[] },
    token: string,
  ): Promise<void> {
    const first = head + 1n;
    const last = head + BigInt(count);
    const extra: Item = { t: S(token) };
    if (writes.refs.length > 0) extra.w = { B: encodeRowWrites(writes.refs) };
    if (writes.explicit.length > 0) extra.x = { L: writes.explicit.map((b) => ({ B: b })) };
    let extraBytes = 0;
    for (const b of writes.explicit) extraBytes += b.length + 1;
    extraBytes += extra.w?.B?.length ?? 0;
    if (extraBytes > WRITES_BYTES) {
      throw new LakeSyncError('BODY_TOO_LARGE', `the row writes of this append (${extraBytes} bytes) do not fit in a DynamoDB item`);
    }
    if (this.ttl !== null) extra[this.ttl.attribute] = N(Math.floor(Date.now() / 1000) + this.ttl.seconds);
    const multi = segments.length > 1;
    const items = segments.map((s, i): Item => ({
      pk: S(this.logPk),
      sk: S(pad(first + BigInt(s.first))),
      n: N(s.count),
      b: { B: s.body },
      ...(multi ? { a: N(first), e: N(last) } : {}),
      ...(i === 0 ? extra : this.ttl !== null ? { [this.ttl.attribute]: extra[this.ttl.attribute] as AttributeValue } : {}),
    }));
    if (!multi) {
      const out = await this.api.call('PutItem', {
        TableName: this.table,
        Item: items[0] as Item,
        ConditionExpression: 'attribute_not_exists(pk)',
        ReturnConsumedCapacity: 'TOTAL',
      });
      this.consumedWriteUnits += out.ConsumedCapacity?.WriteCapacityUnits ?? out.ConsumedCapacity?.CapacityUnits ?? 0;
      return;
    }
    let bytes = 0;
    for (const s of segments) bytes += s.body.length + 100;
    if (items.length > TX_ITEMS || bytes + extraBytes > TX_BYTES) {
      throw new LakeSyncError('BODY_TOO_LARGE', `an append of ${bytes} bytes does not fit in one DynamoDB transaction`);
    }
    const tx: TransactWriteItem[] = items.map((Item) => ({
      Put: { TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' },
    }));
    const out = await this.api.call('TransactWriteItems', { TransactItems: tx, ReturnConsumedCapacity: 'TOTAL' });
    for (const c of out.ConsumedCapacity ?? []) this.consumedWriteUnits += c.WriteCapacityUnits ?? c.CapacityUnits ?? 0;
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
        // A stable code, not a 500: the client sets the delta aside instead of retrying it for ever.
        if (to - from === 1) throw new LakeSyncError('BODY_TOO_LARGE', `a delta of ${p.pos} bytes does not fit in a DynamoDB item`);
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

  // ---- materialization (the row and stamp index) ----

  /**
   * Write the row and stamp items of every append in the tail, then raise
   * ix over them. Idempotent, and safe to run concurrently: row items only
   * move forward (condition on q), stamp items are keyed by their batch.
   * Unless `force`, one materializer at a time claims the work (a claim
   * older than CLAIM_MS is taken over: its Lambda died).
   */
  private async materialize(force: boolean): Promise<void> {
    const meta = await this.readMeta(); // fresh: never redo what another materializer did
    const { tail } = await this.view(() => Promise.resolve(null));
    if (tail.length === 0) return;
    const end = (tail[tail.length - 1] as TailAppend).last;
    if (!force && (end - meta.ix < BigInt(this.every) || !(await this.claim(end)))) return;
    // Rows: the state through `end` of every row written in the tail.
    const refs = new Map<string, { table: string; rowId: string }>();
    for (const a of tail) for (const w of a.writes) refs.set(w.key, { table: w.table, rowId: w.rowId });
    const rows = await this.loadBase([...refs.values()]);
    this.applyTail(rows, tail, null);
    const p = this.packer;
    await this.parallel([...refs], async ([key, ref]) => {
      const r = rows.get(key);
      if (r === undefined || r.state === undefined) return;
      p.reset();
      packRow(p, r.state);
      const body = p.view(0).slice();
      await this.ignoreCondition(
        this.api.call('PutItem', {
          TableName: this.table,
          Item: { pk: S(this.rowPk(ref.table, ref.rowId)), sk: S('-'), v: N(r.version), s: { B: body }, q: N(end) },
          ConditionExpression: 'attribute_not_exists(pk) OR q < :q',
          ExpressionAttributeValues: { ':q': N(end) },
        }),
      );
    });
    // Stamps: per client, sorted by hlc, in items of one hlc span each.
    const byClient = new Map<string, StampSeq[]>();
    for (const a of tail) {
      for (const e of a.entries) {
        const list = byClient.get(e.delta.clientId);
        if (list === undefined) byClient.set(e.delta.clientId, [{ hlc: e.delta.hlc, seq: e.seq }]);
        else list.push({ hlc: e.delta.hlc, seq: e.seq });
      }
    }
    const groups: { clientId: string; stamps: StampSeq[] }[] = [];
    for (const [clientId, list] of byClient) {
      list.sort((x, y) => (x.hlc < y.hlc ? -1 : x.hlc > y.hlc ? 1 : 0));
      let group: StampSeq[] = [];
      for (const s of list) {
        const head = group[0];
        if (head !== undefined && (s.hlc - head.hlc > STAMP_SPAN || group.length >= STAMP_GROUP)) {
          groups.push({ clientId, stamps: group });
          group = [];
        }
        group.push(s);
      }
      if (group.length > 0) groups.push({ clientId, stamps: group });
    }
    await this.parallel(groups, async (g) => {
      await this.api.call('PutItem', {
        TableName: this.table,
        Item: {
          pk: S(`${this.stampPrefix}${g.clientId}`),
          sk: S(`${pad((g.stamps[0] as StampSeq).hlc)}#${pad(end)}`),
          c: N(g.stamps.length),
          b: { B: encodeStamps(g.stamps) },
        },
      });
    });
    await this.raiseMeta('ix', end);
    this.remember({ flushed: 0n, floor: 0n, ix: end });
  }

  /**
   * Materialize the row and stamp index if the tail holds `materializeEvery`
   * entries or more and nobody else is at it. Idempotent; for a stream
   * consumer or a schedule when appends do not do it (materializeOnAppend).
   */
  materializeIndex(): Promise<void> {
    return this.materialize(false);
  }

  /** Claim the materialization through `end`; false when another one is running. */
  private async claim(end: bigint): Promise<boolean> {
    const now = Date.now();
    try {
      await this.api.call('UpdateItem', {
        TableName: this.table,
        Key: this.metaKey,
        UpdateExpression: 'SET mz = :end, mt = :now',
        ConditionExpression: 'attribute_not_exists(mz) OR (attribute_exists(ix) AND mz <= ix) OR mt < :stale',
        ExpressionAttributeValues: { ':end': N(end), ':now': N(now), ':stale': N(now - CLAIM_MS) },
      });
      return true;
    } catch (err) {
      if (errorName(err) === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  // ---- read ----

  /**
   * Items of partition `pk` with sort keys from `lo` (to `hi` when given),
   * in order, consistent reads, page by page; a consumer that has enough
   * breaks out and no further page is read.
   */
  private async *query(
    pk: string,
    lo: string,
    hi: string | null,
    options: { projection?: string; names?: Record<string, string>; pageSize?: number } = {},
  ): AsyncGenerator<Item> {
    let start: Item | undefined;
    do {
      const page = await this.api.call('Query', {
        TableName: this.table,
        ConsistentRead: true,
        KeyConditionExpression: hi === null ? 'pk = :pk AND sk >= :lo' : 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':pk': S(pk), ':lo': S(lo), ...(hi === null ? {} : { ':hi': S(hi) }) },
        ...(options.projection !== undefined ? { ProjectionExpression: options.projection } : {}),
        ...(options.names !== undefined ? { ExpressionAttributeNames: options.names } : {}),
        ...(options.pageSize !== undefined ? { Limit: options.pageSize } : {}),
        ExclusiveStartKey: start,
      });
      yield* page.Items ?? [];
      start = page.LastEvaluatedKey;
    } while (start !== undefined);
  }

  /** The log item that starts at or last before `seq` (consistent read), if any. */
  private async itemAtOrBefore(seq: bigint): Promise<Item | undefined> {
    const got = await this.api.call('Query', {
      TableName: this.table,
      ConsistentRead: true,
      KeyConditionExpression: 'pk = :pk AND sk <= :seq',
      ExpressionAttributeValues: { ':pk': S(this.logPk), ':seq': S(pad(seq)) },
      ScanIndexForward: false,
      Limit: 1,
    });
    return got.Items?.[0];
  }

  async read(after: bigint, limit: number, maxBytes = Number.POSITIVE_INFINITY): Promise<ReadResult> {
    const entries: LogEntry[] = [];
    if (limit <= 0) return { entries, lastSeq: after, hasMore: false };
    const from = after + 1n;
    // The item holding `from`: the last one starting at or before it; then its append's first item.
    const hit = await this.itemAtOrBefore(from);
    let start: bigint;
    if (hit === undefined) start = 0n; // nothing at or before `from`: the log's first item
    else {
      const h = logItem(hit);
      start = h.first + BigInt(h.count) - 1n < from ? h.first + BigInt(h.count) : h.appendFirst;
    }
    // Items from there on, until they hold more than `limit` entries after `after`.
    const items: LogItem[] = [];
    let available = 0n;
    let bytes = 0;
    let cut = false;
    for await (const item of this.query(this.logPk, pad(start), null, { pageSize: 16 })) {
      const li = logItem(item);
      items.push(li);
      const end = li.first + BigInt(li.count) - 1n;
      if (end >= from && !isStub(item)) {
        available += BigInt(li.count) - (li.first < from ? from - li.first : 0n);
        bytes += item.b?.B?.length ?? 0;
      }
      // Go on while short of entries, or to the end of a multi-item append (readers take whole appends).
      if (available > BigInt(limit) && end >= li.appendLast) break;
      // Or while short of the byte budget: a page of large deltas is not read whole to send a few.
      if (bytes >= maxBytes && available > 0n && end >= li.appendLast) {
        cut = true;
        break;
      }
    }
    let more = false;
    let last = after;
    // A gap is an expired append (only TTL deletes log keys; also one set by an earlier
    // configuration): its entries are gone for good, so step over it. Stopping there would
    // stop the flush, the floor and every pull for ever.
    const whole = wholeAppends(items, start === 0n ? (items[0]?.appendFirst ?? 0n) : start, true);
    for (const parts of whole.appends) {
      // Trim stubs an append's items in no fixed order: one stubbed part stubs the whole append.
      const stub = parts.some((p) => isStub(p.item));
      for (const p of parts) {
        const end = p.first + BigInt(p.count) - 1n;
        if (end < from) continue;
        if (entries.length >= limit) {
          more = true;
          break;
        }
        if (stub) {
          // Trimmed: below the floor, which no reader is promised. Skip it.
          last = end;
          continue;
        }
        const reader = new SegmentReader(p.item.b?.B as Uint8Array);
        let seq = p.first;
        if (from > seq) {
          reader.skip(Number(from - seq));
          seq = from;
        }
        while (reader.index < reader.count) {
          if (entries.length >= limit) {
            more = true;
            break;
          }
          entries.push(reader.next(seq));
          last = seq;
          seq += 1n;
        }
      }
      if (more) break;
    }
    return { entries, lastSeq: entries.length > 0 ? last : after, hasMore: more || cut };
  }

  async head(): Promise<bigint> {
    const { meta, head } = await this.view(() => Promise.resolve(null));
    return head > meta.floor ? head : meta.floor;
  }

  // ---- flush progress, trim ----

  async flushedThrough(): Promise<bigint> {
    return (await this.readMeta()).flushed;
  }

  async markFlushed(seq: bigint): Promise<void> {
    if (seq > (await this.head())) throw new RangeError('cannot mark beyond the head as flushed');
    await this.raiseMeta('flushed', seq);
  }

  async trim(upTo: bigint): Promise<void> {
    let meta = await this.readMeta();
    const to = upTo < meta.flushed ? upTo : meta.flushed;
    // With a TTL, items expire by age, whatever the retention window keeps:
    // the floor also rises over flushed items that expire within a quarter
    // of the TTL, so a pull never meets a hole above the floor (it gets
    // CURSOR_EXPIRED and a checkpoint). Items expire in append order (each
    // gets append time + TTL), and trim runs far more often than that.
    const ttl = this.ttl;
    if (ttl === null && to <= meta.floor) return;
    const soon = ttl === null ? 0 : Math.floor(Date.now() / 1000) + Math.floor(ttl.seconds / 4);
    const expiresSoon = (item: Item): boolean => ttl !== null && Number(item[ttl.attribute]?.N ?? Infinity) <= soon;
    const doomed: Item[] = [];
    // The floor only ends whole appends: readers skip an append with any stubbed part as a whole.
    let pending: Item[] = [];
    let floor = meta.floor;
    const projection = {
      projection: ttl === null ? 'pk, sk, n, z, a, e' : 'pk, sk, n, z, a, e, #ttl',
      ...(ttl === null ? {} : { names: { '#ttl': ttl.attribute } }),
    };
    for await (const item of this.query(this.logPk, pad(meta.floor + 1n), pad(meta.flushed), projection)) {
      const li = logItem(item);
      const end = li.first + BigInt(li.count) - 1n;
      if (end > meta.flushed || (end > to && !expiresSoon(item))) break;
      if (item.z === undefined) pending.push({ pk: item.pk as AttributeValue, sk: item.sk as AttributeValue });
      if (end < li.appendLast) continue;
      doomed.push(...pending);
      pending = [];
      floor = end;
    }
    if (floor <= meta.floor) return;
    // Row states and stamps must outlive the log bodies: index them first.
    if (meta.ix < floor) {
      await this.materialize(true);
      meta = await this.readMeta();
      if (meta.ix < floor) throw new Error('DynamoDB buffer: could not materialize before trimming');
    }
    // The floor first: floor() must never promise an entry already gone.
    await this.raiseMeta('floor', floor);
    // With a TTL the items expire by themselves (no write units). Otherwise
    // they shrink to stubs: the key stays, so no late writer can reuse it.
    if (this.ttl !== null) return;
    await this.parallel(doomed, (Key) =>
      this.ignoreCondition(
        this.api.call('UpdateItem', {
          TableName: this.table,
          Key,
          UpdateExpression: 'SET z = :one REMOVE b, w, x, t',
          ConditionExpression: 'attribute_exists(b)',
          ExpressionAttributeValues: { ':one': N(1) },
        }),
      ),
    );
  }

  async floor(): Promise<bigint> {
    return (await this.readMeta()).floor;
  }

  close(): Promise<void> {
    return Promise.resolve(); // the client is the caller's
  }

  // ---- helpers ----

  private async batchGet(keys: Item[]): Promise<Item[]> {
    const out: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET) {
      let pending: Item[] = keys.slice(i, i + BATCH_GET);
      for (let attempt = 0; pending.length > 0; attempt++) {
        const got = await this.api.call('BatchGetItem', { RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } });
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
      if (errorName(err) !== 'ConditionalCheckFailedException') throw err;
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

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
