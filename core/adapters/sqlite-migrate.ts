import type Database from 'better-sqlite3';
import type { StoredEntry } from '../codec/storage.ts';
import { decodeDelta, decodeRow, decodeSnapshot, Packer, packRow, packSegment } from '../codec/storage.ts';
import { packStamps } from '../codec/stamps.ts';

const HLC_OFFSET = 1n << 63n;
const PAGE = 1000;

/**
 * Layout 1 (a row per entry keyed by a unique delta_id, version 1 blobs) to
 * the current layout, inside the caller's transaction: the old tables are
 * renamed, copied page by page with their seqs, then dropped. ls_meta keeps
 * the head.
 */
export function migrateFromV1(db: Database.Database, layout: string): void {
  db.exec('ALTER TABLE ls_log RENAME TO ls_log_v1; ALTER TABLE ls_rows RENAME TO ls_rows_v1;');
  db.exec(layout);
  db.exec(LAYOUT_2_STAMPS);
  const p = new Packer();
  const readLog = db
    .prepare<[bigint, number], { seq: bigint; body: Buffer; before: Buffer | null; after: Buffer | null; fresh: bigint }>(
      'SELECT seq, body, before, after, fresh FROM ls_log_v1 WHERE seq > ? ORDER BY seq LIMIT ?',
    )
    .safeIntegers(true);
  const insertSegment = db.prepare('INSERT INTO ls_log (first_seq, count, body) VALUES (?, ?, ?)');
  // Layout 1 deduplicated by delta id only, so two deltas may share a stamp:
  // both stay in the log, and the stamp keeps pointing at the first.
  const insertStamp = db.prepare('INSERT INTO ls_stamps (client_id, hlc, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  let run: StoredEntry[] = [];
  let runFirst = 0n;
  const flush = (): void => {
    if (run.length === 0) return;
    p.reset();
    packSegment(p, run);
    insertSegment.run(runFirst, run.length, p.view(0));
    run.forEach((e, i) => insertStamp.run(e.delta.clientId, e.delta.hlc - HLC_OFFSET, runFirst + BigInt(i)));
    run = [];
  };
  for (let after = 0n; ; ) {
    const page = readLog.all(after, PAGE);
    for (const r of page) {
      // A segment holds consecutive seqs only.
      if (run.length > 0 && r.seq !== runFirst + BigInt(run.length)) flush();
      if (run.length === 0) runFirst = r.seq;
      run.push({ delta: decodeDelta(r.body), before: decodeSnapshot(r.before), after: decodeSnapshot(r.after), fresh: r.fresh === 1n });
      after = r.seq;
    }
    flush();
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
  db.exec('DROP TABLE ls_log_v1; DROP TABLE ls_rows_v1;');
  stampsToRuns(db);
}

/** Layout 2's stamp index: a row per (client, hlc). */
const LAYOUT_2_STAMPS = `
CREATE TABLE IF NOT EXISTS ls_stamps (
  client_id TEXT NOT NULL,
  hlc INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (client_id, hlc)
) WITHOUT ROWID;`;

/** Layout 2 (a stamp index row per delta) to the current layout, inside the caller's transaction. */
export function migrateFromV2(db: Database.Database, layout: string): void {
  db.exec(layout);
  stampsToRuns(db);
}

/** Pack ls_stamps into ls_stamp_runs (runs of up to PAGE stamps of one client), then drop it. */
function stampsToRuns(db: Database.Database): void {
  const read = db
    .prepare<[string, bigint, number], { client_id: string; hlc: bigint; seq: bigint }>(
      'SELECT client_id, hlc, seq FROM ls_stamps WHERE (client_id, hlc) > (?, ?) ORDER BY client_id, hlc LIMIT ?',
    )
    .safeIntegers(true);
  const insert = db.prepare('INSERT INTO ls_stamp_runs (client_id, max_hlc, min_hlc, stamps) VALUES (?, ?, ?, ?)');
  for (let client = '', hlc = -(1n << 63n); ; ) {
    const page = read.all(client, hlc, PAGE);
    // One run per client within the page: stamps of a client are sorted by hlc here.
    let start = 0;
    for (let i = 1; i <= page.length; i++) {
      if (i < page.length && page[i]?.client_id === page[start]?.client_id) continue;
      const run = page.slice(start, i);
      const first = run[0];
      const last = run[run.length - 1];
      if (first !== undefined && last !== undefined) {
        const stamps = packStamps({ hlcs: run.map((r) => r.hlc + HLC_OFFSET), seqs: run.map((r) => Number(r.seq)) });
        insert.run(first.client_id, last.hlc, first.hlc, stamps);
      }
      start = i;
    }
    const last = page[page.length - 1];
    if (last === undefined || page.length < PAGE) break;
    client = last.client_id;
    hlc = last.hlc;
  }
  db.exec('DROP TABLE ls_stamps;');
}
