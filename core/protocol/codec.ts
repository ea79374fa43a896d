import { create, fromBinary, fromJson, toBinary, toJson, type JsonValue } from '@bufbuild/protobuf';
import { NullValue } from '@bufbuild/protobuf/wkt';
import type { Delta, Op } from '../delta.ts';
import type { Change, PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError, isLakeSyncError, type ErrorCode } from '../errors.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { emptyColumns, nullRecord, isJsonText, type ColumnValue, type Columns } from '../values.ts';
import {
  ErrorResponseSchema,
  Op as PbOp,
  PullResponseSchema,
  PushRequestSchema,
  PushResponseSchema,
  type Change as PbChange,
  type ColumnValue as PbColumnValue,
  type Delta as PbDelta,
  type PullResponse as PbPullResponse,
  type RowState as PbRowState,
  type Stamp as PbStamp,
  type Value as PbValue,
} from './gen/lakesync/v1/sync_pb.ts';

/** Wire formats: protobuf (application/x-protobuf) or the proto3 JSON mapping (application/json). */
export type WireFormat = 'proto' | 'json';

export const CONTENT_TYPES: Readonly<Record<WireFormat, string>> = {
  proto: 'application/x-protobuf',
  json: 'application/json',
};

const encoder = new TextEncoder();
/** Emit every field, defaults included, so JSON readers need no proto3 knowledge. */
const JSON_OPTIONS = { alwaysEmitImplicit: true } as const;
/** Ignore fields we do not know, so a newer peer can add fields without breaking an older one. */
const JSON_READ = { ignoreUnknownFields: true } as const;
const decoder = new TextDecoder('utf-8', { fatal: true });

// ---------- values ----------

function valueToPb(v: ColumnValue): PbValue['kind'] {
  if (v === null) return { case: 'nullValue', value: NullValue.NULL_VALUE };
  if (typeof v === 'string') return { case: 'stringValue', value: v };
  if (typeof v === 'bigint') return { case: 'intValue', value: v };
  if (typeof v === 'number') return { case: 'doubleValue', value: v };
  if (typeof v === 'boolean') return { case: 'boolValue', value: v };
  if (isJsonText(v)) return { case: 'jsonValue', value: v.json };
  throw new LakeSyncError('INVALID_VALUE', 'unsupported value');
}

function valueFromPb(kind: PbValue['kind'] | undefined, where: string, deltaIndex: number): ColumnValue {
  switch (kind?.case) {
    case 'nullValue':
      return null;
    case 'stringValue':
    case 'intValue':
    case 'doubleValue':
    case 'boolValue':
      return kind.value;
    case 'jsonValue':
      return { json: kind.value };
    default:
      throw new LakeSyncError('INVALID_VALUE', `${where}: value has no kind`, { deltaIndex });
  }
}

function columnsToPb(cols: Columns): PbColumnValue[] {
  const out: PbColumnValue[] = [];
  for (const name in cols) {
    out.push(columnValueToPb(name, cols[name] as ColumnValue));
  }
  return out;
}

function columnValueToPb(name: string, v: ColumnValue): PbColumnValue {
  return { $typeName: 'lakesync.v1.ColumnValue', name, value: { $typeName: 'lakesync.v1.Value', kind: valueToPb(v) } };
}

function columnsFromPb(list: readonly PbColumnValue[], deltaIndex: number): Columns {
  const out = emptyColumns();
  for (const c of list) {
    if (c.name in out) throw new LakeSyncError('INVALID_REQUEST', `column "${c.name}" appears twice`, { deltaIndex });
    out[c.name] = valueFromPb(c.value?.kind, c.name, deltaIndex);
  }
  return out;
}

// ---------- deltas ----------

const OP_TO_PB: Readonly<Record<Op, PbOp>> = { insert: PbOp.INSERT, update: PbOp.UPDATE, delete: PbOp.DELETE };

function opFromPb(op: PbOp, deltaIndex: number): Op {
  switch (op) {
    case PbOp.INSERT:
      return 'insert';
    case PbOp.UPDATE:
      return 'update';
    case PbOp.DELETE:
      return 'delete';
    default:
      throw new LakeSyncError('INVALID_REQUEST', 'delta op is missing or unknown', { deltaIndex });
  }
}

export function deltaToPb(d: Delta): PbDelta {
  return {
    $typeName: 'lakesync.v1.Delta',
    deltaId: d.deltaId,
    table: d.table,
    rowId: d.rowId,
    op: OP_TO_PB[d.op],
    columns: columnsToPb(d.columns),
    hlc: d.hlc,
    clientId: d.clientId,
  };
}

export function deltaFromPb(p: PbDelta, deltaIndex = -1): Delta {
  return {
    deltaId: p.deltaId,
    table: p.table,
    rowId: p.rowId,
    op: opFromPb(p.op, deltaIndex),
    columns: columnsFromPb(p.columns, deltaIndex),
    hlc: p.hlc,
    clientId: p.clientId,
  };
}

// ---------- row states ----------

function stampToPb(s: Stamp | null): PbStamp | undefined {
  return s === null ? undefined : { $typeName: 'lakesync.v1.Stamp', hlc: s.hlc, clientId: s.clientId };
}

function stampFromPb(s: PbStamp | undefined): Stamp | null {
  return s === undefined ? null : { hlc: s.hlc, clientId: s.clientId };
}

function rowToPb(r: RowState): PbRowState {
  return {
    $typeName: 'lakesync.v1.RowState',
    table: r.table,
    rowId: r.rowId,
    inserted: stampToPb(r.inserted),
    deleted: stampToPb(r.deleted),
    columns: Object.keys(r.columns).map((name) => {
      const c = r.columns[name] as ColumnState;
      return {
        $typeName: 'lakesync.v1.ColumnState' as const,
        name,
        value: { $typeName: 'lakesync.v1.Value' as const, kind: valueToPb(c.value) },
        stamp: stampToPb(c.stamp),
      };
    }),
  };
}

function rowFromPb(p: PbRowState): RowState {
  const columns = nullRecord<ColumnState>();
  for (const c of p.columns) {
    const stamp = stampFromPb(c.stamp);
    if (stamp === null) throw new LakeSyncError('MALFORMED_BODY', 'column state without stamp');
    columns[c.name] = { value: valueFromPb(c.value?.kind, c.name, -1), stamp };
  }
  return { table: p.table, rowId: p.rowId, inserted: stampFromPb(p.inserted), deleted: stampFromPb(p.deleted), columns };
}

function changeToPb(c: Change): PbChange {
  switch (c.kind) {
    case 'delta':
      return { $typeName: 'lakesync.v1.Change', kind: { case: 'delta', value: deltaToPb(c.delta) } };
    case 'row':
      return { $typeName: 'lakesync.v1.Change', kind: { case: 'row', value: rowToPb(c.row) } };
    case 'evict':
      return {
        $typeName: 'lakesync.v1.Change',
        kind: { case: 'evict', value: { $typeName: 'lakesync.v1.RowRef', table: c.table, rowId: c.rowId } },
      };
  }
}

function changeFromPb(c: PbChange): Change {
  switch (c.kind.case) {
    case 'delta':
      return { kind: 'delta', delta: deltaFromPb(c.kind.value) };
    case 'row':
      return { kind: 'row', row: rowFromPb(c.kind.value) };
    case 'evict':
      return { kind: 'evict', table: c.kind.value.table, rowId: c.kind.value.rowId };
    default:
      throw new LakeSyncError('MALFORMED_BODY', 'change has no kind');
  }
}

// ---------- framing ----------

function parseBody<T>(format: WireFormat, body: Uint8Array, fromProto: (b: Uint8Array) => T, fromJsonValue: (j: JsonValue) => T): T {
  try {
    if (format === 'proto') return fromProto(body);
    return fromJsonValue(JSON.parse(decoder.decode(body)) as JsonValue);
  } catch (err) {
    if (isLakeSyncError(err)) throw err;
    throw new LakeSyncError('MALFORMED_BODY', `body is not a valid ${format === 'proto' ? 'protobuf' : 'JSON'} message`, {
      cause: err,
    });
  }
}

/** Bytes backed by a plain ArrayBuffer, so they can be a fetch body. */
export type WireBytes = Uint8Array<ArrayBuffer>;

function serialize(format: WireFormat, proto: () => Uint8Array, json: () => JsonValue): WireBytes {
  if (format === 'json') return encoder.encode(JSON.stringify(json()));
  const bytes = proto();
  return bytes.buffer instanceof ArrayBuffer ? (bytes as WireBytes) : new Uint8Array(bytes);
}

// ---------- push ----------

export function decodePushRequest(format: WireFormat, body: Uint8Array): PushInput {
  const msg = parseBody(
    format,
    body,
    (b) => fromBinary(PushRequestSchema, b),
    (j) => fromJson(PushRequestSchema, j, JSON_READ),
  );
  return { clientId: msg.clientId, schemaVersion: msg.schemaVersion, deltas: msg.deltas.map((d, i) => deltaFromPb(d, i)) };
}

export function encodePushRequest(format: WireFormat, input: PushInput): WireBytes {
  const msg = create(PushRequestSchema, {
    clientId: input.clientId,
    schemaVersion: input.schemaVersion,
    deltas: input.deltas.map(deltaToPb),
  });
  return serialize(format, () => toBinary(PushRequestSchema, msg), () => toJson(PushRequestSchema, msg, JSON_OPTIONS));
}

export function encodePushResponse(format: WireFormat, r: PushResult): WireBytes {
  const msg = create(PushResponseSchema, {
    accepted: r.accepted,
    duplicates: r.duplicates,
    serverHlc: r.serverHlc,
    cursor: r.cursor,
  });
  return serialize(format, () => toBinary(PushResponseSchema, msg), () => toJson(PushResponseSchema, msg, JSON_OPTIONS));
}

export function decodePushResponse(format: WireFormat, body: Uint8Array): PushResult {
  const msg = parseBody(format, body, (b) => fromBinary(PushResponseSchema, b), (j) => fromJson(PushResponseSchema, j, JSON_READ));
  return { accepted: msg.accepted, duplicates: msg.duplicates, serverHlc: msg.serverHlc, cursor: msg.cursor };
}

// ---------- pull ----------

export function encodePullResponse(format: WireFormat, r: PullResult): WireBytes {
  const msg: PbPullResponse = {
    $typeName: 'lakesync.v1.PullResponse',
    changes: r.changes.map(changeToPb),
    nextCursor: r.nextCursor,
    hasMore: r.hasMore,
    serverHlc: r.serverHlc,
  };
  return serialize(format, () => toBinary(PullResponseSchema, msg), () => toJson(PullResponseSchema, msg, JSON_OPTIONS));
}

export function decodePullResponse(format: WireFormat, body: Uint8Array): PullResult {
  const msg = parseBody(format, body, (b) => fromBinary(PullResponseSchema, b), (j) => fromJson(PullResponseSchema, j, JSON_READ));
  return { changes: msg.changes.map(changeFromPb), nextCursor: msg.nextCursor, hasMore: msg.hasMore, serverHlc: msg.serverHlc };
}

// ---------- errors ----------

export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly requestId: string;
  readonly deltaIndex: number;
}

export function encodeError(format: WireFormat, err: WireError): WireBytes {
  const msg = create(ErrorResponseSchema, { error: err });
  return serialize(format, () => toBinary(ErrorResponseSchema, msg), () => toJson(ErrorResponseSchema, msg, JSON_OPTIONS));
}

export function decodeError(format: WireFormat, body: Uint8Array): WireError | null {
  try {
    const msg = parseBody(format, body, (b) => fromBinary(ErrorResponseSchema, b), (j) => fromJson(ErrorResponseSchema, j, JSON_READ));
    return msg.error ?? null;
  } catch {
    return null; // not an error envelope (a proxy page, say): the caller reports the status
  }
}

export function wireErrorOf(err: unknown, requestId: string): { status: number; error: WireError } {
  if (isLakeSyncError(err)) {
    return { status: err.status, error: { code: err.code, message: err.message, requestId, deltaIndex: err.deltaIndex } };
  }
  const code: ErrorCode = 'INTERNAL';
  return { status: 500, error: { code, message: 'internal error', requestId, deltaIndex: -1 } };
}
