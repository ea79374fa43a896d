/**
 * One flush of N synthetic deltas into a fresh local lake, in its own
 * process so its peak RSS is the flush's own (reported by the kernel as
 * maxRSS). Run by test/bench/lake.ts with a bounded V8 heap, the way a
 * 512 MB function would run it. Prints one JSON line.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsObjectStore } from '../../core/adapters/fs-object-store.ts';
import type { ObjectStore } from '../../core/lake/ports.ts';

/**
 * This process's own peak RSS in MB. On Linux the kernel's high-water mark
 * of this address space (VmHWM): getrusage's maxRSS survives exec and starts
 * at the parent's RSS when it forked us, so a large benchmark parent showed
 * up as the flush's peak.
 */
function peakRssMb(): number {
  if (existsSync('/proc/self/status')) {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return Number(m[1]) / 1024;
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** S3 write requests for these object sizes, as S3ObjectStore sends them (its default threshold and part size). */
function s3Requests(sizes: readonly number[]): number {
  const MiB = 1 << 20;
  return sizes.reduce((n, size) => n + (size <= 16 * MiB ? 1 : 2 + Math.ceil(size / (8 * MiB))), 0);
}
import { SqlCatalog } from '../../core/adapters/sql-catalog.ts';
import type { Delta } from '../../core/delta.ts';
import type { LogEntry, StoredRow } from '../../core/engine/ports.ts';
import { encodeHlc } from '../../core/hlc.ts';
import { Lake, type FlushSource } from '../../core/lake/flush.ts';
import { applyDelta } from '../../core/merge.ts';
import { BENCH_SCHEMA, insertColumns } from './support.ts';

const n = Number(process.argv[2] ?? '1000000');
const chunk = Number(process.argv[3] ?? '100000');
const base = Date.now() - 60_000;

// Cheap synthetic deltas: flush never re-hashes ids, so a counter stands in for the content hash.
function delta(i: number): Delta {
  return {
    deltaId: i.toString(16).padStart(32, '0'),
    table: 'todos',
    rowId: `r${i}`,
    op: 'insert',
    columns: insertColumns(i),
    hlc: encodeHlc(base + Math.floor(i / 65536), i % 65536),
    clientId: 'bench',
  };
}

// Time spent inside the source (building the synthetic deltas and their merged
// rows): the buffer's work, which pyiceberg's baseline does not pay (its rows
// are built before its clock starts).
let sourceMs = 0;
function timed<T>(fn: () => T): T {
  const t = performance.now();
  try {
    return fn();
  } finally {
    sourceMs += performance.now() - t;
  }
}

const source: FlushSource = {
  read: (after, limit) => timed(() => readPage(after, limit)),
  loadRows: (keys) => timed(() => loadRows(keys)),
  head: () => Promise.resolve(BigInt(n)),
  flushedThrough: () => Promise.resolve(0n),
  markFlushed: () => Promise.resolve(),
};

const pageSource = {
  read(after: bigint, limit: number) {
    const from = Number(after);
    const to = Math.min(n, from + limit);
    const entries: LogEntry[] = [];
    for (let i = from; i < to; i++) entries.push({ seq: BigInt(i + 1), delta: delta(i), before: null, after: null, fresh: true });
    return Promise.resolve({ entries, lastSeq: BigInt(to), hasMore: to < n });
  },
  loadRows(keys: readonly { rowId: string }[]) {
    return Promise.resolve(keys.map((k): StoredRow => ({ state: applyDelta(undefined, delta(Number(k.rowId.slice(1)))), version: 1 })));
  },
};
const readPage = pageSource.read.bind(pageSource);
const loadRows = pageSource.loadRows.bind(pageSource);

const dir = mkdtempSync(join(tmpdir(), 'lakesync-bench-flush-'));
try {
  const fs = new FsObjectStore({ fsync: false });
  // Every object the flush writes, with its size: what the S3 object store
  // would send (one PUT, or a multipart upload above its 16 MiB threshold).
  const writes: number[] = [];
  const store: ObjectStore = {
    put: (uri, bytes) => (writes.push(bytes.length), fs.put(uri, bytes)),
    putIfAbsent: (uri, bytes) => (writes.push(bytes.length), fs.putIfAbsent(uri, bytes)),
    get: (uri) => fs.get(uri),
    head: (uri) => fs.head(uri),
    list: (prefix) => fs.list(prefix),
    delete: (uris) => fs.delete(uris),
  };
  const catalog = new SqlCatalog(join(dir, 'catalog.db'), store);
  const lake = new Lake({ catalog, store, schema: BENCH_SCHEMA, warehouse: FsObjectStore.uriFor(join(dir, 'warehouse')), chunkDeltas: chunk, partitioning: { changes: 'none' } });
  await lake.ensureTables();
  const t0 = performance.now();
  const report = await lake.flush(source);
  const seconds = (performance.now() - t0) / 1000;
  catalog.close();
  process.stdout.write(
    `${JSON.stringify({ seconds, sourceSeconds: sourceMs / 1000, deltas: report.deltas, snapshots: report.snapshots, files: report.files, maxRssMb: peakRssMb(), rusageMaxRssMb: process.resourceUsage().maxRSS / 1024, s3Requests: s3Requests(writes), objectBytes: writes.reduce((a, b) => a + b, 0) })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
