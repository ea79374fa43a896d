import { fromBinary, fromJson, type JsonValue } from '@bufbuild/protobuf';
import type { PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError, isLakeSyncError, type ErrorCode } from '../errors.ts';
import {
  CheckpointInfoSchema,
  ErrorResponseSchema,
  PullResponseSchema,
  PushResponseSchema,
} from './gen/lakesync/v1/sync_pb.ts';
import { checkpointInfoJson, errorJson, pullResponseJson, pushRequestJson, pushResponseJson, readPushRequestJson } from './json-codec.ts';
import { changeFromPb } from './pb-mapping.ts';
import { decodeErrorProto, decodePullResponseProto, decodePushRequestProto, decodePushResponseProto } from './proto-decode.ts';
import {
  encodeCheckpointInfoProto,
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
 * (proto-encode.ts, proto-decode.ts). JSON the gateway writes, and the push
 * requests it reads, go through json-codec.ts (also by hand, checked against
 * protobuf-es); what only clients read goes through the generated messages.
 */
export type WireFormat = 'proto' | 'json';

export const CONTENT_TYPES: Readonly<Record<WireFormat, string>> = {
  proto: 'application/x-protobuf',
  json: 'application/json',
};

const encoder = new TextEncoder();
/** Ignore fields we do not know, so a newer peer can add fields without breaking an older one. */
const JSON_READ = { ignoreUnknownFields: true } as const;
const decoder = new TextDecoder('utf-8', { fatal: true });

// ---------- framing (JSON; protobuf has its own, same errors) ----------

function parseJson<T>(body: Uint8Array, fromJsonValue: (j: JsonValue) => T): T {
  // Errors of our own reader (json-codec.ts) are already LakeSyncErrors with their codes.
  try {
    return fromJsonValue(JSON.parse(decoder.decode(body)) as JsonValue);
  } catch (err) {
    if (isLakeSyncError(err)) throw err;
    throw new LakeSyncError('MALFORMED_BODY', 'body is not a valid JSON message', { cause: err });
  }
}

// ---------- push ----------

/** `maxDeltas`: refuse a longer list (TOO_MANY_DELTAS) before decoding its deltas. */
export function decodePushRequest(format: WireFormat, body: Uint8Array, maxDeltas = Infinity): PushInput {
  if (format === 'proto') return decodePushRequestProto(body, maxDeltas);
  return parseJson(body, (j) => readPushRequestJson(j, maxDeltas));
}

export function encodePushRequest(format: WireFormat, input: PushInput): WireBytes {
  if (format === 'proto') return encodePushRequestProto(input);
  return encoder.encode(pushRequestJson(input)) as WireBytes;
}

export function encodePushResponse(format: WireFormat, r: PushResult): WireBytes {
  if (format === 'proto') return encodePushResponseProto(r);
  return encoder.encode(pushResponseJson(r)) as WireBytes;
}

export function decodePushResponse(format: WireFormat, body: Uint8Array): PushResult {
  if (format === 'proto') return decodePushResponseProto(body);
  const msg = parseJson(body, (j) => fromJson(PushResponseSchema, j, JSON_READ));
  return { accepted: msg.accepted, duplicates: msg.duplicates, serverHlc: msg.serverHlc, cursor: msg.cursor };
}

// ---------- pull ----------

export function encodePullResponse(format: WireFormat, r: PullResult): WireBytes {
  if (format === 'proto') return encodePullResponseProto(r);
  return encoder.encode(pullResponseJson(r)) as WireBytes;
}

export function decodePullResponse(format: WireFormat, body: Uint8Array): PullResult {
  if (format === 'proto') return decodePullResponseProto(body);
  const msg = parseJson(body, (j) => fromJson(PullResponseSchema, j, JSON_READ));
  return { changes: msg.changes.map(changeFromPb), nextCursor: msg.nextCursor, hasMore: msg.hasMore, serverHlc: msg.serverHlc };
}

// ---------- errors ----------

export function encodeError(format: WireFormat, err: WireError): WireBytes {
  if (format === 'proto') return encodeErrorProto(err);
  return encoder.encode(errorJson(err)) as WireBytes;
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
  if (format === 'json') return encoder.encode(checkpointInfoJson(info)) as WireBytes;
  return encodeCheckpointInfoProto(info);
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
