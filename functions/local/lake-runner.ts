import { Worker } from 'node:worker_threads';
import type { CycleReport } from '../../core/lake/jobs.ts';
import type { LakeRequest, LakeResponse, LakeWorkerData } from './lake-worker.ts';

/**
 * Runs lake-worker.ts on a worker thread and hands it work. The worker is
 * TypeScript; it registers tsx itself, so this works under `node --import
 * tsx` and inside test runners alike. Eval'd code resolves bare imports from
 * the working directory, so tsx is located here and passed as a URL.
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx)
  .then(({ register }) => { register(); return import(workerData.entry); })
  .catch((err) => { console.error('lake worker failed to start:', err); process.exit(1); });
`;

const TSX_API = import.meta.resolve('tsx/esm/api');

/** One worker thread and the requests waiting for its answers. */
class LakeThread {
  readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  /** Set once the worker is gone: later calls fail at once instead of waiting forever. */
  dead: Error | null = null;

  constructor(data: LakeWorkerData) {
    const entry = new URL('./lake-worker.ts', import.meta.url).href;
    this.worker = new Worker(BOOT, { eval: true, workerData: { ...data, entry, tsx: TSX_API } });
    let markReady: () => void = () => {};
    let markFailed: (err: Error) => void = () => {};
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    // No unhandled rejection when nobody has called yet; callers see it through call().
    this.ready.catch(() => undefined);
    this.worker.on('message', (m: LakeResponse) => {
      if (m.id === 0) return markReady();
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    const fail = (err: Error): void => {
      this.dead ??= err;
      markFailed(err); // a worker that never got ready (e.g. it failed to start)
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`lake worker exited (${code})`)));
  }

  async call<T>(req: Omit<LakeRequest, 'id'>): Promise<T> {
    await this.ready;
    if (this.dead !== null) throw this.dead;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }
}

export class LakeRunner {
  private thread: LakeThread;
  private running: Promise<CycleReport> | null = null;
  private closed = false;

  constructor(private readonly data: LakeWorkerData) {
    this.thread = new LakeThread(data);
  }

  /**
   * The live worker. One that died (a crash, or it failed to start) is
   * replaced on the next request: a flush interrupted at any step is safe to
   * run again, and without this the buffer would never be flushed again.
   */
  private live(): LakeThread {
    if (this.thread.dead !== null && !this.closed) this.thread = new LakeThread(this.data);
    return this.thread;
  }

  /** One flush cycle; concurrent calls share the running one. */
  cycle(): Promise<CycleReport> {
    this.running ??= this.live()
      .call<CycleReport>({ type: 'cycle' })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /**
   * A cycle that starts after this call (POST /v1/admin/flush): joining one
   * already running would answer before the deltas acknowledged since it
   * read the buffer are flushed.
   */
  async flushNow(): Promise<CycleReport> {
    await this.running?.catch(() => undefined);
    return this.cycle();
  }

  maintain(options: { snapshotRetentionMs: number; orphanAgeMs: number }): Promise<string[]> {
    return this.live().call<string[]>({ type: 'maintain', ...options });
  }

  /** Waits for running work, then closes the worker's connections and stops it. */
  async close(): Promise<void> {
    this.closed = true;
    const thread = this.thread;
    if (thread.dead === null) await thread.call({ type: 'close' }).catch(() => undefined);
    await thread.exited;
  }
}
