import Database from 'better-sqlite3';
import {
  HybridLogicalClock,
  LakeSyncError,
  makeDelta,
  type ColumnSchema,
  type ColumnValue,
  type Columns,
  type Op,
  type PullResult,
  type Schema,
  type WireFormat,
} from '../../core/index.ts';
import { MAX_TIMER_MS, backoffDelay, type BackoffOptions } from './backoff.ts';
import { LiveConnection, liveUrlOf, type LiveOptions, type WebSocketConstructor } from './live.ts';
import { LocalStore, newestHlcOf } from './local-store.ts';
import { OfflineError, RemoteError, Transport, isRemoteCode, type TokenProvider } from './transport.ts';

/** Values an app writes: numbers or bigints for integer columns, any JSON value for json columns. */
export type RowInput = Readonly<Record<string, unknown>>;

export interface ClientOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:8787 or the API Gateway URL. */
  readonly url: string;
  /** Path of the local SQLite file, or ':memory:'. */
  readonly database: string;
  readonly getToken: TokenProvider;
  /** Tables to create locally; fetched from GET /v1/schema when omitted. */
  readonly schema?: Schema;
  /** Fixed client id; otherwise one is generated once and kept in the database. */
  readonly clientId?: string;
  /** Wire format; protobuf unless told otherwise. */
  readonly format?: WireFormat;
  readonly pullLimit?: number;
  /**
   * How a client with no cursor starts: 'checkpoint' (default) loads the
   * server's newest checkpoint first, then pulls from its cursor; 'pull'
   * pulls everything from the start of the server's log.
   */
  readonly initialSync?: 'checkpoint' | 'pull';
  readonly pushBatch?: number;
  /**
   * Largest push body sent, in bytes (default 4 MiB, the server's default
   * limit). A larger batch is split before it is sent: behind API Gateway a
   * body past Lambda's 6 MB event limit (base64 adds a third) never reaches
   * the server, so the client must not rely on the server's answer alone.
   */
  readonly maxPushBytes?: number;
  readonly backoff?: BackoffOptions;
  /** Pause between sync rounds in the background loop. */
  readonly intervalMs?: number;
  /**
   * Live updates while the background loop runs: a WebSocket on which the
   * server pokes this client when others pushed, so it pulls at once instead
   * of at its next round (which still runs, as the fallback). `true` uses the
   * defaults; Node 20 has no global WebSocket, so pass `{ WebSocket }` from
   * the ws package there. On AWS, pass the stack's LiveUrl as `url`.
   */
  readonly live?: LiveOptions | boolean;
  readonly wallClock?: () => number;
  readonly fetch?: typeof fetch;
  /** How long one request may take, in ms (default 30,000); a checkpoint chunk is up to ~4 MB, so slow links may want more. */
  readonly requestTimeoutMs?: number;
}

export type SyncState = 'idle' | 'syncing' | 'offline' | 'error' | 'stopped';

export interface SyncStatus {
  readonly state: SyncState;
  readonly pending: number;
  readonly cursor: string;
  readonly lastSyncedAt: number | null;
  readonly lastError: string | null;
  /** Whether the live connection is open (always false without the live option). */
  readonly live: boolean;
}

export type ClientEvent =
  | { readonly type: 'status'; readonly status: SyncStatus }
  | { readonly type: 'rejected'; readonly table: string; readonly rowId: string; readonly code: string }
  | { readonly type: 'change'; readonly tables: readonly string[] };

export interface SyncReport {
  readonly pushed: number;
  readonly pulled: number;
  readonly rejected: number;
}

/** Codes that condemn one delta, not the connection: the delta is set aside and sync goes on (a reused stamp cannot succeed on retry either). */
const DELTA_FAULTS = new Set(['UNKNOWN_TABLE', 'UNKNOWN_COLUMN', 'INVALID_VALUE', 'INVALID_REQUEST', 'DELTA_ID_MISMATCH', 'RULE_VIOLATION', 'STAMP_REUSED']);
/** Times a push re-stamps a delta whose stamp the server holds already, before it sets it aside. */
const MAX_RESTAMPS = 3;

/**
 * LakeSync client for Node: local SQLite with change capture, a persistent
 * outbox and a sync loop.
 *
 * @example
 * const client = await LakeSyncClient.open({ url, database: 'app.db', getToken });
 * client.insert('todos', 'todo-1', { title: 'Buy milk', done: false });
 * await client.sync();
 * client.db.prepare('SELECT id, title, done FROM todos').all();
 *
 * Every app table also has a `_ls_state` column: the row's merge state
 * (stamps), maintained by the client. Name your columns rather than SELECT *
 * if you do not want it.
 */
export class LakeSyncClient {
  readonly clientId: string;
  private readonly clock: HybridLogicalClock;
  private readonly transport: Transport;
  private readonly listeners = new Set<(e: ClientEvent) => void>();
  private status: SyncStatus;
  private running: Promise<SyncReport> | null = null;
  private loop: { timer: ReturnType<typeof setTimeout> | null; stopped: boolean; soon: () => void } | null = null;
  private live: LiveConnection | null = null;
  private failures = 0;

  private constructor(
    readonly store: LocalStore,
    private readonly options: ClientOptions,
  ) {
    const existing = store.getMeta('client_id');
    this.clientId = options.clientId ?? existing ?? crypto.randomUUID();
    if (existing !== undefined && existing !== this.clientId) {
      throw new LakeSyncError('CLIENT_ID_MISMATCH', `database belongs to client ${existing}`);
    }
    store.setMeta('client_id', this.clientId);
    const last = store.getMeta('hlc');
    this.clock = new HybridLogicalClock({
      ...(options.wallClock !== undefined ? { wallClock: options.wallClock } : {}),
      ...(last !== undefined ? { last: BigInt(last) } : {}),
      maxDriftMs: Number.MAX_SAFE_INTEGER, // the server polices drift; the client follows it
    });
    this.transport = new Transport({
      url: options.url,
      clientId: this.clientId,
      getToken: options.getToken,
      format: options.format ?? 'proto',
      ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
      ...(options.requestTimeoutMs !== undefined ? { timeoutMs: options.requestTimeoutMs } : {}),
      ...(options.maxPushBytes !== undefined ? { maxPushBytes: options.maxPushBytes } : {}),
    });
    this.status = { state: 'idle', pending: store.pendingCount(), cursor: this.cursor, lastSyncedAt: null, lastError: null, live: false };
  }

  /** Open (or create) the local database. Fetches the schema from the server only if none is given or stored. */
  static async open(options: ClientOptions): Promise<LakeSyncClient> {
    const db = new Database(options.database);
    try {
      const stored = db.prepare("SELECT 1 FROM sqlite_master WHERE name = '_lakesync_meta'").get()
        ? (db.prepare("SELECT value FROM _lakesync_meta WHERE key = 'schema'").get() as { value: string } | undefined)
        : undefined;
      const storedSchema = stored ? (JSON.parse(stored.value) as Schema) : undefined;
      // The app's bundled schema, unless the database already moved past it (it learnt a newer one
      // from the server): a schema never goes back down, or pulled values of newer columns go stale.
      let schema = options.schema !== undefined && (storedSchema === undefined || options.schema.version >= storedSchema.version) ? options.schema : storedSchema;
      if (schema === undefined) {
        const probe = new Transport({
          url: options.url,
          clientId: options.clientId ?? 'schema-probe',
          getToken: options.getToken,
          format: 'json',
          ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
          ...(options.requestTimeoutMs !== undefined ? { timeoutMs: options.requestTimeoutMs } : {}),
        });
        schema = await probe.schema();
      }
      return new LakeSyncClient(new LocalStore(db, schema), options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The local database: read it with plain SQL. Write through insert/update/delete so changes sync (never to `_ls_state`). */
  get db(): Database.Database {
    return this.store.db;
  }

  get cursor(): string {
    return this.store.getMeta('cursor') ?? '';
  }

  /** @example client.insert('todos', 'todo-1', { title: 'Buy milk', done: false }) */
  insert(table: string, rowId: string, values: RowInput): void {
    this.write('insert', table, rowId, values);
  }

  /** Set only the given columns; an explicit null sets NULL, an absent column is left alone. */
  update(table: string, rowId: string, values: RowInput): void {
    this.write('update', table, rowId, values);
  }

  delete(table: string, rowId: string): void {
    this.write('delete', table, rowId, {});
  }

  /** Run several writes in one local transaction. */
  transaction<T>(fn: () => T): T {
    try {
      return this.store.db.transaction(fn)();
    } catch (err) {
      // Its writes left the outbox with the rollback: the count each one raised goes back too.
      this.setStatus({ pending: this.store.pendingCount() });
      throw err;
    }
  }

  private write(op: Op, table: string, rowId: string, values: RowInput): void {
    const columns = this.toColumns(table, values);
    const delta = makeDelta({ table, rowId, op, columns, hlc: this.clock.now(), clientId: this.clientId });
    this.store.registry.validate(delta);
    this.store.writeLocal(delta, this.clock.peek());
    this.emit({ type: 'change', tables: [table] });
    this.setStatus({ pending: this.status.pending + 1 });
  }

  private toColumns(table: string, values: RowInput): Columns {
    const schema = this.store.registry.table(table);
    if (schema === undefined) throw new LakeSyncError('UNKNOWN_TABLE', `unknown table "${table}"`);
    const out: Record<string, ColumnValue> = Object.create(null) as Record<string, ColumnValue>;
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) continue;
      const col = schema.get(name);
      if (col === undefined) throw new LakeSyncError('UNKNOWN_COLUMN', `unknown column "${table}.${name}"`);
      out[name] = toColumnValue(col, value);
    }
    return out;
  }

  /**
   * Start the synced state over, keeping unpushed writes: the next round
   * (this call runs it, after one in progress) drops the pulled rows, loads
   * the server's checkpoint and pulls from its cursor. Call it when the
   * user's claims or the deployment's sync rules change: pulls never replay
   * what a changed view would have sent or taken away (docs/protocol.md).
   * The token provider is asked again (forceRefresh): the claims are in the token.
   * Persisted: a client stopped before that round does it at its next one.
   */
  async resync(): Promise<SyncReport> {
    this.store.requestReset();
    // The claims are in the token: a cached one would reload the old view (the provider is asked again).
    this.transport.refreshToken();
    if (this.live !== null) {
      this.setStatus({ live: false });
      this.live.reconnect(); // its pokes follow the claims it was opened with
    }
    // Not even a microtask's wait when nothing runs: stop() must find this round under way.
    if (this.running !== null) await this.running.catch(() => undefined);
    return this.sync();
  }

  /** One sync round: push the outbox, then pull pages until the server has no more. */
  sync(): Promise<SyncReport> {
    this.running ??= this.syncOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async syncOnce(): Promise<SyncReport> {
    this.setStatus({ state: 'syncing' });
    try {
      let pushed = 0;
      let rejected = 0;
      let pushError: unknown = null;
      try {
        ({ pushed, rejected } = await this.pushAll());
      } catch (err) {
        // A clock too far ahead blocks this device's writes until real time catches up with their
        // stamps, a schema newer than the server's until the server is upgraded; neither must also
        // keep everyone else's writes from reaching this device. Pull, then report.
        if (!isRemoteCode(err, 'CLOCK_DRIFT') && !isRemoteCode(err, 'SCHEMA_VERSION_MISMATCH')) throw err;
        pushError = err;
      }
      // Also a refusal of an earlier round that failed (or stopped) before its reset.
      if (this.store.resetPending()) {
        // A refused write was merged into its row locally, and LWW cannot take it back out: start the
        // synced state over (unpushed writes kept), so the rows become the server's again. Refusals are
        // rare (rule violations, invalid values), so a full resync is the price of being exact.
        this.startOver();
      }
      const pulled = await this.pullAll();
      if (this.transport.serverSchemaVersion > this.store.registry.version) await this.refreshSchema();
      if (pushError !== null) throw pushError;
      this.setStatus({ state: 'idle', lastSyncedAt: Date.now(), lastError: null, pending: this.store.pendingCount() });
      return { pushed, pulled, rejected };
    } catch (err) {
      const state: SyncState = err instanceof OfflineError ? 'offline' : 'error';
      this.setStatus({ state, lastError: (err as Error).message, pending: this.store.pendingCount() });
      throw err;
    }
  }

  private async pushAll(): Promise<{ pushed: number; rejected: number }> {
    let pushed = 0;
    let rejected = 0;
    let batch = this.options.pushBatch ?? 500;
    let restamps = 0;
    for (;;) {
      const items = this.store.outbox(batch);
      if (items.length === 0) return { pushed, rejected };
      try {
        const result = await this.transport.push({
          clientId: this.clientId,
          schemaVersion: this.store.registry.version,
          deltas: items.map((i) => i.delta),
        });
        this.clock.receive(result.serverHlc);
        this.store.acknowledge((items[items.length - 1] as { seq: number }).seq);
        pushed += items.length;
      } catch (err) {
        // A bare 413 too: behind API Gateway a body past Lambda's 6 MB event limit is refused before the server sees it.
        const tooLarge = err instanceof RemoteError && (err.code === 'BODY_TOO_LARGE' || err.code === 'TOO_MANY_DELTAS' || err.status === 413);
        if (tooLarge && items.length > 1) {
          // Over the server's limits (big values, or a smaller limit than ours): split the batch.
          batch = Math.max(1, Math.floor(items.length / 2));
          continue;
        }
        const reused = err instanceof RemoteError && err.code === 'STAMP_REUSED' ? items[err.deltaIndex] : undefined;
        if (reused !== undefined && restamps < MAX_RESTAMPS) {
          // Our clock went back (a restored backup, a reinstall with the same client id): move it past
          // the server's, then the same write under a new stamp (docs/protocol.md, push).
          restamps++;
          const { serverHlc } = await this.transport.push({ clientId: this.clientId, schemaVersion: this.store.registry.version, deltas: [] });
          this.clock.receive(serverHlc);
          // The refused write and every later one, in outbox order: re-stamped alone, it would order
          // after the later writes of its row (an older edit winning), and they may reuse stamps too.
          const fresh = this.store.outboxFrom(reused.seq).map(({ seq, delta: d }) => ({
            seq,
            delta: makeDelta({ table: d.table, rowId: d.rowId, op: d.op, columns: d.columns, hlc: this.clock.now(), clientId: this.clientId }),
          }));
          this.store.restamp(fresh, this.clock.peek());
          continue;
        }
        // A delta the server refuses, or one too large alone.
        const bad = err instanceof RemoteError ? (tooLarge ? items[0] : DELTA_FAULTS.has(err.code) ? items[err.deltaIndex] : undefined) : undefined;
        if (bad === undefined) throw err;
        // One bad delta must not block the outbox forever: set it aside and go on.
        this.store.reject(bad.seq, (err as RemoteError).code, (err as RemoteError).message);
        rejected++;
        this.emit({ type: 'rejected', table: bad.delta.table, rowId: bad.delta.rowId, code: (err as RemoteError).code });
      }
    }
  }

  /**
   * Initial sync: load the newest checkpoint, chunk by chunk (each a page
   * of full row states the server filtered by this client's rules), then set
   * the cursor to the checkpoint's, so the pull that follows continues with
   * no gap. Rows present in both are merged, which is idempotent. With no
   * checkpoint on the server, a new client simply pulls from the start.
   *
   * An attempt that did not finish (offline, a timeout, a crash) is resumed
   * where it stopped if the server still serves the same checkpoint: each
   * chunk records its progress in its own transaction, and the chunks of one
   * checkpoint make a whole whatever the order they came in. Another
   * checkpoint starts from a clean slate (synced rows dropped, unpushed
   * writes kept): chunks of the first may hold rows that were deleted before
   * the cursor of the second, and no delta would ever remove them.
   */
  private async loadCheckpoint(): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const info = await this.transport.checkpoint();
      if (info === null) {
        // A load cut short, and now no checkpoint at all (the server lost its data): its rows must go,
        // the pull from the start will not remove them.
        if (this.store.checkpointProgress() !== null) this.startOver();
        return 0;
      }
      const saved = this.store.checkpointProgress();
      // A load cut short goes on with its own checkpoint, even once a newer one is out (the server keeps
      // a replaced one a while): starting over at every new checkpoint, a slow link might never finish.
      const resumed = saved !== null && saved.checkpointId !== info.checkpointId ? this.store.loadingCheckpoint() : null;
      const load = resumed ?? info;
      const from = saved !== null && saved.checkpointId === load.checkpointId ? saved.next : 0;
      if (from === 0) {
        this.startOver();
        this.store.setLoadingCheckpoint(load);
      }
      let loaded = 0;
      try {
        for (const chunk of load.chunks) {
          if (chunk.index < from) continue;
          const body = await this.transport.checkpointChunkBytes(load.checkpointId, chunk.index);
          loaded += this.store.applyCheckpointChunk(this.transport.format, body, { checkpointId: load.checkpointId, next: chunk.index + 1 });
          if (this.store.lastChunkHlc > 0n) this.clock.receive(this.store.lastChunkHlc);
        }
      } catch (err) {
        // Replaced and collected while we loaded it: start over with the newest.
        if (isRemoteCode(err, 'CHECKPOINT_EXPIRED') && attempt < 3) {
          this.startOver();
          continue;
        }
        throw err;
      }
      this.store.applyRemote([], load.cursor, this.clock.peek());
      this.setStatus({ cursor: load.cursor });
      this.emit({ type: 'change', tables: [...new Set(load.chunks.map((c) => c.table))] });
      return loaded;
    }
  }

  /** Drop the synced state (unpushed writes kept), and tell the app which tables lost rows: nothing pulled may replace them. */
  private startOver(): void {
    const cleared = this.store.resetSynced();
    this.setStatus({ cursor: '' });
    if (cleared.length > 0) this.emit({ type: 'change', tables: cleared });
  }

  private async pullAll(): Promise<number> {
    let pulled = 0;
    if (this.cursor === '' && this.options.initialSync !== 'pull') pulled += await this.loadCheckpoint();
    let restarted = false;
    for (;;) {
      let page: PullResult;
      try {
        page = await this.transport.pull(this.cursor, this.options.pullLimit ?? 1000);
      } catch (err) {
        // Once per round: a checkpoint whose cursor is expired too (the server's newest is behind its
        // buffer, or it has none) would otherwise be loaded again and again. The sync loop retries later.
        const expired = isRemoteCode(err, 'CURSOR_EXPIRED');
        // INVALID_CURSOR: the cursor is ahead of the server, which lost its data (docs/protocol.md, Cursors).
        if ((!expired && !isRemoteCode(err, 'INVALID_CURSOR')) || restarted) throw err;
        restarted = true;
        // Start again (from a checkpoint if there is one), keeping unpushed writes.
        this.startOver();
        pulled += await this.loadCheckpoint();
        continue;
      }
      const seen = newestHlcOf(page.changes);
      this.clock.receive(seen > page.serverHlc ? seen : page.serverHlc);
      this.store.applyRemote(page.changes, page.nextCursor, this.clock.peek());
      pulled += page.changes.length;
      if (page.changes.length > 0) {
        const tables = new Set(page.changes.map((c) => (c.kind === 'delta' ? c.delta.table : c.kind === 'row' ? c.row.table : c.table)));
        this.emit({ type: 'change', tables: [...tables] });
      }
      this.setStatus({ cursor: page.nextCursor });
      if (!page.hasMore) return pulled;
    }
  }

  /**
   * Fetch the server's schema and migrate the local database (new tables,
   * ALTER TABLE ADD COLUMN). Runs by itself when the server announces a newer
   * version. Rows pulled before the migration keep the new columns' values in
   * their merge state, so the columns are backfilled from it.
   */
  async refreshSchema(): Promise<void> {
    const schema = await this.transport.schema();
    if (schema.version <= this.store.registry.version) return;
    this.store.migrate(schema);
    this.emit({ type: 'change', tables: schema.tables.map((t) => t.name) });
  }

  /**
   * Sync in the background until stop(): every intervalMs, with backoff and
   * jitter after failures, and at once when the live connection is poked.
   */
  start(): void {
    if (this.loop !== null) return;
    // Checked before the loop starts: a start() that throws leaves nothing running.
    const live = this.options.live;
    const settings: LiveOptions | null = live === undefined || live === false ? null : live === true ? {} : live;
    const ctor = settings === null ? undefined : (settings.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket);
    if (settings !== null && ctor === undefined) {
      throw new LakeSyncError('INVALID_REQUEST', 'live updates need a WebSocket: pass live.WebSocket (the ws package on Node 20)');
    }
    const loop: { timer: ReturnType<typeof setTimeout> | null; stopped: boolean; soon: () => void } = { timer: null, stopped: false, soon: () => {} };
    this.loop = loop;
    let busy = false;
    let again = false;
    const tick = (): void => {
      loop.timer = null;
      busy = true;
      // A round the app started itself may have pulled before the poke that woke this tick: run another after it.
      again = this.running !== null;
      this.sync().then(
        () => {
          this.failures = 0;
          busy = false;
          schedule(again ? 0 : (this.options.intervalMs ?? 1000));
        },
        (err: unknown) => {
          busy = false;
          // Backoff, but never sooner than the server asked (retry-after on 429 and 503).
          const asked = err instanceof OfflineError ? (err.retryAfterMs ?? 0) : 0;
          schedule(Math.max(backoffDelay(this.failures++, this.options.backoff), asked));
        },
      );
    };
    const schedule = (ms: number): void => {
      // setTimeout runs a longer delay after 1 ms: a retry-after of years would retry every millisecond.
      if (!loop.stopped) loop.timer = setTimeout(tick, Math.min(ms, MAX_TIMER_MS));
    };
    // A poke: sync now, or right after the round under way (it may have pulled before the poke's deltas landed).
    // During backoff after a failure the poke waits too: the server asked for patience, or it is down.
    loop.soon = () => {
      if (loop.stopped) return;
      if (busy) {
        again = true;
        return;
      }
      if (this.failures > 0 || loop.timer === null) return;
      clearTimeout(loop.timer);
      tick();
    };
    tick();
    if (settings !== null && ctor !== undefined) {
      this.live = new LiveConnection({
        url: settings.url ?? liveUrlOf(this.options.url),
        WebSocket: ctor,
        getToken: (forceRefresh) => this.options.getToken({ clientId: this.clientId, forceRefresh }),
        onPoke: () => loop.soon(),
        onConnected: (connected) => this.setStatus({ live: connected }),
        ...(this.options.backoff !== undefined ? { backoff: this.options.backoff } : {}),
        ...(settings.pingMs !== undefined ? { pingMs: settings.pingMs } : {}),
      });
      this.live.start();
    }
  }

  async stop(): Promise<void> {
    this.live?.stop();
    this.live = null;
    if (this.loop !== null) {
      this.loop.stopped = true;
      if (this.loop.timer !== null) clearTimeout(this.loop.timer);
      this.loop = null;
    }
    // Its failure was already reported through status. Again while one is running: a resync() waiting
    // for that round starts its own before this resumes, and close() must not shut the database under it.
    while (this.running !== null) await this.running.catch(() => undefined);
    this.setStatus({ state: 'stopped', live: false });
  }

  async close(): Promise<void> {
    // A round under way (a long initial load, say) ends at once instead of holding close() until it
    // finishes: what it applied is kept, and a checkpoint load resumes at its next chunk.
    this.transport.abortAll();
    await this.stop();
    this.store.db.close();
  }

  /** Subscribe to status, change and rejection events; returns an unsubscribe function. */
  on(listener: (e: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  getStatus(): SyncStatus {
    return this.status;
  }

  private setStatus(patch: Partial<SyncStatus>): void {
    this.status = { ...this.status, ...patch };
    this.emit({ type: 'status', status: this.status });
  }

  private emit(e: ClientEvent): void {
    for (const l of this.listeners) l(e);
  }
}

function toColumnValue(col: ColumnSchema, value: unknown): ColumnValue {
  if (value === null) return null;
  switch (col.type) {
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
      if (typeof value === 'bigint') return value;
      break;
    case 'json':
      return { json: JSON.stringify(value) };
    case 'string':
    case 'number':
    case 'boolean':
      if (typeof value === col.type) return value as ColumnValue;
      break;
  }
  throw new LakeSyncError('INVALID_VALUE', `${col.name}: expected ${col.type}, got ${typeof value}`);
}
