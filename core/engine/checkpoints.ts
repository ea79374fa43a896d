import type { Principal } from '../auth/principal.ts';
import { LakeSyncError } from '../errors.ts';
import type { CheckpointReader } from '../lake/checkpoint-store.ts';
import { visibleValues } from '../merge.ts';
import { encodePullResponse, type CheckpointInfo, type WireBytes, type WireFormat } from '../protocol/codec.ts';
import { decodePullResponseProto } from '../protocol/proto-decode.ts';
import type { RuleSet } from '../rules.ts';

/**
 * Serving checkpoints to clients: the newest checkpoint's description, and
 * its chunks filtered by the asking client's sync rules (a client never
 * receives a row its rules exclude). One chunk is in memory at a time. With
 * open rules a stored chunk goes out as stored.
 */
export class CheckpointService {
  constructor(
    private readonly checkpoints: CheckpointReader,
    private readonly rules: RuleSet,
  ) {}

  async info(): Promise<CheckpointInfo> {
    const m = await this.checkpoints.latest();
    if (m === null) throw new LakeSyncError('NO_CHECKPOINT', 'no checkpoint yet: pull from the start');
    return {
      checkpointId: m.checkpointId,
      cursor: m.cursor,
      schemaVersion: m.schemaVersion,
      createdAtMs: m.createdAtMs,
      // The chunk route takes the place in this list (older manifests numbered chunks per table).
      chunks: m.chunks.map((c, index) => ({ table: c.table, index, rows: c.rows })),
    };
  }

  async chunk(principal: Principal, checkpointId: string, index: number, format: WireFormat): Promise<WireBytes> {
    if (!Number.isInteger(index) || index < 0) throw new LakeSyncError('INVALID_REQUEST', 'chunk index must be a non-negative integer');
    const m = await this.checkpoints.manifest(checkpointId);
    if (m === null) throw new LakeSyncError('CHECKPOINT_EXPIRED', `checkpoint ${checkpointId} is gone: load the newest one`);
    const info = m.chunks[index];
    if (info === undefined) throw new LakeSyncError('NOT_FOUND', `checkpoint ${checkpointId} has no chunk ${index}`);
    if (!this.rules.tableVisible(info.table) && !principal.admin) {
      // Same answer as an empty chunk would give, without reading it.
      return encodePullResponse(format, { changes: [], nextCursor: m.cursor, hasMore: false, serverHlc: 0n });
    }
    const bytes = await this.checkpoints.chunk(m, index);
    if (bytes === null) throw new LakeSyncError('CHECKPOINT_EXPIRED', `checkpoint ${checkpointId} is gone: load the newest one`);
    // Chunks are addressed by index from the CheckpointInfo; has_more is always false.
    if ((this.rules.open || principal.admin) && format === 'proto') return bytes as WireBytes;
    const page = decodePullResponseProto(bytes); // stored chunks are protobuf (only clients read JSON through the generated code)
    const changes =
      this.rules.open || principal.admin
        ? page.changes
        : page.changes.filter((c) => {
            if (c.kind !== 'row') return false;
            const values = visibleValues(c.row);
            return values !== null && this.rules.matches(principal.claims, c.row.table, values);
          });
    return encodePullResponse(format, { changes, nextCursor: m.cursor, hasMore: false, serverHlc: 0n });
  }
}
