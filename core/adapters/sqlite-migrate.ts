import type Database from 'better-sqlite3';
import { decodeDelta, decodeRow, decodeSnapshot, Packer, packEntry, packRow } from '../codec/storage.ts';

const HLC_OFFSET = 1n << 63n;
const PAGE = 1000;

/**
 * Layout 1 (ls_log keyed by a unique delta_id, version 1 blobs) to the
 * current layout, inside the caller's transaction: the old
 * tables are renamed, copied page by page with their seqs, then dropped.
 */
export function migrateFromV1(db: Database.Database, layout: string): void {
  db.exec('ALTER TABLE ls_log RENAME TO ls_log_v1; ALTER TABLE ls_rows RENAME TO ls_rows_v1;');
  db.exec(layout);
  const p = new Packer();
  const readLog = db
    .prepare<[bigint, number], { seq: bigint; body: Buffer; before: Buffer | null; after: Buffer | null; fresh: bigint }>(
      'SELECT seq, body, before, after, fresh FROM ls_log_v1 WHERE seq > ? ORDER BY seq LIMIT ?',
    )
    .safeIntegers(true);
  // Layout 1 deduplicated by delta id only. Two deltas under one stamp never
  // merged deterministically (equal stamps do not order); the first is kept.
  const insertLog = db.prepare('INSERT INTO ls_log (seq, client_id, hlc, entry) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
  for (let after = 0n; ; ) {
    const page = readLog.all(after, PAGE);
    for (const r of page) {
      const delta = decodeDelta(r.body);
      p.reset();
      packEntry(p, { delta, before: decodeSnapshot(r.before), after: decodeSnapshot(r.after), fresh: r.fresh === 1n });
      insertLog.run(r.seq, delta.clientId, delta.hlc - HLC_OFFSET, p.view(0));
      after = r.seq;
    }
    if (page.length < PAGE) break;
  }
  const readRows = db.prepare<[string, string, number], { tbl: string; row_id: string; version: number; state: Buffer }>(
    'SELECT tbl, row_id, version, state FROM ls_rows_v1 WHERE (tbl, row_id) > (?, ?) ORDER BY tbl, row_id LIMIT ?',
  );
  const insertRow = db.prepare('INSERT INTO ls_rows (tbl, row_id, version, state) VALUES (?, ?, ?, ?)');
  for (let tbl = '', rowId = ''; ; ) {
    const page = readRows.all(tbl, rowId, PAGE);
    for (const r of page) {
      p.reset();
      packRow(p, decodeRow(r.tbl, r.row_id, r.state));
      insertRow.run(r.tbl, r.row_id, r.version, p.view(0));
      tbl = r.tbl;
      rowId = r.row_id;
    }
    if (page.length < PAGE) break;
  }
  // ls_meta (and its head) stays as it was: a dropped entry's seq is not handed out again.
  db.exec('DROP TABLE ls_log_v1; DROP TABLE ls_rows_v1;');
}
