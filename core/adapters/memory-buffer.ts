import type { Hlc } from '../hlc.ts';
import type { AppendResult, DeltaBuffer, LogEntry, LogEntryDraft, ReadResult, RowRef, RowWrite, StoredRow } from '../engine/ports.ts';

/**
 * One client's stored stamps. A client's hlcs only grow, so they arrive in
 * order and append to sorted arrays (binary search); the rare one older than
 * the newest goes to a map instead.
 */
class ClientStamps {
  private readonly hlcs: Hlc[] = [];
  private readonly ids: string[] = [];
  private readonly late = new Map<Hlc, string>();

  get(hlc: Hlc): string | undefined {
    const hlcs = this.hlcs;
    const n = hlcs.length;
    if (n === 0 || hlc > (hlcs[n - 1] as Hlc)) return undefined;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const h = hlcs[mid] as Hlc;
      if (h === hlc) return this.ids[mid];
      if (h < hlc) lo = mid + 1;
      else hi = mid - 1;
    }
    return this.late.get(hlc);
  }

  /** Only for a stamp get() does not know. */
  add(hlc: Hlc, deltaId: string): void {
    const n = this.hlcs.length;
    if (n === 0 || hlc > (this.hlcs[n - 1] as Hlc)) {
      this.hlcs.push(hlc);
      this.ids.push(deltaId);
    } else this.late.set(hlc, deltaId);
  }
}

/** In-memory buffer: tests, benchmarks and ephemeral gateways. Not durable. */
export class MemoryBuffer implements DeltaBuffer {
  private readonly log: LogEntry[] = [];
  private readonly stamps = new Map<string, ClientStamps>();
  /** table -> rowId -> row: nested maps spare building a key string per lookup. */
  private readonly rows = new Map<string, Map<string, StoredRow>>();
  private seq = 0n;
  /** Entries with seq <= base were trimmed: log[i] holds seq base + i + 1. */
  private base = 0n;
  private flushed = 0n;

  existing(clientId: string, hlcs: readonly Hlc[]): Promise<(string | null)[]> {
    const stamps = this.stamps.get(clientId);
    const out = new Array<string | null>(hlcs.length);
    for (let i = 0; i < hlcs.length; i++) out[i] = stamps?.get(hlcs[i] as Hlc) ?? null;
    return Promise.resolve(out);
  }

  loadRows(keys: readonly RowRef[]): Promise<(StoredRow | undefined)[]> {
    const out = new Array<StoredRow | undefined>(keys.length);
    let table = '';
    let rows: Map<string, StoredRow> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as RowRef;
      if (i === 0 || k.table !== table) {
        table = k.table;
        rows = this.rows.get(table);
      }
      out[i] = rows?.get(k.rowId);
    }
    return Promise.resolve(out);
  }

  append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    // Check everything first, then write: all or nothing.
    for (const w of rows) {
      const current = this.rows.get(w.state.table)?.get(w.state.rowId)?.version ?? 0;
      if (current !== w.expectedVersion) return Promise.resolve({ ok: false, reason: 'conflict' });
    }
    if (!this.stampsAreNew(entries)) return Promise.resolve({ ok: false, reason: 'conflict' });
    let clientId = '';
    let stamps: ClientStamps | undefined;
    for (const e of entries) {
      const d = e.delta;
      this.seq += 1n;
      this.log.push({ seq: this.seq, delta: d, before: e.before, after: e.after, fresh: e.fresh });
      if (stamps === undefined || d.clientId !== clientId) {
        clientId = d.clientId;
        stamps = this.stamps.get(clientId);
        if (stamps === undefined) this.stamps.set(clientId, (stamps = new ClientStamps()));
      }
      stamps.add(d.hlc, d.deltaId);
    }
    for (const w of rows) {
      let table = this.rows.get(w.state.table);
      if (table === undefined) this.rows.set(w.state.table, (table = new Map()));
      table.set(w.state.rowId, { state: w.state, version: w.expectedVersion + 1 });
    }
    return Promise.resolve({ ok: true, lastSeq: this.seq });
  }

  /** No entry's stamp is stored, and none repeats within the batch. */
  private stampsAreNew(entries: readonly LogEntryDraft[]): boolean {
    let clientId = '';
    let stamps: ClientStamps | undefined;
    let last = -1n;
    let ordered = true; // one client, strictly increasing hlcs: no repeats possible
    for (let i = 0; i < entries.length; i++) {
      const d = (entries[i] as LogEntryDraft).delta;
      if (i === 0 || d.clientId !== clientId) {
        if (i > 0) ordered = false;
        clientId = d.clientId;
        stamps = this.stamps.get(clientId);
      } else if (d.hlc <= last) ordered = false;
      if (stamps?.get(d.hlc) !== undefined) return false;
      last = d.hlc;
    }
    if (ordered) return true;
    const seen = new Set<string>();
    for (const e of entries) {
      const key = `${e.delta.hlc}\u0000${e.delta.clientId}`;
      if (seen.has(key)) return false;
      seen.add(key);
    }
    return true;
  }

  read(after: bigint, limit: number): Promise<ReadResult> {
    // seq n lives at index n-base-1: the log is dense from the floor.
    const start = Number((after < this.base ? this.base : after) - this.base);
    const entries = this.log.slice(start, start + limit);
    const last = entries.length > 0 ? (entries[entries.length - 1] as LogEntry).seq : after;
    return Promise.resolve({ entries, lastSeq: last, hasMore: start + entries.length < this.log.length });
  }

  head(): Promise<bigint> {
    return Promise.resolve(this.seq);
  }

  flushedThrough(): Promise<bigint> {
    return Promise.resolve(this.flushed);
  }

  markFlushed(seq: bigint): Promise<void> {
    if (seq > this.seq) return Promise.reject(new RangeError('cannot mark beyond the head as flushed'));
    if (seq > this.flushed) this.flushed = seq;
    return Promise.resolve();
  }

  /** Stamps stay in memory with their ids, so trimmed duplicates are still recognised exactly. */
  trim(upTo: bigint): Promise<void> {
    const to = upTo < this.flushed ? upTo : this.flushed;
    if (to > this.base) {
      this.log.splice(0, Number(to - this.base));
      this.base = to;
    }
    return Promise.resolve();
  }

  floor(): Promise<bigint> {
    return Promise.resolve(this.base);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
