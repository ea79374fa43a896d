import type { Delta } from '../delta.ts';
import type { Hlc } from '../hlc.ts';
import type { RowState } from '../merge.ts';
import type { ColumnValue } from '../values.ts';

/** Rule-column values of a row at one point in the log; null when the row was not live. */
export type RuleSnapshot = Readonly<Record<string, ColumnValue>> | null;

/**
 * One entry of the buffer's log. `seq` is the server order: assigned at the
 * append's serialization point, strictly increasing, never reused, and only
 * visible to readers once every smaller seq is visible too.
 */
export interface LogEntry {
  readonly seq: bigint;
  readonly delta: Delta;
  /** The row's rule-column values before and after this delta (for sync rules at pull time). */
  readonly before: RuleSnapshot;
  readonly after: RuleSnapshot;
  /** True when the row had no state at all before: the delta alone is the whole row. */
  readonly fresh: boolean;
}

export type LogEntryDraft = Omit<LogEntry, 'seq'>;

export interface StoredRow {
  readonly state: RowState;
  /** Optimistic-concurrency version; 0 means "no row stored". */
  readonly version: number;
}

export interface RowWrite {
  readonly state: RowState;
  /** The version the engine read; the append fails with a conflict if it changed. */
  readonly expectedVersion: number;
}

export type AppendResult =
  | { readonly ok: true; readonly lastSeq: bigint }
  | { readonly ok: false; readonly reason: 'conflict' };

export interface ReadResult {
  readonly entries: readonly LogEntry[];
  /** Highest seq scanned (the next cursor); equals `after` when nothing was read. */
  readonly lastSeq: bigint;
  readonly hasMore: boolean;
}

export interface RowRef {
  readonly table: string;
  readonly rowId: string;
}

export function rowKey(table: string, rowId: string): string {
  return `${table}\u0000${rowId}`;
}

/**
 * The delta buffer port: an ordered, durable log of deltas plus the merged
 * state of every row. Adapters: in-memory, SQLite (embedded default),
 * DynamoDB and Durable Object storage. Every adapter passes
 * core/adapters/buffer.conformance.ts.
 */
export interface DeltaBuffer {
  /**
   * The log is deduplicated by stamp: (client id, hlc) is unique, and a
   * client's hlcs only grow, so adapters can index stamps append-only per
   * client. For each hlc of this client, in order: the delta id stored under
   * that stamp, or null when the log holds no delta with it.
   */
  existing(clientId: string, hlcs: readonly Hlc[]): Promise<(string | null)[]>;
  /** Current merged rows, aligned with `keys`: undefined where no row is stored. */
  loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]>;
  /**
   * Atomically: append the entries in order (assigning seqs), and write the
   * rows, but only if every row's version still equals expectedVersion and no
   * entry's stamp (client id, hlc) is already stored or repeated in the
   * batch. Otherwise nothing is written and the result is a conflict; the
   * engine re-reads and retries. `rows` names each row at most once.
   */
  append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult>;
  /**
   * Entries with seq > after, ascending, at most `limit`. `maxBytes`, a hint:
   * a buffer may end the page early (hasMore true) once its entries' stored
   * size reaches it, never before the first entry, so a page of huge deltas is
   * not held in memory to send a few of them.
   */
  read(after: bigint, limit: number, maxBytes?: number): Promise<ReadResult>;
  /** Highest seq appended so far (0n when empty). */
  head(): Promise<bigint>;
  /** Highest seq the lake is known to hold (0n before the first flush). */
  flushedThrough(): Promise<bigint>;
  /** Durably record flush progress. Never moves backwards; never above head. */
  markFlushed(seq: bigint): Promise<void>;
  /**
   * Forget log entries with seq <= upTo (capped at flushedThrough): the
   * lake and a checkpoint hold them now. Row states stay. Stamps of forgotten
   * entries still deduplicate: existing() answers FORGOTTEN for them.
   */
  trim(upTo: bigint): Promise<void>;
  /** The oldest cursor a pull may start from: every entry after it is still held. */
  floor(): Promise<bigint>;
  close(): Promise<void>;
}

/** existing()'s answer for a stamp whose entry was trimmed: a duplicate, id no longer kept. */
export const FORGOTTEN = '*';
