/**
 * The hand-written protobuf codec against the generated one (reflect-codec.ts,
 * @bufbuild/protobuf create/toBinary/fromBinary): same bytes out, same domain
 * values in, unknown fields skipped. Damaged and random bytes are in
 * proto-fuzz.test.ts.
 */
import { create, toBinary, type Message } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { Delta, Op } from '../delta.ts';
import type { Change, PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError } from '../errors.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { emptyColumns, nullRecord, type ColumnValue, type Columns } from '../values.ts';
import { decodeError, decodePullResponse, decodePushRequest, decodePushResponse } from './codec.ts';
import {
  ErrorResponseSchema,
  PullResponseSchema,
  PushRequestSchema,
  PushResponseSchema,
  type PullResponse as PbPullResponse,
} from './gen/lakesync/v1/sync_pb.ts';
import { changeToPb, deltaToPb } from './pb-mapping.ts';
import { decodeErrorProto, decodePullResponseProto, decodePushRequestProto, decodePushResponseProto } from './proto-decode.ts';
import { encodeErrorProto, encodePullResponseProto, encodePushRequestProto, encodePushResponseProto, type WireError } from './proto-encode.ts';
import {
  reflectDecodePullResponse,
  reflectDecodePushRequest,
  reflectEncodeError,
  reflectEncodePullResponse,
  reflectEncodePushRequest,
  reflectEncodePushResponse,
} from './reflect-codec.ts';
import { mulberry32 } from '../../test/support/prng.ts';

const RUNS = { numRuns: 1000 };
// 1,000 runs of a property take seconds on a busy machine.
vi.setConfig({ testTimeout: 120_000 });
// toEqual, not toStrictEqual: the latter compares `constructor`, which is an
// ordinary column key here. -0 and 0 still differ, NaN equals NaN. The
// records' prototypes have their own test below.

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A result, or the parts of a LakeSyncError that callers see. */
function outcome(f: () => unknown): unknown {
  try {
    return { value: f() };
  } catch (err) {
    if (!(err instanceof LakeSyncError)) return { notLakeSyncError: String(err) };
    return { code: err.code, status: err.status, message: err.message, deltaIndex: err.deltaIndex };
  }
}

// ---------- arbitraries ----------

const asciiChar = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 });
const anyCodePoint = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/**
 * Strings around every size the codec treats differently: empty, short
 * ASCII, near 32/40 UTF-16 units, past 127 bytes (two-byte length prefix).
 * `wellFormed: false` adds lone surrogates, which both encoders write as U+FFFD.
 */
function text(wellFormed: boolean): fc.Arbitrary<string> {
  const unit = wellFormed
    ? fc.oneof({ weight: 6, arbitrary: asciiChar }, { weight: 2, arbitrary: anyCodePoint })
    : fc.oneof({ weight: 6, arbitrary: asciiChar }, { weight: 2, arbitrary: anyCodePoint }, { weight: 1, arbitrary: loneSurrogate });
  return fc.oneof(
    { weight: 5, arbitrary: fc.string({ unit, maxLength: 12 }) },
    { weight: 2, arbitrary: fc.string({ unit, minLength: 28, maxLength: 44 }) },
    { weight: 1, arbitrary: fc.string({ unit, minLength: 100, maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'constructor', 'toString', '\uFEFFbom', 'é', '𝄞', '0', '1') },
  );
}

const int64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -300n, max: 300n }),
  fc.constantFrom(0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 31n, -(2n ** 31n), 2n ** 32n, 2n ** 53n + 1n),
);
const uint64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: 0n, max: 300n }),
  fc.constantFrom(0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 28n, 2n ** 35n),
);
const uint32 = fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 - 1));
const int32 = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31)));
const double = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, -0, 0, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, 0.1),
);

function arbitraries(wellFormed: boolean) {
  const str = text(wellFormed);
  const value: fc.Arbitrary<ColumnValue> = fc.oneof(
    fc.constant(null),
    str,
    int64,
    double,
    fc.boolean(),
    str.map((json) => ({ json })),
  );
  const columns: fc.Arbitrary<Columns> = fc
    .uniqueArray(fc.tuple(str, value), { selector: (e) => e[0], maxLength: 8 })
    .map((entries) => {
      const out = emptyColumns();
      for (const [name, v] of entries) out[name] = v;
      return out;
    });
  const delta: fc.Arbitrary<Delta> = fc.record({
    deltaId: str,
    table: str,
    rowId: str,
    op: fc.constantFrom<Op>('insert', 'update', 'delete'),
    columns,
    hlc: uint64,
    clientId: str,
  });
  const stamp: fc.Arbitrary<Stamp> = fc.record({ hlc: uint64, clientId: str });
  const row: fc.Arbitrary<RowState> = fc.record({
    table: str,
    rowId: str,
    inserted: fc.option(stamp, { nil: null }),
    deleted: fc.option(stamp, { nil: null }),
    columns: fc.uniqueArray(fc.tuple(str, fc.record({ value, stamp })), { selector: (e) => e[0], maxLength: 6 }).map((entries) => {
      const out = nullRecord<ColumnState>();
      for (const [name, c] of entries) out[name] = c;
      return out;
    }),
  });
  const change: fc.Arbitrary<Change> = fc.oneof(
    delta.map((d): Change => ({ kind: 'delta', delta: d })),
    row.map((r): Change => ({ kind: 'row', row: r })),
    fc.record({ kind: fc.constant('evict' as const), table: str, rowId: str }),
  );
  const pushInput: fc.Arbitrary<PushInput> = fc.record({ clientId: str, schemaVersion: uint32, deltas: fc.array(delta, { maxLength: 6 }) });
  const pushResult: fc.Arbitrary<PushResult> = fc.record({ accepted: uint32, duplicates: uint32, serverHlc: uint64, cursor: str });
  const pullResult: fc.Arbitrary<PullResult> = fc.record({
    changes: fc.array(change, { maxLength: 6 }),
    nextCursor: str,
    hasMore: fc.boolean(),
    serverHlc: uint64,
  });
  const wireError: fc.Arbitrary<WireError> = fc.record({ code: str, message: str, requestId: str, deltaIndex: int32 });
  return { pushInput, pushResult, pullResult, wireError };
}

const anyText = arbitraries(false);
const wellFormed = arbitraries(true);

// ---------- generated messages with unknown fields ----------


type UnknownField = { no: number; wireType: WireType; data: Uint8Array };

/** An unknown field of any wire type (groups nest), numbered above every field of our messages. */
function unknownField(rnd: () => number, depth = 0): UnknownField {
  const numbers = [8, 15, 16, 20, 29, 2047, 2048, 262_143, 536_870_911];
  const no = rnd() < 0.5 ? (numbers[Math.floor(rnd() * numbers.length)] as number) : 8 + Math.floor(rnd() * 100_000);
  const types = [WireType.Varint, WireType.Bit64, WireType.LengthDelimited, WireType.Bit32, WireType.StartGroup];
  const wireType = types[Math.floor(rnd() * (depth < 3 ? 5 : 4))] as WireType;
  const w = new BinaryWriter();
  switch (wireType) {
    case WireType.Varint:
      w.uint64(BigInt.asUintN(64, BigInt(Math.floor(rnd() * 2 ** 53)) << BigInt(Math.floor(rnd() * 12))));
      break;
    case WireType.Bit64:
      w.fixed64(BigInt(Math.floor(rnd() * 2 ** 53)));
      break;
    case WireType.Bit32:
      w.fixed32(Math.floor(rnd() * 2 ** 32));
      break;
    case WireType.LengthDelimited:
      w.bytes(Uint8Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
      break;
    default:
      for (let i = Math.floor(rnd() * 3); i > 0; i--) {
        const f = unknownField(rnd, depth + 1);
        w.tag(f.no, f.wireType).raw(f.data);
      }
      w.tag(no, WireType.EndGroup);
  }
  return { no, wireType, data: w.finish() };
}

/** Give random messages in a generated message tree some unknown fields. */
function sprinkleUnknown(node: unknown, rnd: () => number): void {
  if (Array.isArray(node)) {
    for (const item of node) sprinkleUnknown(item, rnd);
    return;
  }
  if (typeof node !== 'object' || node === null || node instanceof Uint8Array) return;
  const obj = node as Record<string, unknown>;
  if (typeof obj['$typeName'] === 'string' && rnd() < 0.5) {
    obj['$unknown'] = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => unknownField(rnd));
  }
  for (const key of Object.keys(obj)) if (key !== '$unknown') sprinkleUnknown(obj[key], rnd);
}

function withUnknown<T extends Message>(msg: T, seed: number): T {
  sprinkleUnknown(msg, mulberry32(seed));
  return msg;
}

// ---------- tests ----------

describe('proto encode: the same bytes as the generated code', () => {
  it('PushRequest', () => {
    fc.assert(
      fc.property(anyText.pushInput, (input) => {
        expect(encodePushRequestProto(input)).toEqual(reflectEncodePushRequest(input));
      }),
      RUNS,
    );
  });

  it('PushResponse', () => {
    fc.assert(
      fc.property(anyText.pushResult, (r) => {
        expect(encodePushResponseProto(r)).toEqual(reflectEncodePushResponse(r));
      }),
      RUNS,
    );
  });

  it('PullResponse', () => {
    fc.assert(
      fc.property(anyText.pullResult, (r) => {
        expect(encodePullResponseProto(r)).toEqual(reflectEncodePullResponse(r));
      }),
      RUNS,
    );
  });

  it('ErrorResponse', () => {
    fc.assert(
      fc.property(anyText.wireError, (e) => {
        expect(encodeErrorProto(e)).toEqual(reflectEncodeError(e));
      }),
      RUNS,
    );
  });

  it('returns a fresh ArrayBuffer-backed copy each time', () => {
    const r: PushResult = { accepted: 1, duplicates: 0, serverHlc: 5n, cursor: '1' };
    const a = encodePushResponseProto(r);
    const b = encodePushResponseProto({ ...r, cursor: '2' });
    expect(a.buffer).toBeInstanceOf(ArrayBuffer);
    expect(a.buffer).not.toBe(b.buffer);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(a.length);
    expect(decodePushResponseProto(a).cursor).toBe('1');
  });

  it('large messages: multi-byte length prefixes, a grown and then dropped buffer', () => {
    const big = 'é'.repeat(600_000); // 1.2 MB of UTF-8, four times: more than the writer keeps
    const d: Delta = { deltaId: 'x', table: 't', rowId: big, op: 'insert', columns: { a: big, b: 'ok' }, hlc: 1n, clientId: 'c' };
    const input: PushInput = { clientId: 'c', schemaVersion: 1, deltas: [d, d] };
    const bytes = encodePushRequestProto(input);
    expect(bytes.length).toBeGreaterThan(4 * 1024 * 1024);
    // Not toEqual: it compares typed arrays element by element, slowly.
    expect(sameBytes(bytes, reflectEncodePushRequest(input))).toBe(true);
    expect(decodePushRequestProto(bytes)).toEqual(input);
    const small: PushInput = { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, rowId: 'r', columns: {} }] };
    expect(encodePushRequestProto(small)).toEqual(reflectEncodePushRequest(small));
  });

  it('refuses what the generated code refuses', () => {
    const d: Delta = { deltaId: 'x', table: 't', rowId: 'r', op: 'insert', columns: { a: 1 }, hlc: 1n, clientId: 'c' };
    const cases: [string, PushInput][] = [
      ['schemaVersion -1', { clientId: 'c', schemaVersion: -1, deltas: [] }],
      ['schemaVersion 2^32', { clientId: 'c', schemaVersion: 2 ** 32, deltas: [] }],
      ['schemaVersion 1.5', { clientId: 'c', schemaVersion: 1.5, deltas: [] }],
      ['hlc -1', { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, hlc: -1n }] }],
      ['hlc 2^64', { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, hlc: 2n ** 64n }] }],
      ['int value 2^63', { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, columns: { a: 2n ** 63n } }] }],
      ['undefined value', { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, columns: { a: undefined as unknown as ColumnValue } }] }],
      ['bad op', { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, op: 'upsert' as Op }] }],
    ];
    for (const [name, input] of cases) {
      expect(() => reflectEncodePushRequest(input), name).toThrow();
      expect(() => encodePushRequestProto(input), name).toThrow();
    }
    const bad = { clientId: 'c', schemaVersion: 1, deltas: [{ ...d, columns: { a: Symbol('x') as unknown as ColumnValue } }] };
    expect(() => encodePushRequestProto(bad)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    // The shared writer starts over after a failure.
    const ok: PushInput = { clientId: 'c', schemaVersion: 1, deltas: [d] };
    expect(encodePushRequestProto(ok)).toEqual(reflectEncodePushRequest(ok));
  });
});

describe('proto decode: the domain values the generated code gives', () => {
  it('PushRequest round trip', () => {
    fc.assert(
      fc.property(wellFormed.pushInput, (input) => {
        expect(decodePushRequestProto(reflectEncodePushRequest(input))).toEqual(input);
      }),
      RUNS,
    );
  });

  it('PushResponse round trip', () => {
    fc.assert(
      fc.property(wellFormed.pushResult, (r) => {
        expect(decodePushResponseProto(reflectEncodePushResponse(r))).toEqual(r);
      }),
      RUNS,
    );
  });

  it('PullResponse round trip', () => {
    fc.assert(
      fc.property(wellFormed.pullResult, (r) => {
        expect(decodePullResponseProto(reflectEncodePullResponse(r))).toEqual(r);
      }),
      RUNS,
    );
  });

  it('ErrorResponse round trip', () => {
    fc.assert(
      fc.property(wellFormed.wireError, (e) => {
        expect(decodeErrorProto(reflectEncodeError(e))).toEqual(e);
      }),
      RUNS,
    );
  });

  it('lone surrogates come back as U+FFFD, as with fromBinary', () => {
    fc.assert(
      fc.property(anyText.pullResult, (r) => {
        // Two names may become one ("column appears twice"): compare errors too.
        const bytes = reflectEncodePullResponse(r);
        expect(outcome(() => decodePullResponseProto(bytes))).toEqual(outcome(() => reflectDecodePullResponse(bytes)));
      }),
      RUNS,
    );
  });

  it('skips unknown fields in every message (PushRequest)', () => {
    fc.assert(
      fc.property(wellFormed.pushInput, fc.integer(), (input, seed) => {
        const msg = withUnknown(
          create(PushRequestSchema, { clientId: input.clientId, schemaVersion: input.schemaVersion, deltas: input.deltas.map(deltaToPb) }),
          seed,
        );
        const bytes = toBinary(PushRequestSchema, msg);
        expect(decodePushRequestProto(bytes)).toEqual(input);
        expect(decodePushRequest('proto', bytes)).toEqual(reflectDecodePushRequest(bytes));
      }),
      RUNS,
    );
  });

  it('skips unknown fields in every message (PullResponse)', () => {
    fc.assert(
      fc.property(wellFormed.pullResult, fc.integer(), (r, seed) => {
        const pb: PbPullResponse = {
          $typeName: 'lakesync.v1.PullResponse',
          changes: r.changes.map(changeToPb),
          nextCursor: r.nextCursor,
          hasMore: r.hasMore,
          serverHlc: r.serverHlc,
        };
        const bytes = toBinary(PullResponseSchema, withUnknown(pb, seed));
        expect(decodePullResponseProto(bytes)).toEqual(r);
        expect(decodePullResponse('proto', bytes)).toEqual(reflectDecodePullResponse(bytes));
      }),
      RUNS,
    );
  });

  it('skips unknown fields (PushResponse, ErrorResponse)', () => {
    fc.assert(
      fc.property(wellFormed.pushResult, wellFormed.wireError, fc.integer(), (r, e, seed) => {
        const push = toBinary(PushResponseSchema, withUnknown(create(PushResponseSchema, r), seed));
        expect(decodePushResponse('proto', push)).toEqual(r);
        const error = toBinary(ErrorResponseSchema, withUnknown(create(ErrorResponseSchema, { error: e }), seed));
        expect(decodeError('proto', error)).toEqual(e);
      }),
      RUNS,
    );
  });

  it('decoded records have no inherited keys, and "__proto__" is a column like any other', () => {
    const columns = emptyColumns();
    columns['__proto__'] = 'p';
    columns['constructor'] = 'c';
    const d: Delta = { deltaId: 'x', table: 't', rowId: 'r', op: 'update', columns, hlc: 1n, clientId: 'c' };
    const decoded = decodePushRequestProto(reflectEncodePushRequest({ clientId: 'c', schemaVersion: 1, deltas: [d] }));
    const cols = (decoded.deltas[0] as Delta).columns;
    expect(Object.keys(cols)).toEqual(['__proto__', 'constructor']);
    expect(cols['__proto__']).toBe('p');
    expect('toString' in cols).toBe(false);
    expect('hasOwnProperty' in cols).toBe(false);
    const empty = (decodePushRequestProto(reflectEncodePushRequest({ clientId: 'c', schemaVersion: 1, deltas: [{ ...d, columns: {} }] })).deltas[0] as Delta).columns;
    expect('constructor' in empty).toBe(false);
    expect(Object.keys(empty)).toEqual([]);
  });

  it('a name guess from the previous delta never matches bytes that are not ASCII', () => {
    const d: Delta = { deltaId: 'x', table: 'é', rowId: 'r', op: 'update', columns: { é: 1 }, hlc: 1n, clientId: 'é' };
    const good = reflectEncodePushRequest({ clientId: 'é', schemaVersion: 1, deltas: [d] });
    expect((decodePushRequestProto(good).deltas[0] as Delta).table).toBe('é');
    // Latin-1 "é" is one byte, 0xe9, and not UTF-8.
    const latin1 = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(Uint8Array.of(0xe9)).finish();
    expect(() => decodePushRequestProto(latin1)).toThrow(expect.objectContaining({ code: 'MALFORMED_BODY' }));
  });
});

describe('proto decode: refusals', () => {
  /** Bytes of one PushRequest holding `deltas`, each written by hand. */
  function push(...deltas: ((w: BinaryWriter) => void)[]): Uint8Array {
    const w = new BinaryWriter().tag(1, WireType.LengthDelimited).string('c');
    for (const d of deltas) {
      w.tag(3, WireType.LengthDelimited).fork();
      d(w);
      w.join();
    }
    return w.finish();
  }
  const op = (n: number) => (w: BinaryWriter) => w.tag(4, WireType.Varint).int32(n);
  const column = (name: string, value?: (w: BinaryWriter) => void) => (w: BinaryWriter) => {
    w.tag(5, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(name);
    if (value !== undefined) {
      w.tag(2, WireType.LengthDelimited).fork();
      value(w);
      w.join();
    }
    w.join();
  };
  const str = (s: string) => (w: BinaryWriter) => w.tag(2, WireType.LengthDelimited).string(s);
  const all =
    (...parts: ((w: BinaryWriter) => void)[]) =>
    (w: BinaryWriter) => {
      for (const p of parts) p(w);
    };

  function expectSame(bytes: Uint8Array, want: { code: string; deltaIndex: number; message?: string }): void {
    let ours: unknown;
    let ref: unknown;
    try {
      decodePushRequest('proto', bytes);
    } catch (err) {
      ours = err;
    }
    try {
      reflectDecodePushRequest(bytes);
    } catch (err) {
      ref = err;
    }
    expect(ours).toBeInstanceOf(LakeSyncError);
    expect(ref).toBeInstanceOf(LakeSyncError);
    const pick = (e: unknown) => ({ code: (e as LakeSyncError).code, deltaIndex: (e as LakeSyncError).deltaIndex, message: (e as LakeSyncError).message });
    expect(pick(ours)).toEqual(pick(ref));
    expect(pick(ours)).toMatchObject(want);
  }

  it.each([
    ['truncated varint', [0xff, 0xff, 0xff, 0xff]],
    ['length prefix past the end', [0x0a, 0x10, 0x41]],
    ['wire type 7 (invalid)', [0x0f, 0x00]],
    ['delta submessage truncated', [0x1a, 0x05, 0x0a, 0x20, 0x41]],
    ['field number 0', [0x02, 0x00]],
    ['an end-group tag on its own', [0x0c]],
    ['a group that does not end', [0x43, 0x08, 0x01]],
    ['a group ended by another number', [0x43, 0x4c]],
    ['an 11-byte varint', [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['a 6-byte tag', [0x88, 0x80, 0x80, 0x80, 0x80, 0x00]],
    ['a double past the end', [0x1a, 0x09, 0x2a, 0x07, 0x12, 0x05, 0x21, 0, 0, 0, 0]],
    ['invalid UTF-8', [0x0a, 0x02, 0xc3, 0x28]],
  ])('%s -> MALFORMED_BODY', (_name, bytes) => {
    expectSame(new Uint8Array(bytes), { code: 'MALFORMED_BODY', deltaIndex: -1, message: 'body is not a valid protobuf message' });
  });

  it('op missing or unknown -> INVALID_REQUEST at that delta', () => {
    expectSame(push(op(1), all(op(2), column('a', str('x'))), all(column('a', str('x')))), { code: 'INVALID_REQUEST', deltaIndex: 2 });
    expectSame(push(op(1), op(4)), { code: 'INVALID_REQUEST', deltaIndex: 1 });
    expectSame(push(op(-1)), { code: 'INVALID_REQUEST', deltaIndex: 0 });
  });

  it('a column twice, or a value with no kind -> the first problem, op first', () => {
    expectSame(push(op(1), all(op(1), column('a', str('x')), column('a', str('y')))), { code: 'INVALID_REQUEST', deltaIndex: 1 });
    expectSame(push(all(op(1), column('a'), column('a', str('y')))), { code: 'INVALID_VALUE', deltaIndex: 0 });
    expectSame(push(all(op(1), column('a', () => {}))), { code: 'INVALID_VALUE', deltaIndex: 0 });
    // The op is checked before the columns, even when it comes last on the wire.
    expectSame(push(all(column('a'), op(0))), { code: 'INVALID_REQUEST', deltaIndex: 0 });
    // Many columns, so the repeat check falls back on `in`.
    const many = Array.from({ length: 12 }, (_, i) => column(`c${i}`, str('v')));
    expectSame(push(all(op(1), ...many, column('c3', str('again')))), { code: 'INVALID_REQUEST', deltaIndex: 0 });
  });

  it('a wire error anywhere wins over a bad delta before it', () => {
    const bytes = push(op(0), op(1));
    const broken = new Uint8Array([...bytes, 0x1a, 0x05, 0x20]);
    expectSame(broken, { code: 'MALFORMED_BODY', deltaIndex: -1 });
  });

  it('repeated fields: last scalar wins, a repeated Value merges, op may come twice', () => {
    const bytes = push(
      all(op(0), column('a', all(str('x'), (w) => w.tag(3, WireType.Varint).int64(5n))), op(2), (w) => w.tag(2, WireType.LengthDelimited).string('t1'), (w) => w.tag(2, WireType.LengthDelimited).string('t2')),
    );
    const ours = decodePushRequest('proto', bytes);
    expect(ours).toEqual(reflectDecodePushRequest(bytes));
    expect((ours.deltas[0] as Delta).table).toBe('t2');
    expect((ours.deltas[0] as Delta).columns['a']).toBe(5n);
    expect((ours.deltas[0] as Delta).op).toBe('update');
  });

  it('a known field is read by its declared type whatever its wire type says', () => {
    // client_id (1) tagged as a varint field, schema_version (2) as fixed32.
    const bytes = new Uint8Array([0x08, 0x01, 0x41, 0x15, 0x07]);
    expect(decodePushRequest('proto', bytes)).toEqual(reflectDecodePushRequest(bytes));
  });
});
