import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { ByteWriter } from './codec/bytes.ts';
import { writeColumns } from './codec/values.ts';
import type { Hlc } from './hlc.ts';
import type { Columns } from './values.ts';

export type Op = 'insert' | 'update' | 'delete';

/**
 * One change to one row at column level. `columns` holds only what changed;
 * deletes carry none. `deltaId` is a content hash (see computeDeltaId), so a
 * re-sent delta is recognised as the same delta everywhere.
 */
export interface Delta {
  readonly deltaId: string;
  readonly table: string;
  readonly rowId: string;
  readonly op: Op;
  readonly columns: Columns;
  readonly hlc: Hlc;
  readonly clientId: string;
}

export type DeltaContent = Omit<Delta, 'deltaId'>;

export const OP_TAG: Readonly<Record<Op, number>> = { insert: 1, update: 2, delete: 3 };
export const TAG_OP: readonly (Op | undefined)[] = [undefined, 'insert', 'update', 'delete'];

const hashInput = new ByteWriter(1024);

type Digest = (input: Uint8Array) => Uint8Array;

/**
 * SHA-256: the runtime's native one when it has a synchronous one (Node, and
 * Workers with nodejs_compat expose node:crypto through getBuiltinModule;
 * about twice as fast as pure JS on small inputs), else @noble/hashes.
 * Looked up at run time so core/ keeps no static node:* import.
 */
function pickDigest(): Digest {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const nodeCrypto = proc?.getBuiltinModule?.('node:crypto') as
    | { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Uint8Array }
    | undefined;
  const native = nodeCrypto?.hash;
  if (typeof native === 'function') return (input) => native('sha256', input, 'buffer');
  return (input) => sha256(input);
}

const digest: Digest = pickDigest();

/**
 * Deterministic id of a delta: the first 128 bits of SHA-256 over a
 * length-prefixed encoding of every field, columns sorted by name (see
 * docs/protocol.md for the byte layout). Clients compute it; the gateway
 * recomputes it and refuses a mismatch.
 */
export function computeDeltaId(d: DeltaContent): string {
  const w = hashInput;
  w.length = 0;
  w.byte(1); // encoding version
  w.str(d.clientId);
  w.u64(d.hlc);
  w.str(d.table);
  w.str(d.rowId);
  w.byte(OP_TAG[d.op]);
  writeColumns(w, d.columns);
  return bytesToHex(digest(w.bytes()).subarray(0, 16));
}

export function makeDelta(content: DeltaContent): Delta {
  return {
    deltaId: computeDeltaId(content),
    table: content.table,
    rowId: content.rowId,
    op: content.op,
    columns: content.columns,
    hlc: content.hlc,
    clientId: content.clientId,
  };
}
