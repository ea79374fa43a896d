/**
 * Damaged, random and adversarial protobuf bytes: the hand-written decoders
 * (through codec.ts) must give what the generated code gives (reflect-codec.ts),
 * result or error, and only ever throw a LakeSyncError.
 *
 * The bytes come from a generator driven by the generated schema: known
 * fields in any order and any number of times (so messages merge and errors
 * like a missing op or a repeated column come up), unknown fields of every
 * wire type, now and then a wrong wire type, invalid UTF-8 or a 64-bit
 * varint where 32 bits are expected; then truncated and mutated.
 */
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { LakeSyncError } from '../errors.ts';
import { decodeError, decodePullResponse, decodePushRequest, decodePushResponse } from './codec.ts';
import { ErrorResponseSchema, PullResponseSchema, PushRequestSchema, PushResponseSchema } from './gen/lakesync/v1/sync_pb.ts';
import { reflectDecodeError, reflectDecodePullResponse, reflectDecodePushRequest, reflectDecodePushResponse } from './reflect-codec.ts';

const RUNS = { numRuns: 1000 };
// 1,000 runs of a property take seconds on a busy machine.
vi.setConfig({ testTimeout: 120_000 });

/** A result, or the parts of a LakeSyncError that callers see. */
function outcome(f: () => unknown): unknown {
  try {
    return { value: f() };
  } catch (err) {
    if (!(err instanceof LakeSyncError)) return { notLakeSyncError: String(err) };
    return { code: err.code, status: err.status, message: err.message, deltaIndex: err.deltaIndex };
  }
}

interface Target {
  readonly name: string;
  readonly schema: DescMessage;
  readonly ours: (b: Uint8Array) => unknown;
  readonly ref: (b: Uint8Array) => unknown;
}

const TARGETS: readonly Target[] = [
  { name: 'PushRequest', schema: PushRequestSchema, ours: (b) => decodePushRequest('proto', b), ref: reflectDecodePushRequest },
  { name: 'PushResponse', schema: PushResponseSchema, ours: (b) => decodePushResponse('proto', b), ref: reflectDecodePushResponse },
  { name: 'PullResponse', schema: PullResponseSchema, ours: (b) => decodePullResponse('proto', b), ref: reflectDecodePullResponse },
  { name: 'ErrorResponse', schema: ErrorResponseSchema, ours: (b) => decodeError('proto', b), ref: reflectDecodeError },
];

function expectSameOutcome(t: Target, bytes: Uint8Array): void {
  const ours = outcome(() => t.ours(bytes));
  expect(ours).not.toHaveProperty('notLakeSyncError');
  // toEqual: see proto.test.ts (a column may be called "constructor").
  expect(ours).toEqual(outcome(() => t.ref(bytes)));
}

// ---------- random wire bytes from the schema ----------

/** Deterministic PRNG (mulberry32) seeded by fast-check, so a failure reproduces. */
class Rnd {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// Few distinct names, so repeats (merges, "column appears twice") are common.
const STRINGS = ['', 'a', 'b', 'title', 'todos', '__proto__', 'constructor', 'é', '\uFEFF', 'x'.repeat(33), 'y'.repeat(130), '𝄞', 'abcdefghijklmnopqrst', 'todo 123456', 'ä'.repeat(9)];
const U64 = [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const ENUMS = [0, 1, 2, 3, 4, -1, 0x7fff_ffff, -0x8000_0000];
const WIRE_TYPES = [WireType.Varint, WireType.Bit64, WireType.LengthDelimited, WireType.StartGroup, WireType.EndGroup, WireType.Bit32];

function randomU64(rnd: Rnd): bigint {
  return rnd.chance(0.5) ? rnd.pick(U64) : BigInt.asUintN(64, (BigInt(rnd.int(2 ** 30)) << 34n) ^ BigInt(rnd.int(2 ** 30)));
}

function writeUnknown(w: BinaryWriter, rnd: Rnd, depth: number): void {
  const no = rnd.chance(0.5) ? rnd.pick([8, 20, 25, 29, 100, 536_870_911]) : 8 + rnd.int(5000);
  const wireType = rnd.pick([WireType.Varint, WireType.Bit64, WireType.LengthDelimited, WireType.Bit32, WireType.StartGroup]);
  w.tag(no, wireType);
  switch (wireType) {
    case WireType.Varint:
      w.uint64(randomU64(rnd));
      break;
    case WireType.Bit64:
      w.fixed64(randomU64(rnd));
      break;
    case WireType.Bit32:
      w.fixed32(rnd.int(2 ** 32));
      break;
    case WireType.LengthDelimited:
      w.bytes(Uint8Array.from({ length: rnd.int(12) }, () => rnd.int(256)));
      break;
    default:
      if (depth < 4) for (let i = rnd.int(3); i > 0; i--) writeUnknown(w, rnd, depth + 1);
      w.tag(no, WireType.EndGroup);
  }
}

function writeScalar(w: BinaryWriter, field: DescField, scalar: ScalarType, rnd: Rnd): void {
  switch (scalar) {
    case ScalarType.STRING:
      if (rnd.chance(0.03)) w.bytes(Uint8Array.of(0x61, rnd.pick([0x80, 0xc3, 0xff, 0xed]), 0x28));
      else w.string(rnd.chance(0.9) ? rnd.pick(STRINGS) : String.fromCharCode(rnd.int(0x3000)));
      break;
    case ScalarType.INT64:
      w.int64(BigInt.asIntN(64, randomU64(rnd)));
      break;
    case ScalarType.UINT64:
      w.uint64(randomU64(rnd));
      break;
    case ScalarType.UINT32:
      if (rnd.chance(0.1)) w.uint64(randomU64(rnd));
      else w.uint32(rnd.chance(0.5) ? rnd.int(300) : rnd.int(2 ** 32));
      break;
    case ScalarType.INT32:
      if (rnd.chance(0.1)) w.uint64(randomU64(rnd));
      else w.int32(rnd.pick(ENUMS));
      break;
    case ScalarType.DOUBLE:
      w.double(rnd.pick([0, -0, 1.5, Number.NaN, Infinity, -1e300, rnd.next()]));
      break;
    case ScalarType.BOOL:
      if (rnd.chance(0.2)) w.uint64(randomU64(rnd));
      else w.bool(rnd.chance(0.5));
      break;
    default:
      throw new Error(`no generator for ${field.toString()}`);
  }
}

function wireTypeOf(field: DescField): WireType {
  if (field.fieldKind === 'message' || field.fieldKind === 'list') return WireType.LengthDelimited;
  if (field.fieldKind === 'enum') return WireType.Varint;
  switch (field.scalar) {
    case ScalarType.STRING:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
      return WireType.Bit64;
    default:
      return WireType.Varint;
  }
}

function writeMessage(w: BinaryWriter, desc: DescMessage, rnd: Rnd, depth: number): void {
  const count = rnd.int(depth <= 2 ? 7 : 5);
  for (let i = 0; i < count; i++) {
    if (rnd.chance(0.08)) {
      writeUnknown(w, rnd, 0);
      continue;
    }
    const field = rnd.pick(desc.fields);
    // Both decoders read a known field by its declared type, whatever the tag says.
    w.tag(field.number, rnd.chance(0.02) ? rnd.pick(WIRE_TYPES) : wireTypeOf(field));
    if (field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')) {
      w.fork();
      if (depth < 7) writeMessage(w, field.message, rnd, depth + 1);
      w.join();
    } else if (field.fieldKind === 'enum') {
      w.int32(rnd.pick(ENUMS));
    } else if (field.fieldKind === 'scalar') {
      writeScalar(w, field, field.scalar, rnd);
    } else {
      throw new Error(`no generator for ${field.toString()}`);
    }
  }
}

function randomBytes(t: Target, seed: number): Uint8Array {
  const w = new BinaryWriter();
  writeMessage(w, t.schema, new Rnd(seed), 1);
  return w.finish();
}

/** Truncate, overwrite, insert or delete a few bytes. */
function mutate(bytes: Uint8Array, rnd: Rnd): Uint8Array {
  let out = Array.from(bytes);
  for (let i = 1 + rnd.int(3); i > 0; i--) {
    const at = rnd.int(out.length + 1);
    switch (rnd.int(4)) {
      case 0:
        out = out.slice(0, at);
        break;
      case 1:
        if (at < out.length) out[at] = rnd.chance(0.5) ? rnd.int(256) : (out[at] as number) ^ (1 << rnd.int(8));
        break;
      case 2:
        out.splice(at, 0, rnd.int(256));
        break;
      default:
        out.splice(at, 1);
    }
  }
  return Uint8Array.from(out);
}

// ---------- tests ----------

describe.each(TARGETS)('$name: hand-written decoder against fromBinary', (t) => {
  it('random field sequences (any order, repeats, unknown fields)', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expectSameOutcome(t, randomBytes(t, seed));
      }),
      RUNS,
    );
  });

  it('the same, damaged', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (seed, mutation) => {
        expectSameOutcome(t, mutate(randomBytes(t, seed), new Rnd(mutation)));
      }),
      RUNS,
    );
  });

  it('every truncation of a message', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const bytes = randomBytes(t, seed);
        for (let n = 0; n < bytes.length; n++) expectSameOutcome(t, bytes.subarray(0, n));
      }),
      { numRuns: 200 },
    );
  });

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expectSameOutcome(t, bytes);
      }),
      RUNS,
    );
  });

  it('a subarray of a larger buffer', () => {
    fc.assert(
      fc.property(fc.integer(), fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (seed, before, after) => {
        const bytes = randomBytes(t, seed);
        const big = new Uint8Array([...before, ...bytes, ...after]);
        expectSameOutcome(t, big.subarray(before.length, before.length + bytes.length));
      }),
      RUNS,
    );
  });
});

describe('adversarial input', () => {
  /** `levels` nested unknown groups (field 9) inside field `path` messages of a PushRequest. */
  function nestedGroups(levels: number, insideDelta: boolean): Uint8Array {
    const w = new BinaryWriter();
    if (insideDelta) w.tag(3, WireType.LengthDelimited).fork().tag(4, WireType.Varint).int32(1);
    for (let i = 0; i < levels; i++) w.tag(9, WireType.StartGroup);
    for (let i = 0; i < levels; i++) w.tag(9, WireType.EndGroup);
    if (insideDelta) w.join();
    return w.finish();
  }

  it.each([
    [97, false],
    [98, false],
    [99, false],
    [100, false],
    [96, true],
    [97, true],
    [98, true],
    [99, true],
  ])('%i nested unknown groups (inside a delta: %s): the same depth limit as fromBinary', (levels, insideDelta) => {
    const bytes = nestedGroups(levels, insideDelta);
    expectSameOutcome(TARGETS[0] as Target, bytes);
  });

  it('the depth limit is really reached at both ends', () => {
    expect(outcome(() => decodePushRequest('proto', nestedGroups(99, false)))).toHaveProperty('value');
    expect(outcome(() => decodePushRequest('proto', nestedGroups(100, false)))).toMatchObject({ code: 'MALFORMED_BODY' });
  });

  it('large random input finishes quickly with a LakeSyncError or a value', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const rnd = new Rnd(seed);
        const bytes = Uint8Array.from({ length: 200_000 }, () => rnd.int(256));
        for (const t of TARGETS) expectSameOutcome(t, bytes);
      }),
      { numRuns: 20 },
    );
  });

  it('a huge declared length, and long varint runs', () => {
    const cases = [
      [0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f],
      [0x22, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
      [0x48, ...new Array<number>(50).fill(0x80), 0x00],
      [0x48, ...new Array<number>(5000).fill(0xff)],
    ];
    for (const bytes of cases) for (const t of TARGETS) expectSameOutcome(t, Uint8Array.from(bytes));
  });
});
