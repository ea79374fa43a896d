import {
  computeDeltaId,
  decodePullResponse,
  decodePushRequest,
  encodePullResponse,
  encodePushRequest,
  type Change,
  type Delta,
  type PullResult,
  type PushInput,
  type WireFormat,
} from '../../core/index.ts';
import {
  reflectDecodePullResponse,
  reflectDecodePushRequest,
  reflectEncodePullResponse,
  reflectEncodePushRequest,
} from '../../core/protocol/reflect-codec.ts';
import type { BenchRow } from './table.ts';
import { CLIENT_ID, buildInserts, check, measure, now } from './support.ts';

const ID_COUNT = 100_000;
const BATCH = 1_000;
/** Messages per timed codec loop. */
const REPEAT = 50;

/** Small benchmarks for diagnosis: the content hash and the wire codecs. */
export async function benchMicro(): Promise<BenchRow[]> {
  const deltas = buildInserts(ID_COUNT);
  const rows: BenchRow[] = [];

  let sink = 0;
  const ids = await measure(() => {
    const t0 = now();
    for (const d of deltas) sink += computeDeltaId(d).length;
    return { t: now() - t0 };
  });
  rows.push({ name: 'computeDeltaId', count: ID_COUNT, unit: 'ids', seconds: (ids['t'] as number) / 1000, note: 'SHA-256 (node:crypto when available, else @noble/hashes) of a 4-column insert' });

  const input: PushInput = { clientId: CLIENT_ID, schemaVersion: 1, deltas: deltas.slice(0, BATCH) };
  const pull = {
    changes: input.deltas.map((delta): Change => ({ kind: 'delta', delta })),
    nextCursor: '1000',
    hasMore: false,
    serverHlc: (input.deltas[0] as Delta).hlc,
  };
  interface Codec {
    readonly label: string;
    readonly encodePush: (i: PushInput) => Uint8Array;
    readonly decodePush: (b: Uint8Array) => PushInput;
    readonly encodePull: (r: PullResult) => Uint8Array;
    readonly decodePull: (b: Uint8Array) => PullResult;
  }
  const wire = (format: WireFormat): Codec => ({
    label: format,
    encodePush: (i) => encodePushRequest(format, i),
    decodePush: (b) => decodePushRequest(format, b),
    encodePull: (r) => encodePullResponse(format, r),
    decodePull: (b) => decodePullResponse(format, b),
  });
  // The generated-message codec protobuf went through before the hand-written one.
  const reflect: Codec = {
    label: 'proto-reflect',
    encodePush: reflectEncodePushRequest,
    decodePush: reflectDecodePushRequest,
    encodePull: reflectEncodePullResponse,
    decodePull: reflectDecodePullResponse,
  };
  for (const codec of [wire('proto'), reflect, wire('json')]) {
    const format = codec.label;
    const pushBody = codec.encodePush(input);
    const pullBody = codec.encodePull(pull);
    check(codec.decodePush(pushBody).deltas.length === BATCH, `${format} push round trip`);
    check(codec.decodePull(pullBody).changes.length === BATCH, `${format} pull round trip`);
    const loop = (fn: () => Uint8Array | { deltas: readonly Delta[] } | { changes: readonly Change[] }): number => {
      const t0 = now();
      for (let i = 0; i < REPEAT; i++) {
        const r = fn();
        sink += r instanceof Uint8Array ? r.length : 'deltas' in r ? r.deltas.length : r.changes.length;
      }
      return now() - t0;
    };
    const m = await measure(() => ({
      pushEncode: loop(() => codec.encodePush(input)),
      pushDecode: loop(() => codec.decodePush(pushBody)),
      pullEncode: loop(() => codec.encodePull(pull)),
      pullDecode: loop(() => codec.decodePull(pullBody)),
    }));
    const size = (b: Uint8Array): string => `${(b.length / 1024).toFixed(0)} KiB per ${BATCH}`;
    const n = REPEAT * BATCH;
    rows.push(
      { name: `${format} encode PushRequest`, count: n, unit: 'deltas', seconds: (m['pushEncode'] as number) / 1000, note: size(pushBody) },
      { name: `${format} decode PushRequest`, count: n, unit: 'deltas', seconds: (m['pushDecode'] as number) / 1000, note: `${REPEAT} x ${BATCH} deltas` },
      { name: `${format} encode PullResponse`, count: n, unit: 'deltas', seconds: (m['pullEncode'] as number) / 1000, note: size(pullBody) },
      { name: `${format} decode PullResponse`, count: n, unit: 'deltas', seconds: (m['pullDecode'] as number) / 1000, note: `${REPEAT} x ${BATCH} changes` },
    );
  }
  check(sink > 0, 'results used');
  return rows;
}
