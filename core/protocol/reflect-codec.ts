/**
 * The protobuf codec as it was before proto-encode.ts / proto-decode.ts:
 * generated messages through @bufbuild/protobuf's create/toBinary/fromBinary.
 * Not used at run time; it is the reference the hand-written codec is tested
 * against (proto.test.ts) and measured against (test/bench/micro.ts).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError, isLakeSyncError } from '../errors.ts';
import {
  ErrorResponseSchema,
  PullResponseSchema,
  PushRequestSchema,
  PushResponseSchema,
  type PullResponse as PbPullResponse,
} from './gen/lakesync/v1/sync_pb.ts';
import { changeFromPb, changeToPb, deltaFromPb, deltaToPb } from './pb-mapping.ts';
import type { WireError } from './proto-encode.ts';

function parse<T>(body: Uint8Array, fromProto: (b: Uint8Array) => T): T {
  try {
    return fromProto(body);
  } catch (err) {
    if (isLakeSyncError(err)) throw err;
    throw new LakeSyncError('MALFORMED_BODY', 'body is not a valid protobuf message', { cause: err });
  }
}

export function reflectEncodePushRequest(input: PushInput): Uint8Array {
  const msg = create(PushRequestSchema, {
    clientId: input.clientId,
    schemaVersion: input.schemaVersion,
    deltas: input.deltas.map(deltaToPb),
  });
  return toBinary(PushRequestSchema, msg);
}

export function reflectDecodePushRequest(body: Uint8Array): PushInput {
  const msg = parse(body, (b) => fromBinary(PushRequestSchema, b));
  return { clientId: msg.clientId, schemaVersion: msg.schemaVersion, deltas: msg.deltas.map((d, i) => deltaFromPb(d, i)) };
}

export function reflectEncodePushResponse(r: PushResult): Uint8Array {
  const msg = create(PushResponseSchema, { accepted: r.accepted, duplicates: r.duplicates, serverHlc: r.serverHlc, cursor: r.cursor });
  return toBinary(PushResponseSchema, msg);
}

export function reflectDecodePushResponse(body: Uint8Array): PushResult {
  const msg = parse(body, (b) => fromBinary(PushResponseSchema, b));
  return { accepted: msg.accepted, duplicates: msg.duplicates, serverHlc: msg.serverHlc, cursor: msg.cursor };
}

export function reflectEncodePullResponse(r: PullResult): Uint8Array {
  const msg: PbPullResponse = {
    $typeName: 'lakesync.v1.PullResponse',
    changes: r.changes.map(changeToPb),
    nextCursor: r.nextCursor,
    hasMore: r.hasMore,
    serverHlc: r.serverHlc,
  };
  return toBinary(PullResponseSchema, msg);
}

export function reflectDecodePullResponse(body: Uint8Array): PullResult {
  const msg = parse(body, (b) => fromBinary(PullResponseSchema, b));
  return { changes: msg.changes.map(changeFromPb), nextCursor: msg.nextCursor, hasMore: msg.hasMore, serverHlc: msg.serverHlc };
}

export function reflectEncodeError(err: WireError): Uint8Array {
  return toBinary(ErrorResponseSchema, create(ErrorResponseSchema, { error: err }));
}

/** As decodeError('proto', …) was: null for anything that is not an error envelope. */
export function reflectDecodeError(body: Uint8Array): WireError | null {
  try {
    const e = parse(body, (b) => fromBinary(ErrorResponseSchema, b)).error;
    return e === undefined ? null : { code: e.code, message: e.message, requestId: e.requestId, deltaIndex: e.deltaIndex };
  } catch {
    return null;
  }
}
