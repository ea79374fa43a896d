import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteBuffer } from '../../core/adapters/sqlite-buffer.ts';
import { LakeJobs } from '../../core/lake/jobs.ts';
import type { Schema } from '../../core/schema.ts';
import { openLocalLake } from './lake.ts';

/**
 * The local server's lake jobs on their own thread: flush encodes Parquet
 * (wasm, synchronous) for up to a few hundred milliseconds per chunk, which
 * must not stall the thread serving push and pull. The worker has its own
 * connections to the buffer file (WAL: readers never block the writer) and
 * to the catalog. Started by lake-runner.ts.
 */
export interface LakeWorkerData {
  readonly dataDir: string;
  readonly schema: Schema;
  readonly synchronous: 'full' | 'normal';
  readonly checkpointEvery: number;
  readonly retainDeltas: number;
}

export type LakeRequest =
  | { readonly id: number; readonly type: 'cycle' }
  | { readonly id: number; readonly type: 'maintain'; readonly snapshotRetentionMs: number; readonly orphanAgeMs: number }
  | { readonly id: number; readonly type: 'close' };

export type LakeResponse = { readonly id: number; readonly ok: true; readonly result: unknown } | { readonly id: number; readonly ok: false; readonly error: string };

const data = workerData as LakeWorkerData;
const port = parentPort;
if (port === null) throw new Error('lake-worker.ts runs as a worker thread');

const buffer = new SqliteBuffer({ path: join(data.dataDir, 'buffer.sqlite'), synchronous: data.synchronous });
const local = openLocalLake(data.dataDir, data.schema);
const jobs = new LakeJobs({
  buffer,
  lake: local.lake,
  checkpoints: local.checkpoints,
  schemaVersion: data.schema.version,
  checkpointEvery: data.checkpointEvery,
  retainDeltas: data.retainDeltas,
});

// One request at a time, in order: a cycle and maintenance never overlap here.
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: LakeRequest) => {
  queue = queue.then(async () => {
    if (req.type === 'close') {
      await buffer.close();
      local.close();
      port.postMessage({ id: req.id, ok: true, result: null } satisfies LakeResponse);
      port.close();
      return;
    }
    try {
      const result =
        req.type === 'cycle'
          ? await jobs.cycle()
          : await jobs.maintain({ snapshotRetentionMs: req.snapshotRetentionMs, orphanAgeMs: req.orphanAgeMs });
      port.postMessage({ id: req.id, ok: true, result } satisfies LakeResponse);
    } catch (err) {
      port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies LakeResponse);
    }
  });
});
port.postMessage({ id: 0, ok: true, result: 'ready' } satisfies LakeResponse);
