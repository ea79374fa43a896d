/**
 * Protobuf encoders for proto/lakesync/v1/sync.proto, straight from the
 * domain types to bytes. The output is byte for byte what toBinary() of the
 * generated messages gives (fields in number order, proto3 implicit-presence
 * fields left out at their zero value, oneof and message fields always
 * written); proto.test.ts checks it.
 */
import type { Delta } from '../delta.ts';
import type { Change, PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError } from '../errors.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { isJsonText, type ColumnValue, type Columns } from '../values.ts';
import type { CheckpointInfo } from './codec.ts';
import { WireWriter, type WireBytes } from './wire-writer.ts';

/** The wire form of an error envelope (mirrors the Error message). */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly requestId: string;
  readonly deltaIndex: number;
}

// Tags (fieldNo << 3 | wireType): 0 varint, 1 64-bit, 2 length-delimited.
const T1_VARINT = 0x08;
const T1_LEN = 0x0a;
const T2_VARINT = 0x10;
const T2_LEN = 0x12;
const T3_VARINT = 0x18;
const T3_LEN = 0x1a;
const T4_VARINT = 0x20;
const T4_BIT64 = 0x21;
const T4_LEN = 0x22;
const T5_VARINT = 0x28;
const T5_LEN = 0x2a;
const T6_VARINT = 0x30;
const T6_LEN = 0x32;
const T7_LEN = 0x3a;

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;

const w = new WireWriter();

/** Run an encoder on the shared writer and copy the result out. */
function encode<T>(write: (value: T) => void, value: T): WireBytes {
  w.reset();
  try {
    write(value);
  } catch (err) {
    w.reset();
    throw err;
  }
  return w.finish();
}

function fieldError(field: string, what: string): Error {
  return new Error(`cannot encode field lakesync.v1.${field} to binary: ${what}`);
}

// ---------- scalar fields (implicit presence: zero values are not written) ----------

function stringField(tag: number, s: string): void {
  if (s !== '') w.tagString(tag, s);
}

function uint32Field(tag: number, v: number, field: string): void {
  if (v !== 0) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw fieldError(field, `invalid uint32: ${v}`);
    w.uint32(tag);
    w.uint32(v);
  }
}

function int32Field(tag: number, v: number, field: string): void {
  if (v !== 0) {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw fieldError(field, `invalid int32: ${v}`);
    w.uint32(tag);
    w.int32(v);
  }
}

function uint64Field(tag: number, v: bigint, field: string): void {
  if (v !== 0n) {
    if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw fieldError(field, `invalid uint64: ${v}`);
    w.uint32(tag);
    w.uint64(v);
  }
}

// ---------- values ----------

/** The body of a Value message: exactly one arm of the oneof, written even at its zero value. */
function writeValue(v: ColumnValue): void {
  if (v === null) {
    w.uint32(T1_VARINT);
    w.uint32(0); // google.protobuf.NullValue.NULL_VALUE
  } else if (typeof v === 'string') {
    w.uint32(T2_LEN);
    w.string(v);
  } else if (typeof v === 'bigint') {
    if (v < I64_MIN || v > I64_MAX) throw fieldError('Value.int_value', `invalid int64: ${v}`);
    w.uint32(T3_VARINT);
    w.int64(v);
  } else if (typeof v === 'number') {
    w.uint32(T4_BIT64);
    w.double(v);
  } else if (typeof v === 'boolean') {
    w.uint32(T5_VARINT);
    w.bool(v);
  } else if (isJsonText(v)) {
    w.uint32(T6_LEN);
    w.string(v.json);
  } else {
    throw new LakeSyncError('INVALID_VALUE', 'unsupported value');
  }
}

/** A Value message field: tag, length, body. */
function valueField(tag: number, v: ColumnValue): void {
  // Fixed sizes first, without a length fix-up.
  if (v === null) {
    w.bytes3(tag, 2, T1_VARINT, 3);
    w.bytes3(0, 0, 0, 1);
  } else if (typeof v === 'boolean') {
    w.bytes3(tag, 2, T5_VARINT, 3);
    w.bytes3(v ? 1 : 0, 0, 0, 1);
  } else if (typeof v === 'number') {
    w.bytes3(tag, 9, T4_BIT64, 3);
    w.double(v);
  } else {
    w.bytes3(tag, 0, 0, 1);
    const at = w.fork(1);
    writeValue(v);
    w.join(at, 1);
  }
}

function stampField(tag: number, s: Stamp | null): void {
  if (s === null) return;
  w.uint32(tag);
  const at = w.fork(1);
  uint64Field(T1_VARINT, s.hlc, 'Stamp.hlc');
  stringField(T2_LEN, s.clientId);
  w.join(at, 1);
}

// ---------- deltas ----------

function opNumber(op: Delta['op']): number {
  switch (op) {
    case 'insert':
      return 1;
    case 'update':
      return 2;
    case 'delete':
      return 3;
    default:
      throw fieldError('Delta.op', `invalid int32: ${String(op)}`);
  }
}

function writeColumns(cols: Columns): void {
  for (const name in cols) {
    w.uint32(T5_LEN);
    const at = w.fork(1);
    stringField(T1_LEN, name);
    valueField(T2_LEN, cols[name] as ColumnValue);
    w.join(at, 1);
  }
}

/** Most deltas are 128 bytes to 16 KiB long: a two-byte length prefix. */
const DELTA_LEN_GUESS = 2;

function deltaField(tag: number, d: Delta): void {
  w.uint32(tag);
  const at = w.fork(DELTA_LEN_GUESS);
  stringField(T1_LEN, d.deltaId);
  stringField(T2_LEN, d.table);
  stringField(T3_LEN, d.rowId);
  w.uint32(T4_VARINT);
  w.uint32(opNumber(d.op));
  writeColumns(d.columns);
  uint64Field(T6_VARINT, d.hlc, 'Delta.hlc');
  stringField(T7_LEN, d.clientId);
  w.join(at, DELTA_LEN_GUESS);
}

// ---------- rows and changes ----------

function writeRow(r: RowState): void {
  stringField(T1_LEN, r.table);
  stringField(T2_LEN, r.rowId);
  stampField(T3_LEN, r.inserted);
  stampField(T4_LEN, r.deleted);
  const cols = r.columns;
  for (const name of Object.keys(cols)) {
    const c = cols[name] as ColumnState;
    w.uint32(T5_LEN);
    const at = w.fork(1);
    stringField(T1_LEN, name);
    valueField(T2_LEN, c.value);
    stampField(T3_LEN, c.stamp);
    w.join(at, 1);
  }
}

function changeField(c: Change): void {
  w.uint32(T1_LEN);
  const at = w.fork(DELTA_LEN_GUESS);
  switch (c.kind) {
    case 'delta':
      deltaField(T1_LEN, c.delta);
      break;
    case 'row': {
      w.uint32(T2_LEN);
      const row = w.fork(DELTA_LEN_GUESS);
      writeRow(c.row);
      w.join(row, DELTA_LEN_GUESS);
      break;
    }
    case 'evict': {
      w.uint32(T3_LEN);
      const ref = w.fork(1);
      stringField(T1_LEN, c.table);
      stringField(T2_LEN, c.rowId);
      w.join(ref, 1);
      break;
    }
    default:
      throw new Error(`cannot encode change of kind ${String((c as { kind: unknown }).kind)}`);
  }
  w.join(at, DELTA_LEN_GUESS);
}

// ---------- messages ----------

function writePushRequest(input: PushInput): void {
  stringField(T1_LEN, input.clientId);
  uint32Field(T2_VARINT, input.schemaVersion, 'PushRequest.schema_version');
  const deltas = input.deltas;
  for (let i = 0; i < deltas.length; i++) deltaField(T3_LEN, deltas[i] as Delta);
}

function writePushResponse(r: PushResult): void {
  uint32Field(T1_VARINT, r.accepted, 'PushResponse.accepted');
  uint32Field(T2_VARINT, r.duplicates, 'PushResponse.duplicates');
  uint64Field(T3_VARINT, r.serverHlc, 'PushResponse.server_hlc');
  stringField(T4_LEN, r.cursor);
}

function writePullResponse(r: PullResult): void {
  const changes = r.changes;
  for (let i = 0; i < changes.length; i++) changeField(changes[i] as Change);
  stringField(T2_LEN, r.nextCursor);
  if (r.hasMore) {
    w.uint32(T3_VARINT);
    w.bool(true);
  }
  uint64Field(T4_VARINT, r.serverHlc, 'PullResponse.server_hlc');
}

function writeErrorResponse(e: WireError): void {
  w.uint32(T1_LEN);
  const at = w.fork(1);
  stringField(T1_LEN, e.code);
  stringField(T2_LEN, e.message);
  stringField(T3_LEN, e.requestId);
  int32Field(T4_VARINT, e.deltaIndex, 'Error.delta_index');
  w.join(at, 1);
}

export function encodePushRequestProto(input: PushInput): WireBytes {
  return encode(writePushRequest, input);
}

export function encodePushResponseProto(r: PushResult): WireBytes {
  return encode(writePushResponse, r);
}

export function encodePullResponseProto(r: PullResult): WireBytes {
  return encode(writePullResponse, r);
}

export function encodeErrorProto(e: WireError): WireBytes {
  return encode(writeErrorResponse, e);
}

function writeCheckpointInfo(info: CheckpointInfo): void {
  stringField(T1_LEN, info.checkpointId);
  stringField(T2_LEN, info.cursor);
  uint32Field(T3_VARINT, info.schemaVersion, 'CheckpointInfo.schema_version');
  for (const c of info.chunks) {
    w.uint32(T4_LEN);
    const at = w.fork(1);
    stringField(T1_LEN, c.table);
    uint32Field(T2_VARINT, c.index, 'CheckpointChunkRef.index');
    uint32Field(T3_VARINT, c.rows, 'CheckpointChunkRef.rows');
    w.join(at, 1);
  }
  if (info.createdAtMs !== 0) {
    if (!Number.isSafeInteger(info.createdAtMs)) throw fieldError('CheckpointInfo.created_at_ms', `invalid int64: ${info.createdAtMs}`);
    w.uint32(T5_VARINT);
    w.int64(BigInt(info.createdAtMs));
  }
}

export function encodeCheckpointInfoProto(info: CheckpointInfo): WireBytes {
  return encode(writeCheckpointInfo, info);
}
