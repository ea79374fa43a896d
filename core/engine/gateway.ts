import type { Principal } from '../auth/principal.ts';
import type { Delta } from '../delta.ts';
import { LakeSyncError, tooManyDeltas } from '../errors.ts';
import { isValidHlc, type HybridLogicalClock, type Hlc } from '../hlc.ts';
import { allValues, applyDelta, isLive, visibleValues, type RowState } from '../merge.ts';
import { RuleSet, type SyncRules } from '../rules.ts';
import { SchemaRegistry, type Schema } from '../schema.ts';
import { emptyColumns, type ColumnValue } from '../values.ts';
import { deltaJsonSizeBound, evictJsonSizeBound, jsonSizeBound } from '../protocol/json-size.ts';
import { deltaIdMatches } from './delta-id.ts';
import { anyAbove, asShards, encodeCursor, parseCursor, type BufferShards } from './shards.ts';
import {
  rowKey,
  type DeltaBuffer,
  type LogEntry,
  type LogEntryDraft,
  type RowRef,
  type RowWrite,
  type RuleSnapshot,
  type StoredRow,
  FORGOTTEN,
} from './ports.ts';

export interface Limits {
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes: number;
  readonly maxDeltasPerPush: number;
  readonly defaultPullLimit: number;
  readonly maxPullLimit: number;
  /**
   * A pull answer ends before this many bytes (a bound of its JSON; protobuf
   * is smaller): AWS Lambda returns at most 6 MB, and 5,000 large deltas
   * would not fit. The cursor then points after the last change sent.
   */
  readonly maxPullBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 4 * 1024 * 1024,
  maxDeltasPerPush: 1000,
  defaultPullLimit: 1000,
  maxPullLimit: 5000,
  maxPullBytes: 4 * 1024 * 1024,
};

export interface GatewayOptions {
  /** One buffer, or the shards of a sharded deployment (core/engine/shards.ts). */
  readonly buffer: DeltaBuffer | BufferShards;
  readonly schema: Schema;
  readonly rules: SyncRules | null;
  readonly clock: HybridLogicalClock;
  readonly limits?: Partial<Limits>;
  /** Optimistic-concurrency retries of one push before giving up (503). */
  readonly maxAppendAttempts?: number;
  /** Called after a push appended at least one delta, with what it appended (the local server pokes the live clients they concern). */
  readonly onAppend?: (appended: readonly LogEntryDraft[]) => void;
}

export interface PushInput {
  readonly clientId: string;
  readonly schemaVersion: number;
  readonly deltas: readonly Delta[];
}

export interface PushResult {
  readonly accepted: number;
  readonly duplicates: number;
  readonly serverHlc: Hlc;
  readonly cursor: string;
}

export interface PullInput {
  readonly cursor: string;
  readonly limit?: number;
}

export type Change =
  | { readonly kind: 'delta'; readonly delta: Delta }
  | { readonly kind: 'row'; readonly row: RowState }
  | { readonly kind: 'evict'; readonly table: string; readonly rowId: string };

export interface PullResult {
  readonly changes: readonly Change[];
  readonly nextCursor: string;
  readonly hasMore: boolean;
  readonly serverHlc: Hlc;
}

export { encodeCursor, parseCursor } from './shards.ts';

/**
 * The gateway engine: push and pull written against ports. Every runtime
 * (local server, Lambda, Worker) hosts this same class.
 */
export class Gateway {
  readonly limits: Limits;
  readonly registry: SchemaRegistry;
  readonly rules: RuleSet;
  private readonly shards: BufferShards;
  private readonly clock: HybridLogicalClock;
  private readonly ruleColumns = new Map<string, readonly string[]>();
  private readonly maxAppendAttempts: number;
  private readonly onAppend: ((appended: readonly LogEntryDraft[]) => void) | undefined;
  /** Pushes so far, and the push from which plan() may guess again (see plan). */
  private pushes = 0;
  private guessOffUntil = 0;

  constructor(options: GatewayOptions) {
    this.shards = asShards(options.buffer);
    this.clock = options.clock;
    this.registry = new SchemaRegistry(options.schema);
    this.rules = new RuleSet(options.rules);
    this.rules.checkColumns((table) => this.registry.table(table));
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxAppendAttempts = options.maxAppendAttempts ?? 8;
    this.onAppend = options.onAppend;
    for (const table of this.registry.tableNames()) this.ruleColumns.set(table, this.rules.columnsFor(table));
  }

  get schema(): Schema {
    return this.registry.schema;
  }

  /**
   * Authenticated push: validate everything first (nothing is written if any
   * delta is bad), drop deltas already stored (by stamp: client id and hlc),
   * merge into row state, append atomically with server order, acknowledge.
   */
  async push(principal: Principal, input: PushInput): Promise<PushResult> {
    if (input.clientId !== principal.clientId) {
      throw new LakeSyncError('CLIENT_ID_MISMATCH', 'push client id does not match the token');
    }
    const deltas = input.deltas;
    if (deltas.length > this.limits.maxDeltasPerPush) {
      throw tooManyDeltas(this.limits.maxDeltasPerPush);
    }
    if (input.schemaVersion > this.registry.version) {
      throw new LakeSyncError(
        'SCHEMA_VERSION_MISMATCH',
        `client schema version ${input.schemaVersion} is newer than the server's ${this.registry.version}`,
      );
    }
    let maxHlc = 0n;
    let increasing = true;
    const driftLimit = this.clock.driftLimit();
    for (let i = 0; i < deltas.length; i++) {
      const d = deltas[i] as Delta;
      if (d.clientId !== principal.clientId) {
        throw new LakeSyncError('CLIENT_ID_MISMATCH', 'delta client id does not match the token', { deltaIndex: i });
      }
      if (!isValidHlc(d.hlc) || d.hlc === 0n) {
        throw new LakeSyncError('INVALID_VALUE', 'hlc out of range', { deltaIndex: i });
      }
      this.registry.validate(d, i);
      if (!deltaIdMatches(d)) {
        throw new LakeSyncError('DELTA_ID_MISMATCH', 'delta id does not match its content', { deltaIndex: i });
      }
      if (d.hlc > driftLimit) this.clock.checkDrift(d.hlc, i); // throws CLOCK_DRIFT with the details
      if (d.hlc > maxHlc) maxHlc = d.hlc;
      else increasing = false;
    }
    // A client's hlcs only grow, so a batch is almost always strictly increasing: no repeats to look for.
    const batch = increasing ? deltas : dropRepeats(deltas);
    const serverHlc = deltas.length > 0 ? this.clock.receive(maxHlc) : this.clock.now();
    const guess = this.pushes++ >= this.guessOffUntil;
    const { buffers } = this.shards;
    if (buffers.length === 1) {
      const hlcs = batch.map((d) => d.hlc);
      const r = await this.pushTo(buffers[0] as DeltaBuffer, principal, batch, hlcs, deltas, guess);
      if (r.accepted > 0) this.onAppend?.(r.appended);
      return { accepted: r.accepted, duplicates: deltas.length - r.accepted, serverHlc, cursor: encodeCursor([r.seq]) };
    }
    // What some shards appended is reported even when another shard failed: those entries are in the
    // log, and the client's retry finds them stored and appends (and reports) only the rest.
    const appended: LogEntryDraft[] = [];
    try {
      const r = await this.pushSharded(principal, batch, deltas, appended);
      return { accepted: r.accepted, duplicates: deltas.length - r.accepted, serverHlc, cursor: encodeCursor(r.position) };
    } finally {
      if (appended.length > 0) this.onAppend?.(appended);
    }
  }

  /**
   * Push a batch into one shard: drop stored deltas, plan, append; re-plan
   * when a concurrent push changed a row in between. Returns how many
   * deltas were appended and the seq of the last one (the head when none).
   */
  private async pushTo(
    buffer: DeltaBuffer,
    principal: Principal,
    batch: readonly Delta[],
    hlcs: readonly Hlc[],
    original: readonly Delta[],
    guess: boolean,
  ): Promise<{ accepted: number; seq: bigint; appended: readonly LogEntryDraft[] }> {
    for (let attempt = 0; attempt < this.maxAppendAttempts; ) {
      const fresh = await this.dropStored(buffer, principal.clientId, batch, hlcs, original);
      if (fresh.length === 0) return { accepted: 0, seq: await buffer.head(), appended: [] };
      const plan = await this.plan(buffer, principal, fresh, original, guess);
      if (plan !== null) {
        const result = await buffer.append(plan.entries, plan.rows);
        if (result.ok) return { accepted: fresh.length, seq: result.lastSeq, appended: plan.entries };
      }
      if (guess) {
        // The guess was wrong (or collided with a concurrent push): plan again
        // from stored rows, and guess less for a while. This costs no attempt.
        guess = false;
        this.guessOffUntil = this.pushes + GUESS_PAUSE;
        continue;
      }
      attempt++;
    }
    throw new LakeSyncError('CONFLICT_RETRY_EXHAUSTED', 'too much contention on these rows; retry the push');
  }

  /**
   * A push whose tables live in several shards: one append per shard. Every
   * shard's part is checked and planned before any is written, in the
   * protocol's order (stamps of every shard, then rules), and without
   * guessing, so a delta the rules refuse writes nothing anywhere. The
   * appends are atomic per shard, not across shards: if one fails after
   * another succeeded, the client's retry finds the written part by stamp
   * and appends only the rest. The one way a refusal can follow a written
   * shard: a concurrent push changes a row between this plan and its
   * append, and the re-plan of that shard is refused. Components of shards
   * this push did not write are 0 in the returned position.
   */
  private async pushSharded(
    principal: Principal,
    batch: readonly Delta[],
    original: readonly Delta[],
    appended: LogEntryDraft[],
  ): Promise<{ accepted: number; position: bigint[] }> {
    const { buffers } = this.shards;
    const groups = new Map<number, Delta[]>();
    for (const d of batch) {
      const k = this.shards.shardOf(d.table);
      let g = groups.get(k);
      if (g === undefined) groups.set(k, (g = []));
      g.push(d);
    }
    const parts = [...groups].map(([k, group]) => ({ k, buffer: buffers[k] as DeltaBuffer, group, hlcs: group.map((d) => d.hlc) }));
    const fresh = await settleAll(parts.map((p) => this.dropStored(p.buffer, principal.clientId, p.group, p.hlcs, original)));
    const plans = await settleAll(
      parts.map(async (p, i) => {
        const todo = fresh[i] as readonly Delta[];
        return todo.length === 0 ? null : this.plan(p.buffer, principal, todo, original, false);
      }),
    );
    const position = new Array<bigint>(buffers.length).fill(0n);
    // Every shard settles before the push answers (a failure does not leave another shard's append in flight).
    const accepted = await settleAll(
      parts.map(async ({ k, buffer, group, hlcs }, i) => {
        const plan = plans[i];
        if (plan === null || plan === undefined) return 0;
        const result = await buffer.append(plan.entries, plan.rows);
        if (result.ok) {
          position[k] = result.lastSeq;
          appended.push(...plan.entries);
          return (fresh[i] as readonly Delta[]).length;
        }
        // A concurrent push moved a row of this shard: this shard alone goes again.
        const again = await this.pushTo(buffer, principal, group, hlcs, original, false);
        if (again.accepted > 0) position[k] = again.seq;
        appended.push(...again.appended);
        return again.accepted;
      }),
    );
    return { accepted: accepted.reduce((a, b) => a + b, 0), position };
  }

  /**
   * Deltas whose stamp the log does not hold yet. A stored stamp under the
   * same delta id is a duplicate; under another id the client reused an hlc
   * for different content, which would break last-writer-wins (equal stamps
   * do not order), so the push is refused.
   */
  private async dropStored(
    buffer: DeltaBuffer,
    clientId: string,
    batch: readonly Delta[],
    hlcs: readonly Hlc[],
    original: readonly Delta[],
  ): Promise<readonly Delta[]> {
    const stored = await buffer.existing(clientId, hlcs);
    let out: Delta[] | null = null;
    for (let i = 0; i < batch.length; i++) {
      const id = stored[i];
      if (id === null || id === undefined) {
        out?.push(batch[i] as Delta);
        continue;
      }
      const d = batch[i] as Delta;
      if (id !== d.deltaId && id !== FORGOTTEN) throw stampReused(original.indexOf(d));
      out ??= batch.slice(0, i);
    }
    return out ?? batch;
  }

  /**
   * Merge the deltas into their rows' states: the log entries and row writes
   * of one append. With `guess`, a row whose first delta in the batch is an
   * insert is taken to be new without loading it (inserts nearly always
   * create rows): the append's version check refuses the plan if the row
   * exists after all. A rule refusal under a guess is not trusted either:
   * null asks the caller to plan again from stored rows.
   */
  private async plan(
    buffer: DeltaBuffer,
    principal: Principal,
    deltas: readonly Delta[],
    original: readonly Delta[],
    guess: boolean,
  ): Promise<{ entries: LogEntryDraft[]; rows: RowWrite[] } | null> {
    // The distinct rows of the batch, in first-touch order; a delta serves as
    // its own row reference. Per-table maps spare building a key string per delta.
    const refs: RowRef[] = [];
    const slots = new Array<number>(deltas.length);
    const byTable = new Map<string, Map<string, number>>();
    let table = '';
    let byRow: Map<string, number> | undefined;
    let guessed = 0;
    for (let i = 0; i < deltas.length; i++) {
      const d = deltas[i] as Delta;
      if (byRow === undefined || d.table !== table) {
        table = d.table;
        byRow = byTable.get(table);
        if (byRow === undefined) byTable.set(table, (byRow = new Map()));
      }
      let slot = byRow.get(d.rowId);
      if (slot === undefined) {
        slot = refs.length;
        byRow.set(d.rowId, slot);
        refs.push(d);
        if (guess && d.op === 'insert') guessed++;
      }
      slots[i] = slot;
    }
    let stored: (StoredRow | undefined)[];
    if (guessed === 0) stored = await buffer.loadRows(refs);
    else {
      stored = new Array<StoredRow | undefined>(refs.length);
      const load: number[] = [];
      for (let s = 0; s < refs.length; s++) if ((refs[s] as Delta).op !== 'insert') load.push(s);
      if (load.length > 0) {
        const got = await buffer.loadRows(load.map((s) => refs[s] as RowRef));
        for (let k = 0; k < load.length; k++) stored[load[k] as number] = got[k];
      }
    }
    const states = new Array<RowState | undefined>(refs.length);
    for (let s = 0; s < refs.length; s++) states[s] = stored[s]?.state;

    const entries = new Array<LogEntryDraft>(deltas.length);
    const checkRules = !this.rules.open && !principal.admin;
    let colsTable = '';
    let cols: readonly string[] = [];
    for (let i = 0; i < deltas.length; i++) {
      const d = deltas[i] as Delta;
      const slot = slots[i] as number;
      const current = states[slot];
      const next = applyDelta(current, d);
      if (d.table !== colsTable) {
        colsTable = d.table;
        cols = this.ruleColumns.get(d.table) ?? [];
      }
      if (checkRules && !this.mayWrite(principal, d, current, next)) {
        if (guessed > 0) return null;
        throw new LakeSyncError('RULE_VIOLATION', `this client may not write row ${d.table}/${d.rowId}`, {
          deltaIndex: original.indexOf(d),
        });
      }
      entries[i] = { delta: d, before: snapshot(current, cols), after: snapshot(next, cols), fresh: current === undefined };
      states[slot] = next;
    }
    // Every touched row is written (even when unchanged) so the version check
    // covers the before/after snapshots taken above.
    const rows = new Array<RowWrite>(refs.length);
    for (let s = 0; s < refs.length; s++) {
      rows[s] = { state: states[s] as RowState, expectedVersion: stored[s]?.version ?? 0 };
    }
    return { entries, rows };
  }

  /**
   * Write rules (see core/MERGE.md): a client may only touch rows its sync
   * rules select, judged on merged state. Before: a live row by its visible
   * values; a deleted row by the values written after its delete, if any (so
   * nobody can plant values in someone else's deleted row). After: every
   * value the row holds, visible or not. A delete only needs the before check,
   * and a row to check: a row with no state is nobody's, and a delete of it
   * would hide the first insert of whoever creates it with an older stamp.
   */
  private mayWrite(principal: Principal, d: Delta, current: RowState | undefined, next: RowState): boolean {
    if (!this.rules.tableVisible(d.table)) return false;
    if (current === undefined && d.op === 'delete') return false;
    if (current !== undefined) {
      const live = isLive(current);
      const values = live ? visibleValues(current) : allValues(current);
      if ((live || Object.keys(values ?? {}).length > 0) && !this.rules.matches(principal.claims, d.table, values ?? {})) {
        return false;
      }
    }
    return d.op === 'delete' || this.rules.matches(principal.claims, d.table, allValues(next));
  }

  /**
   * Deltas after a cursor, in server order, filtered by the client's sync
   * rules against each row's merged state (see docs/protocol.md#pull).
   */
  async pull(principal: Principal, input: PullInput): Promise<PullResult> {
    const { buffers } = this.shards;
    const after = parseCursor(input.cursor, buffers.length);
    const limit = clampLimit(input.limit, this.limits);
    if (anyAbove(after, await this.shards.heads())) throw new LakeSyncError('INVALID_CURSOR', 'cursor is ahead of this server');
    const expired = (): LakeSyncError =>
      new LakeSyncError('CURSOR_EXPIRED', 'this cursor is older than the server keeps: load the checkpoint (GET /v1/checkpoint), then pull from its cursor');
    if (anyAbove(await this.shards.floors(), after)) throw expired();
    const page = await this.readShards(after, limit);
    // A trim by another process between the floor check and the read may have
    // removed entries right after the cursor: the read would then skip them.
    // The floor only rises, and rises before entries go, so checking it again
    // after the read catches that. A shard whose page did not move the cursor needs no check.
    if (page.last.some((seq, k) => seq > (after[k] as bigint))) {
      const floors = await this.shards.floors();
      if (page.last.some((seq, k) => seq > (after[k] as bigint) && (after[k] as bigint) < (floors[k] as bigint))) throw expired();
    }

    // One action per entry first; rows entering the client's view need their
    // current state, loaded in one call before the changes are built.
    const entries = page.entries;
    const actions = new Uint8Array(entries.length);
    let enterKeys: Map<string, RowRef> | null = null;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as LogEntry;
      const { table } = entry.delta;
      const was = this.rules.sees(principal, table, entry.before);
      const is = this.rules.sees(principal, table, entry.after);
      let action = SKIP;
      if (was && is) action = DELTA;
      else if (!was && is) action = entry.fresh ? DELTA : ENTER;
      // A delete that leaves the row live (an insert newer than it) only dropped older columns: the
      // row stays, outside the client's view, so the client must drop it rather than apply the delete.
      else if (was && !is) action = entry.delta.op === 'delete' && entry.after === null ? DELTA : EVICT;
      // The client's own write that left the row out of its view (it merged into a delete it never
      // saw, e.g. from a checkpoint, which holds no deleted rows): it shows the row, so drop it there.
      else if (entry.delta.clientId === principal.clientId && entry.delta.op !== 'delete') action = EVICT;
      actions[i] = action;
      if (action === ENTER) {
        enterKeys ??= new Map();
        enterKeys.set(rowKey(table, entry.delta.rowId), { table, rowId: entry.delta.rowId });
      }
    }
    const current = new Map<string, RowState>();
    if (enterKeys !== null) {
      const refs = [...enterKeys.values()];
      const rows = await this.loadRows(refs);
      refs.forEach((ref, i) => {
        const row = rows[i];
        if (row !== undefined) current.set(rowKey(ref.table, ref.rowId), row.state);
      });
    }

    const changes: Change[] = [];
    let bytes = 0;
    let cut = entries.length;
    for (let i = 0; i < entries.length; i++) {
      const action = actions[i];
      if (action === SKIP) continue;
      const d = (entries[i] as LogEntry).delta;
      let change: Change | null = null;
      if (action === DELTA) change = { kind: 'delta', delta: d };
      else if (action === EVICT) change = { kind: 'evict', table: d.table, rowId: d.rowId };
      else {
        // A row entering the client's view: send its current merged state, but
        // only if the client may see that state (later entries handle the rest).
        const row = current.get(rowKey(d.table, d.rowId));
        if (row === undefined) continue;
        const values = visibleValues(row);
        if (values !== null && (principal.admin || this.rules.matches(principal.claims, d.table, values))) change = { kind: 'row', row };
      }
      if (change === null) continue;
      bytes += change.kind === 'delta' ? deltaJsonSizeBound(d) : change.kind === 'evict' ? evictJsonSizeBound(d.table, d.rowId) : jsonSizeBound(change.row);
      // Past the size limit: stop before this entry (one change always goes, so every pull moves on).
      if (bytes > this.limits.maxPullBytes && changes.length > 0) {
        cut = i;
        break;
      }
      changes.push(change);
    }
    return {
      changes,
      nextCursor: encodeCursor(cut === entries.length ? page.last : this.cursorBefore(entries, cut, after, page.last)),
      hasMore: page.hasMore || cut < entries.length,
      serverHlc: this.clock.now(),
    };
  }

  /**
   * The cursor of a page cut before entry `cut`: entries come shard by shard
   * in shard order (readShards), so shards before the cut one were read
   * whole, the cut one goes up to its last entry before the cut, and later
   * ones stay where they were.
   */
  private cursorBefore(entries: readonly LogEntry[], cut: number, after: readonly bigint[], last: readonly bigint[]): bigint[] {
    const at = this.shards.shardOf((entries[cut] as LogEntry).delta.table);
    const prev = cut > 0 ? (entries[cut - 1] as LogEntry) : null;
    return after.map((a, k) => {
      if (k < at) return last[k] as bigint;
      if (k > at) return a;
      return prev !== null && this.shards.shardOf(prev.delta.table) === at ? prev.seq : a;
    });
  }

  /** One row's visible values, if the client's rules let it see the row. */
  async getRow(principal: Principal, table: string, rowId: string): Promise<Record<string, ColumnValue>> {
    if (this.registry.table(table) === undefined) throw new LakeSyncError('UNKNOWN_TABLE', `unknown table "${table}"`);
    const [stored] = await this.shards.bufferOf(table).loadRows([{ table, rowId }]);
    const values = stored !== undefined ? visibleValues(stored.state) : null;
    // Excluded and missing look the same, so rules do not leak which rows exist.
    if (values === null || (!principal.admin && !this.rules.matches(principal.claims, table, values))) {
      throw new LakeSyncError('ROW_NOT_FOUND', `no row ${table}/${rowId} for this client`);
    }
    return values;
  }

  /** The newest position of the log, in cursor form. */
  async head(): Promise<string> {
    return encodeCursor(await this.shards.heads());
  }

  /**
   * Up to `limit` entries after `after`, shard by shard, in each shard's
   * order (deltas of different tables commute, so shards need no common
   * order). The limit is shared out evenly; what short shards leave is
   * read from the others in further rounds.
   */
  private async readShards(after: readonly bigint[], limit: number): Promise<{ entries: LogEntry[]; last: bigint[]; hasMore: boolean }> {
    const { buffers } = this.shards;
    if (buffers.length === 1) {
      const page = await (buffers[0] as DeltaBuffer).read(after[0] as bigint, limit, this.limits.maxPullBytes);
      return { entries: page.entries as LogEntry[], last: [page.lastSeq], hasMore: page.hasMore };
    }
    const last = [...after];
    const more = buffers.map(() => true);
    const stuck = buffers.map(() => false);
    const parts: LogEntry[][] = buffers.map(() => []);
    // Shards that do not fit a small limit wait for a later page; starting
    // where the cursor points rotates which ones go first, so none starves.
    const start = Number(after.reduce((a, b) => a + b, 0n) % BigInt(buffers.length));
    const order = buffers.map((_, j) => (start + j) % buffers.length);
    let budget = limit;
    // Every round reads or closes at least one shard, so this ends.
    for (let round = 0; round <= buffers.length && budget > 0; round++) {
      const open = order.filter((k) => more[k] && !stuck[k]);
      if (open.length === 0) break;
      const share = Math.floor(budget / open.length);
      const extra = budget % open.length;
      const pages = await Promise.all(
        open.map((k, j) => {
          const n = share + (j < extra ? 1 : 0);
          return n === 0 ? null : (buffers[k] as DeltaBuffer).read(last[k] as bigint, n, this.limits.maxPullBytes);
        }),
      );
      pages.forEach((page, j) => {
        if (page === null) return;
        const k = open[j] as number;
        for (const e of page.entries) (parts[k] as LogEntry[]).push(e);
        // A page that did not move is not read again this time (it would not move either), nor one
        // its byte budget cut short: read again, each round would hold another maxPullBytes.
        const n = share + (j < extra ? 1 : 0);
        if (page.lastSeq === last[k] || (page.hasMore && page.entries.length < n)) stuck[k] = true;
        more[k] = page.hasMore;
        last[k] = page.lastSeq;
        budget -= page.entries.length;
      });
    }
    return { entries: parts.flat(), last, hasMore: more.some((m) => m) };
  }

  /** Rows from the shards that hold them, aligned with `refs`. */
  private async loadRows(refs: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    const { buffers } = this.shards;
    if (buffers.length === 1) return (buffers[0] as DeltaBuffer).loadRows(refs);
    const byShard = new Map<number, number[]>();
    refs.forEach((r, i) => {
      const k = this.shards.shardOf(r.table);
      let list = byShard.get(k);
      if (list === undefined) byShard.set(k, (list = []));
      list.push(i);
    });
    const out = new Array<StoredRow | undefined>(refs.length);
    await Promise.all(
      [...byShard].map(async ([k, idx]) => {
        const rows = await (buffers[k] as DeltaBuffer).loadRows(idx.map((i) => refs[i] as RowRef));
        idx.forEach((i, j) => (out[i] = rows[j]));
      }),
    );
    return out;
  }
}

/**
 * Await every promise; if any failed, throw the failure about the earliest
 * delta of the batch (then the first in order), so the answer does not
 * depend on which shard answered first.
 */
async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  let worst: { reason: unknown; index: number } | null = null;
  for (const r of settled) {
    if (r.status === 'fulfilled') continue;
    const index = r.reason instanceof LakeSyncError && r.reason.deltaIndex >= 0 ? r.reason.deltaIndex : Number.MAX_SAFE_INTEGER;
    if (worst === null || index < worst.index) worst = { reason: r.reason, index };
  }
  if (worst !== null) throw worst.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function clampLimit(limit: number | undefined, limits: Limits): number {
  if (limit === undefined || limit === 0) return limits.defaultPullLimit;
  if (!Number.isInteger(limit) || limit < 0) throw new LakeSyncError('INVALID_REQUEST', 'limit must be a positive integer');
  return Math.min(limit, limits.maxPullLimit);
}

/** Pushes planned from stored rows after a wrong guess, before guessing again. */
const GUESS_PAUSE = 100;

/** What pull sends for one log entry (see docs/protocol.md#which-change-is-sent). */
const SKIP = 0;
const DELTA = 1;
const ENTER = 2;
const EVICT = 3;

const NO_COLUMNS: RuleSnapshot = Object.freeze({});

/** The rule columns of a row's visible values, or null when the row is not live. */
function snapshot(row: RowState | undefined, cols: readonly string[]): RuleSnapshot {
  if (row === undefined || !isLive(row)) return null;
  if (cols.length === 0) return NO_COLUMNS;
  const out = emptyColumns();
  for (const c of cols) {
    const v = row.columns[c]?.value;
    if (v !== undefined) out[c] = v;
  }
  return out;
}

function stampReused(deltaIndex: number): LakeSyncError {
  return new LakeSyncError('STAMP_REUSED', 'another delta with this client id and hlc is already stored; re-stamp this one', {
    deltaIndex,
  });
}

/**
 * First occurrence of each stamp. A repeat with the same delta id is a
 * duplicate (dropped); with another id it is a reused stamp (refused).
 */
function dropRepeats(deltas: readonly Delta[]): Delta[] {
  const seen = new Map<Hlc, string>();
  const out: Delta[] = [];
  for (let i = 0; i < deltas.length; i++) {
    const d = deltas[i] as Delta;
    const id = seen.get(d.hlc);
    if (id === undefined) {
      seen.set(d.hlc, d.deltaId);
      out.push(d);
    } else if (id !== d.deltaId) throw stampReused(i);
  }
  return out;
}
