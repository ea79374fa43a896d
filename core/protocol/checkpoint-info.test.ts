import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCheckpointInfo, encodeCheckpointInfo, type CheckpointInfo } from './codec.ts';
import { CheckpointInfoSchema } from './gen/lakesync/v1/sync_pb.ts';

/** The hand-written CheckpointInfo encoder against the generated (reflection) one, byte for byte. */
const info = fc.record({
  checkpointId: fc.string({ unit: 'binary' }),
  cursor: fc.string(),
  schemaVersion: fc.integer({ min: 0, max: 0xffff_ffff }),
  createdAtMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  chunks: fc.array(fc.record({ table: fc.string(), index: fc.integer({ min: 0, max: 0xffff_ffff }), rows: fc.integer({ min: 0, max: 0xffff_ffff }) }), { maxLength: 5 }),
});

describe('CheckpointInfo protobuf encoding', () => {
  it('property: encodes exactly as the generated code, and reads back', () => {
    fc.assert(
      fc.property(info, (i: CheckpointInfo) => {
        const bytes = encodeCheckpointInfo('proto', i);
        const msg = create(CheckpointInfoSchema, { ...i, createdAtMs: BigInt(i.createdAtMs), chunks: [...i.chunks] });
        expect(bytes).toEqual(toBinary(CheckpointInfoSchema, msg));
        expect(fromBinary(CheckpointInfoSchema, bytes).chunks).toHaveLength(i.chunks.length);
        expect(decodeCheckpointInfo('proto', bytes)).toEqual(i);
      }),
      { numRuns: 300 },
    );
  });
});
