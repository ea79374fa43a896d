import type * as arrow from 'apache-arrow';
import type { WriterSpec } from './parquet.ts';

/**
 * Worker threads that encode Parquet pieces (Arrow IPC in, Parquet bytes out)
 * with their own parquet-wasm instance, so the pieces of one file are
 * encoded in parallel. Only where the runtime has worker threads (Node); core
 * stays runtime-agnostic because the module is found at run time, not
 * imported, and everything falls back to encoding on the calling thread:
 * no worker threads, one CPU, or a worker script that does not load (a
 * bundle that left it out).
 */

interface NodeWorker {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  on(event: 'message', fn: (m: WorkerReply) => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  on(event: 'exit', fn: (code: number) => void): void;
  terminate(): Promise<number>;
  ref(): void;
  unref(): void;
}

type WorkerCtor = new (url: URL, options?: { resourceLimits?: object }) => NodeWorker;

interface WorkerReply {
  readonly ready?: boolean;
  readonly id?: number;
  readonly bytes?: Uint8Array;
  readonly error?: string;
  readonly memoryBytes?: number;
}

interface Job {
  resolve(bytes: Uint8Array): void;
  reject(e: Error): void;
}

/** A worker whose wasm memory grew past this is replaced once idle (wasm memory never shrinks). */
const RECYCLE_BYTES = 384 * 1024 * 1024;
/** Worker threads besides the calling thread, which encodes a piece too. */
const MAX_WORKERS = 3;

class Slot {
  worker: NodeWorker | null = null;
  /** True once the worker has loaded parquet-wasm, false if it failed to. */
  ready: Promise<boolean> = Promise.resolve(false);
  readonly jobs = new Map<number, Job>();
  recycle = false;
}

/** An Arrow Data tree as plain parts (buffers by Arrow's BufferType index) that can cross to a worker. */
export interface DataParts {
  readonly length: number;
  readonly nullCount: number;
  readonly buffers: readonly (ArrayBufferView | undefined)[];
  readonly children: readonly DataParts[];
}

function dataParts(d: arrow.Data, transfer: Set<ArrayBuffer>): DataParts {
  if (d.offset !== 0) throw new RangeError('a sliced Arrow batch cannot be handed to an encoder thread');
  const buffers = [d.valueOffsets, d.values, d.nullBitmap] as (ArrayBufferView | undefined)[];
  for (const b of buffers) if (b !== undefined && b !== null) transfer.add(b.buffer as ArrayBuffer);
  return { length: d.length, nullCount: d.nullCount, buffers, children: d.children.map((c) => dataParts(c, transfer)) };
}

export class ParquetEncodePool {
  private readonly slots: Slot[];
  private nextId = 1;
  /** Set when a worker failed to start or died: callers encode on their own thread from then on. */
  broken = false;
  /** Pieces the workers have encoded (for tests and benchmarks). */
  encoded = 0;

  constructor(
    private readonly Worker: WorkerCtor,
    threads: number,
  ) {
    this.slots = Array.from({ length: threads }, () => new Slot());
  }

  get size(): number {
    return this.slots.length;
  }

  /** Start the workers now (loading parquet-wasm takes a moment), so the first encode does not wait. */
  warm(): void {
    for (const s of this.slots) this.start(s);
  }

  /** Whether every worker loaded: until then nothing is handed over (a failed start costs no data). */
  async ready(): Promise<boolean> {
    if (this.broken) return false;
    const ok = await Promise.all(this.slots.map((s) => (this.start(s), s.ready)));
    return ok.every(Boolean) && !this.broken;
  }

  private start(slot: Slot): NodeWorker {
    if (slot.worker !== null) return slot.worker;
    const w = new this.Worker(new URL('./parquet-encode-worker.mjs', import.meta.url));
    let loaded: (ok: boolean) => void = () => {};
    slot.ready = new Promise<boolean>((resolve) => (loaded = resolve));
    w.on('message', (m) => {
      if (m.ready === true) {
        loaded(true);
        if (slot.jobs.size === 0) w.unref();
      }
      if (m.id === undefined) return;
      const job = slot.jobs.get(m.id);
      slot.jobs.delete(m.id);
      if (m.error !== undefined || m.bytes === undefined) job?.reject(new Error(m.error ?? 'parquet worker returned nothing'));
      else {
        this.encoded++;
        job?.resolve(m.bytes);
      }
      if (slot.jobs.size === 0) w.unref();
      if ((m.memoryBytes ?? 0) > RECYCLE_BYTES) slot.recycle = true;
      if (slot.recycle && slot.jobs.size === 0) {
        slot.recycle = false;
        slot.worker = null;
        void w.terminate();
        this.start(slot);
      }
    });
    const fail = (e: Error): void => {
      loaded(false);
      if (slot.worker !== w) return;
      this.broken = true;
      slot.worker = null;
      for (const job of slot.jobs.values()) job.reject(e);
      slot.jobs.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`parquet worker exited with code ${code}`)));
    // Referenced while it loads (someone may be waiting for ready()) and while it has jobs; an idle
    // pool never keeps the process alive. (Adding a listener refs a worker: this comes after them.)
    w.ref();
    slot.worker = w;
    return w;
  }

  /**
   * Parquet bytes for one record batch (`schemaIpc`: its schema as an Arrow
   * IPC stream). The batch's buffers are transferred, not copied: the batch
   * is unusable afterwards. The worker does the IPC serialization itself.
   */
  encodeBatch(schemaIpc: Uint8Array, batch: arrow.RecordBatch, spec: WriterSpec): Promise<Uint8Array> {
    const slot = this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    const w = this.start(slot);
    const id = this.nextId++;
    const transfer = new Set<ArrayBuffer>();
    const parts = dataParts(batch.data, transfer);
    return new Promise<Uint8Array>((resolve, reject) => {
      if (slot.jobs.size === 0) w.ref(); // a pending job does keep it alive
      slot.jobs.set(id, { resolve, reject });
      w.postMessage({ id, schema: schemaIpc, parts, spec }, [...transfer]);
    });
  }

  async close(): Promise<void> {
    const workers = this.slots.map((s) => s.worker).filter((w): w is NodeWorker => w !== null);
    for (const s of this.slots) {
      s.worker = null;
      // Their exit handlers no longer see them as this slot's: fail their jobs here.
      for (const job of s.jobs.values()) job.reject(new Error('parquet encode pool closed'));
      s.jobs.clear();
    }
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

let shared: ParquetEncodePool | null | undefined;

interface NodeProcess {
  getBuiltinModule?: (id: string) => unknown;
}

/**
 * The process-wide pool: one worker per CPU besides the calling thread's (at
 * most 3), or null where worker threads are unavailable or there is a single CPU.
 */
export function parquetEncodePool(): ParquetEncodePool | null {
  if (shared !== undefined) return shared?.broken === true ? null : shared;
  shared = null;
  const proc = (globalThis as { process?: NodeProcess }).process;
  const load = proc?.getBuiltinModule;
  if (load === undefined) return null;
  const wt = load.call(proc, 'node:worker_threads') as { Worker?: WorkerCtor; isMainThread?: boolean } | undefined;
  const os = load.call(proc, 'node:os') as { availableParallelism?: () => number } | undefined;
  const cpus = os?.availableParallelism?.() ?? 1;
  if (wt?.Worker === undefined || cpus < 2) return null;
  shared = new ParquetEncodePool(wt.Worker, Math.min(cpus - 1, MAX_WORKERS));
  return shared;
}
