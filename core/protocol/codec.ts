import { create, fromBinary, fromJson, toBinary, toJson, type JsonValue } from '@bufbuild/protobuf';
import type { PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError, isLakeSyncError, type ErrorCode } from '../errors.ts';
import {
  CheckpointInfoSchema,
  ErrorResponseSchema,
  PullResponseSchema,
  PushRequestSchema,
  PushResponseSchema,
  type PullResponse as PbPullResponse,
} from './gen/lakesync/v1/sync_pb.ts';
import { changeFromPb, changeToPb, deltaFromPb, deltaToPb } from './pb-mapping.ts';
import { decodeErrorProto, decodePullResponseProto, decodePushRequestProto, decodePushResponseProto } from './proto-decode.ts';
import {
  encodeErrorProto,
  encodePullResponseProto,
  encodePushRequestProto,
  encodePushResponseProto,
  type WireError,
} from './proto-encode.ts';
import type { WireBytes } from './wire-writer.ts';

export type { WireBytes } from './wire-writer.ts';
export type { WireError } from './proto-encode.ts';
export { deltaFromPb, deltaToPb } from './pb-mapping.ts';

/**
 * Wire formats: protobuf (application/x-protobuf) or the proto3 JSON mapping
 * (application/json). Protobuf goes through the hand-written codec
 * (proto-encode.ts, proto-decode.ts); JSON through the generated messages.
 */
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

// ---------- framing (JSON; protobuf has its own, same errors) ----------

function parseJson<T>(body: Uint8Array, fromJsonValue: (j: JsonValue) => T): T {
  try {
    return fromJsonValue(JSON.parse(decoder.decode(body)) as JsonValue);
  } catch (err) {
    if (isLakeSyncError(err)) throw err;
    throw new LakeSyncError('MALFORMED_BODY', 'body is not a valid JSON message', { cause: err });
  }
}

function serializeJson(json: JsonValue): WireBytes {
  return encoder.encode(JSON.stringify(json));
}

// ---------- push ----------

export function decodePushRequest(format: WireFormat, body: Uint8Array): PushInput {
  if (format === 'proto') return decodePushRequestProto(body);
  const msg = parseJson(body, (j) => fromJson(PushRequestSchema, j, JSON_READ));
  return { clientId: msg.clientId, schemaVersion: msg.schemaVersion, deltas: msg.deltas.map((d, i) => deltaFromPb(d, i)) };
}

export function encodePushRequest(format: WireFormat, input: PushInput): WireBytes {
  if (format === 'proto') return encodePushRequestProto(input);
  const msg = create(PushRequestSchema, {
    clientId: input.clientId,
    schemaVersion: input.schemaVersion,
    deltas: input.deltas.map(deltaToPb),
  });
  return serializeJson(toJson(PushRequestSchema, msg, JSON_OPTIONS));
}

export function encodePushResponse(format: WireFormat, r: PushResult): WireBytes {
  if (format === 'proto') return encodePushResponseProto(r);
  const msg = create(PushResponseSchema, {
    accepted: r.accepted,
    duplicates: r.duplicates,
    serverHlc: r.serverHlc,
    cursor: r.cursor,
  });
  return serializeJson(toJson(PushResponseSchema, msg, JSON_OPTIONS));
}

export function decodePushResponse(format: WireFormat, body: Uint8Array): PushResult {
  if (format === 'proto') return decodePushResponseProto(body);
  const msg = parseJson(body, (j) => fromJson(PushResponseSchema, j, JSON_READ));
  return { accepted: msg.accepted, duplicates: msg.duplicates, serverHlc: msg.serverHlc, cursor: msg.cursor };
}

// ---------- pull ----------

export function encodePullResponse(format: WireFormat, r: PullResult): WireBytes {
  if (format === 'proto') return encodePullResponseProto(r);
  const msg: PbPullResponse = {
    $typeName: 'lakesync.v1.PullResponse',
    changes: r.changes.map(changeToPb),
    nextCursor: r.nextCursor,
    hasMore: r.hasMore,
    serverHlc: r.serverHlc,
  };
  return serializeJson(toJson(PullResponseSchema, msg, JSON_OPTIONS));
}

export function decodePullResponse(format: WireFormat, body: Uint8Array): PullResult {
  if (format === 'proto') return decodePullResponseProto(body);
  const msg = parseJson(body, (j) => fromJson(PullResponseSchema, j, JSON_READ));
  return { changes: msg.changes.map(changeFromPb), nextCursor: msg.nextCursor, hasMore: msg.hasMore, serverHlc: msg.serverHlc };
}

// ---------- errors ----------

export function encodeError(format: WireFormat, err: WireError): WireBytes {
  if (format === 'proto') return encodeErrorProto(err);
  const msg = create(ErrorResponseSchema, { error: err });
  return serializeJson(toJson(ErrorResponseSchema, msg, JSON_OPTIONS));
}

export function decodeError(format: WireFormat, body: Uint8Array): WireError | null {
  try {
    if (format === 'proto') return decodeErrorProto(body);
    const e = parseJson(body, (j) => fromJson(ErrorResponseSchema, j, JSON_READ)).error;
    return e === undefined ? null : { code: e.code, message: e.message, requestId: e.requestId, deltaIndex: e.deltaIndex };
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

// ---------- checkpoints ----------

/** GET /v1/checkpoint: the newest checkpoint a client can load before pulling from `cursor`. */
export interface CheckpointInfo {
  readonly checkpointId: string;
  readonly cursor: string;
  readonly schemaVersion: number;
  readonly createdAtMs: number;
  readonly chunks: readonly { readonly table: string; readonly index: number; readonly rows: number }[];
}

export function encodeCheckpointInfo(format: WireFormat, info: CheckpointInfo): WireBytes {
  const msg = create(CheckpointInfoSchema, {
    checkpointId: info.checkpointId,
    cursor: info.cursor,
    schemaVersion: info.schemaVersion,
    createdAtMs: BigInt(info.createdAtMs),
    chunks: info.chunks.map((c) => ({ table: c.table, index: c.index, rows: c.rows })),
  });
  if (format === 'json') return serializeJson(toJson(CheckpointInfoSchema, msg, JSON_OPTIONS));
  return toBinary(CheckpointInfoSchema, msg) as WireBytes;
}

export function decodeCheckpointInfo(format: WireFormat, body: Uint8Array): CheckpointInfo {
  let msg;
  if (format === 'json') msg = parseJson(body, (j) => fromJson(CheckpointInfoSchema, j, JSON_READ));
  else {
    try {
      msg = fromBinary(CheckpointInfoSchema, body);
    } catch (err) {
      throw new LakeSyncError('MALFORMED_BODY', 'body is not a valid protobuf message', { cause: err });
    }
  }
  return {
    checkpointId: msg.checkpointId,
    cursor: msg.cursor,
    schemaVersion: msg.schemaVersion,
    createdAtMs: Number(msg.createdAtMs),
    chunks: msg.chunks.map((c) => ({ table: c.table, index: c.index, rows: c.rows })),
  };
}
