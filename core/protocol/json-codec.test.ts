import { create, fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Delta } from '../delta.ts';
import type { Change, PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { isLakeSyncError } from '../errors.ts';
import type { RowState, Stamp } from '../merge.ts';
import type { ColumnValue } from '../values.ts';
import type { CheckpointInfo } from './codec.ts';
import { CheckpointInfoSchema, ErrorResponseSchema, PullResponseSchema, PushRequestSchema, PushResponseSchema } from './gen/lakesync/v1/sync_pb.ts';
import { checkpointInfoJson, errorJson, pullResponseJson, pushRequestJson, pushResponseJson, readPushRequestJson } from './json-codec.ts';
import { changeToPb, deltaFromPb, deltaToPb } from './pb-mapping.ts';

/** The reference: protobuf-es's proto3 JSON mapping of the generated messages, as the codec used it before. */
const EMIT = { alwaysEmitImplicit: true } as const;
const READ = { ignoreUnknownFields: true } as const;
const json = (v: JsonValue): string => JSON.stringify(v);

const text = fc.string({ unit: 'binary', maxLength: 12 });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const value: fc.Arbitrary<ColumnValue> = fc.oneof(
  fc.constant(null),
  text,
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.double(),
  fc.boolean(),
  text.map((t) => ({ json: t })),
);
const columns = fc.dictionary(fc.string({ maxLength: 6 }), value, { maxKeys: 4 });
const stamp: fc.Arbitrary<Stamp> = fc.record({ hlc: u64, clientId: text });
const delta: fc.Arbitrary<Delta> = fc.record({
  deltaId: text,
  table: text,
  rowId: text,
  op: fc.constantFrom('insert' as const, 'update' as const, 'delete' as const),
  columns,
  hlc: u64,
  clientId: text,
});
const row: fc.Arbitrary<RowState> = fc.record({
  table: text,
  rowId: text,
  inserted: fc.option(stamp, { nil: null }),
  deleted: fc.option(stamp, { nil: null }),
  columns: fc.dictionary(fc.string({ maxLength: 6 }), fc.record({ value, stamp }), { maxKeys: 3 }),
});
const change: fc.Arbitrary<Change> = fc.oneof(
  delta.map((d) => ({ kind: 'delta' as const, delta: d })),
  row.map((r) => ({ kind: 'row' as const, row: r })),
  fc.record({ table: text, rowId: text }).map((e) => ({ kind: 'evict' as const, ...e })),
);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

describe('hand-written proto3 JSON against protobuf-es', () => {
  it('property: responses, errors and checkpoint infos are written byte for byte as toJson writes them', () => {
    fc.assert(
      fc.property(
        fc.record({ accepted: u32, duplicates: u32, serverHlc: u64, cursor: text }),
        fc.record({ changes: fc.array(change, { maxLength: 4 }), nextCursor: text, hasMore: fc.boolean(), serverHlc: u64 }),
        fc.record({ code: text, message: text, requestId: text, deltaIndex: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
        fc.record({
          checkpointId: text,
          cursor: text,
          schemaVersion: u32,
          createdAtMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          chunks: fc.array(fc.record({ table: text, index: u32, rows: u32 }), { maxLength: 3 }),
        }),
        fc.record({ clientId: text, schemaVersion: u32, deltas: fc.array(delta, { maxLength: 3 }) }),
        (push: PushResult, pull: PullResult, error, info: CheckpointInfo, req: PushInput) => {
          expect(pushResponseJson(push)).toBe(json(toJson(PushResponseSchema, create(PushResponseSchema, push), EMIT)));
          const pb = { $typeName: 'lakesync.v1.PullResponse' as const, changes: pull.changes.map(changeToPb), nextCursor: pull.nextCursor, hasMore: pull.hasMore, serverHlc: pull.serverHlc };
          expect(pullResponseJson(pull)).toBe(json(toJson(PullResponseSchema, pb, EMIT)));
          expect(errorJson(error)).toBe(json(toJson(ErrorResponseSchema, create(ErrorResponseSchema, { error }), EMIT)));
          const ci = create(CheckpointInfoSchema, { ...info, createdAtMs: BigInt(info.createdAtMs), chunks: [...info.chunks] });
          expect(checkpointInfoJson(info)).toBe(json(toJson(CheckpointInfoSchema, ci, EMIT)));
          const pr = create(PushRequestSchema, { clientId: req.clientId, schemaVersion: req.schemaVersion, deltas: req.deltas.map(deltaToPb) });
          expect(pushRequestJson(req)).toBe(json(toJson(PushRequestSchema, pr, EMIT)));
        },
      ),
      { numRuns: 400 },
    );
  });

  /** What each decoder makes of a parsed body: the request, or the error code it refuses it with. */
  function outcome(read: () => PushInput): unknown {
    try {
      return { ok: read() };
    } catch (e) {
      if (!isLakeSyncError(e)) throw e;
      return { code: e.code, deltaIndex: e.deltaIndex };
    }
  }
  function reference(parsed: JsonValue): PushInput {
    let msg;
    try {
      msg = fromJson(PushRequestSchema, parsed, READ);
    } catch (err) {
      throw Object.assign(new Error(String(err)), { code: 'MALFORMED_BODY' });
    }
    return { clientId: msg.clientId, schemaVersion: msg.schemaVersion, deltas: msg.deltas.map((d, i) => deltaFromPb(d, i)) };
  }
  function referenceOutcome(parsed: JsonValue): unknown {
    try {
      return { ok: reference(parsed) };
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === undefined) throw e;
      return { code, deltaIndex: isLakeSyncError(e) ? e.deltaIndex : -1 };
    }
  }

  /** Rewrites a body the way other proto3 JSON writers may: proto names, numbers for integers and enums, nulls, unknown fields. */
  function respell(v: JsonValue, pick: () => number): JsonValue {
    if (Array.isArray(v)) return v.map((x) => respell(x, pick));
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) {
      const name = pick() < 0.3 ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k;
      let y = respell(x as JsonValue, pick);
      if (typeof y === 'string' && /^\d{1,15}$/.test(y) && (k === 'hlc' || k === 'intValue') && pick() < 0.5) y = Number(y);
      if (k === 'op' && typeof y === 'string' && pick() < 0.5) y = { OP_INSERT: 1, OP_UPDATE: 2, OP_DELETE: 3 }[y] ?? y;
      if ((y === '' || y === 0 || y === false || (Array.isArray(y) && y.length === 0)) && pick() < 0.3) y = null;
      if (typeof y === 'string' && /^\d{1,15}$/.test(y) && pick() < 0.2) y = [` ${y}`, `+${y}`, `${y}e0`, `${y}.0`, `0x${Number(y).toString(16)}`][Math.floor(pick() * 5)] as string;
      if (typeof y === 'string' && pick() < 0.05) y = `${y}\udc00`;
      out[name] = y;
      // The same field under its other spelling too (fromJson refuses a field set twice).
      const other = name === k ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k;
      if (other !== name && pick() < 0.05) out[other] = pick() < 0.5 ? null : y;
    }
    if (pick() < 0.2) out['someFutureField'] = { nested: [1, 'x'] };
    return out;
  }

  /** Puts a random JSON value somewhere in a body. */
  function vandalize(v: JsonValue, junk: JsonValue, pick: () => number): JsonValue {
    if (Array.isArray(v)) {
      if (v.length === 0 || pick() < 0.2) return junk;
      const i = Math.floor(pick() * v.length);
      return v.map((x, k) => (k === i ? vandalize(x, junk, pick) : x));
    }
    if (v === null || typeof v !== 'object') return junk;
    const keys = Object.keys(v);
    if (keys.length === 0 || pick() < 0.2) return junk;
    const key = keys[Math.floor(pick() * keys.length)] as string;
    return { ...v, [key]: vandalize(v[key] as JsonValue, junk, pick) };
  }

  it('property: reads every spelling of a request as fromJson + deltaFromPb do, and refuses what they refuse with the same code', () => {
    const body = fc.record({ clientId: text, schemaVersion: u32, deltas: fc.array(delta, { maxLength: 3 }) });
    fc.assert(
      fc.property(body, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true }), { minLength: 64, maxLength: 64 }), fc.jsonValue(), fc.boolean(), (req, dice, junk, vandal) => {
        let n = 0;
        const pick = (): number => dice[n++ % dice.length] as number;
        const canonical = JSON.parse(pushRequestJson(req)) as JsonValue;
        let parsed = respell(canonical, pick);
        if (vandal) parsed = vandalize(parsed, junk as JsonValue, pick);
        expect(outcome(() => readPushRequestJson(parsed))).toEqual(referenceOutcome(parsed));
      }),
      { numRuns: 1500 },
    );
  });

  it('examples: integer strings as BigInt/Number read them, a field named twice, lone surrogates, unknown enum names', () => {
    const d = (delta: Record<string, JsonValue>): JsonValue => ({ deltas: [{ op: 'OP_INSERT', ...delta }] });
    const v = (val: JsonValue): JsonValue => d({ columns: [{ name: 'a', value: val }] });
    const spellings = ['1e2', '1.0', '0.0', ' 1', '1 ', '\t1', ' ', '+1', '0x10', '-0x1', '0b1', '-0', '1e19', '9.2e18', '18446744073709551616', '١'];
    const bodies: JsonValue[] = [];
    for (const s of [...spellings, -0, 1e20, 2 ** 64, 0.5]) {
      bodies.push(d({ hlc: s }), v({ intValue: s }), v({ doubleValue: s }), { schemaVersion: s }, d({ op: s }), v({ nullValue: s }));
    }
    bodies.push(
      { clientId: 'a', client_id: 'b' },
      { client_id: null, clientId: 'a' },
      { schemaVersion: 'x', schema_version: 2 },
      d({ deltaId: 'a', delta_id: 'b' }),
      d({ row_id: 'a', rowId: 'b' }),
      v({ stringValue: 'a', string_value: null }),
      v({ nullValue: 'NOPE', boolValue: true }),
      v({ nullValue: null, stringValue: null }),
      v({ nullValue: 1 }),
      { clientId: '\ud800' },
      v({ stringValue: 'x\udc00' }),
      d({ table: '\ud83d\ude00' }),
    );
    for (const body of bodies) expect(outcome(() => readPushRequestJson(body)), JSON.stringify(body)).toEqual(referenceOutcome(body));
  });

  it('examples: values by every spelling, and refusals', () => {
    const d = (extra: Record<string, JsonValue>): JsonValue => ({ deltas: [{ op: 'OP_INSERT', columns: [{ name: 'a', value: extra }] }] });
    for (const v of [{ doubleValue: 'NaN' }, { doubleValue: '1.5' }, { double_value: -0 }, { intValue: 5 }, { int_value: '-9223372036854775808' }, { nullValue: null }, { nullValue: 'NULL_VALUE' }, { stringValue: null, boolValue: true }, { jsonValue: '{}' }]) {
      expect(outcome(() => readPushRequestJson(d(v)))).toEqual(referenceOutcome(d(v)));
    }
    for (const bad of [{ intValue: 1.5 }, { intValue: '9223372036854775808' }, { stringValue: 'a', boolValue: true }, { doubleValue: 'nan' }, {}, { boolValue: 'true' }]) {
      expect(outcome(() => readPushRequestJson(d(bad)))).toEqual(referenceOutcome(d(bad)));
    }
    for (const body of [[], 'x', null, { deltas: {} }, { deltas: [null] }, { schemaVersion: -1 }, { schemaVersion: '7' }, { deltas: [{ op: 'INSERT' }] }, { deltas: [{ op: 'insert' }] }, { deltas: [{ op: 'OP_Insert' }] }, { deltas: [{ op: 7 }] }, { deltas: [{ op: '1' }] }]) {
      expect(outcome(() => readPushRequestJson(body))).toEqual(referenceOutcome(body as JsonValue));
    }
  });
});
