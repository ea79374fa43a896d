import type { AppendResult, DeltaBuffer, LogEntry, LogEntryDraft, ReadResult, RowWrite, StoredRow } from '../engine/ports.ts';
import { rowKey } from '../engine/ports.ts';

/** In-memory buffer: tests, benchmarks and ephemeral gateways. Not durable. */
export class MemoryBuffer implements DeltaBuffer {
  private readonly log: LogEntry[] = [];
  private readonly ids = new Set<string>();
  /** table -> rowId -> row: nested maps spare building a key string per lookup. */
  private readonly rows = new Map<string, Map<string, StoredRow>>();
  private seq = 0n;

  existing(deltaIds: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(new Set(deltaIds.filter((id) => this.ids.has(id))));
  }

  loadRows(keys: readonly { table: string; rowId: string }[]): Promise<Map<string, StoredRow>> {
    const out = new Map<string, StoredRow>();
    for (const k of keys) {
      const row = this.rows.get(k.table)?.get(k.rowId);
      if (row !== undefined) out.set(rowKey(k.table, k.rowId), row);
    }
    return Promise.resolve(out);
  }

  append(entries: readonly LogEntryDraft[], rows: readonly RowWrite[]): Promise<AppendResult> {
    // Check everything first, then write: all or nothing.
    for (const w of rows) {
      const current = this.rows.get(w.state.table)?.get(w.state.rowId)?.version ?? 0;
      if (current !== w.expectedVersion) return Promise.resolve({ ok: false, reason: 'conflict' });
    }
    const batchIds = new Set<string>();
    for (const e of entries) {
      if (this.ids.has(e.delta.deltaId) || batchIds.has(e.delta.deltaId)) {
        return Promise.resolve({ ok: false, reason: 'conflict' });
      }
      batchIds.add(e.delta.deltaId);
    }
    for (const e of entries) {
      this.seq += 1n;
      this.log.push({ seq: this.seq, delta: e.delta, before: e.before, after: e.after, fresh: e.fresh });
      this.ids.add(e.delta.deltaId);
    }
    for (const w of rows) {
      let table = this.rows.get(w.state.table);
      if (table === undefined) this.rows.set(w.state.table, (table = new Map()));
      table.set(w.state.rowId, { state: w.state, version: w.expectedVersion + 1 });
    }
    return Promise.resolve({ ok: true, lastSeq: this.seq });
  }

  read(after: bigint, limit: number): Promise<ReadResult> {
    // seq n lives at index n-1: the log is dense from 1.
    const start = Number(after < 0n ? 0n : after);
    const entries = this.log.slice(start, start + limit);
    const last = entries.length > 0 ? (entries[entries.length - 1] as LogEntry).seq : after;
    return Promise.resolve({ entries, lastSeq: last, hasMore: start + entries.length < this.log.length });
  }

  head(): Promise<bigint> {
    return Promise.resolve(this.seq);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
