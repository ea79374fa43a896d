/**
 * Protobuf decoders for proto/lakesync/v1/sync.proto, straight from bytes to
 * the domain types, with the behaviour of fromBinary() on the generated
 * messages followed by pb-mapping.ts (reflect-codec.ts), which
 * proto.test.ts and proto-fuzz.test.ts check on random and damaged input:
 *
 * - fields in any order, unknown fields skipped (groups too), a repeated
 *   scalar field keeps its last value, a repeated message field (a Value,
 *   a Stamp, the same arm of Change) merges into the earlier one; a known
 *   field is read by its declared type whatever its wire type says;
 * - any wire error -> MALFORMED_BODY "body is not a valid protobuf message";
 * - only once the whole body has parsed, the first bad delta or change in
 *   order: op missing/unknown (INVALID_REQUEST), then its first bad column
 *   (a repeat: INVALID_REQUEST; no value kind: INVALID_VALUE), with
 *   deltaIndex in a push; a change without kind or a column state without
 *   stamp (MALFORMED_BODY).
 *
 * The semantic errors found while parsing wait in `pending` until then.
 */
import { TAG_OP, type Delta, type Op } from '../delta.ts';
import type { Change, PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError, isLakeSyncError, tooManyDeltas } from '../errors.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import type { ColumnValue } from '../values.ts';
import type { WireError } from './proto-encode.ts';
import { WireReader } from './wire-reader.ts';

/** fromBinary's nesting budget for skipped groups: 100 minus the depth of the message. */
const LIMIT = 100;

/** A Value message with no arm set (or no Value at all). */
const NO_KIND: unique symbol = Symbol('no kind');
type Kind = ColumnValue | typeof NO_KIND;

/** First semantic error of a delta or row, reported after the parse. */
const pending = new Map<object, LakeSyncError>();

type MutableDelta = { -readonly [K in keyof Delta]: Delta[K] };

/** Prototype of decoded records: no keys and no prototype of its own. */
const BARE = Object.create(null) as object;

/**
 * A record like emptyColumns(): nothing inherited, so `in` sees only its own
 * keys and "__proto__" or "constructor" are ordinary keys. Unlike
 * Object.create(null), which V8 starts as a hash table, it stays in fast
 * mode: filling hash tables was the largest single cost of decoding.
 */
function bareRecord<T>(): Record<string, T> {
  return Object.create(BARE) as Record<string, T>;
}

// Guesses for name(): the same field of the previous message.
let lastTable = '';
let lastClientId = '';
/** Column names of the delta or row being read, by position; until overwritten, the previous one's. */
const colNames: string[] = [];

/** Whether `name` is among the first `count` columns (in colNames) of a delta being read. */
function seenColumn(columns: Record<string, ColumnValue>, name: string, count: number, merged: boolean): boolean {
  if (merged || count > 8) return name in columns;
  for (let i = 0; i < count; i++) if (colNames[i] === name) return true;
  return false;
}

function malformed(err: unknown): LakeSyncError {
  return new LakeSyncError('MALFORMED_BODY', 'body is not a valid protobuf message', { cause: err });
}

/** Run a parse; wire errors become MALFORMED_BODY as with fromBinary. */
function parse<T>(body: Uint8Array, read: (r: WireReader) => T): T {
  if (pending.size !== 0) pending.clear();
  try {
    return read(new WireReader(body));
  } catch (err) {
    pending.clear();
    if (isLakeSyncError(err)) throw err;
    throw malformed(err);
  }
}

function opOf(n: number): Op | undefined {
  return n >= 1 && n <= 3 ? TAG_OP[n] : undefined;
}

// ---------- values and stamps ----------

/** A Value message, merged into `kind` (the same field may come twice). */
function readValue(r: WireReader, kind: Kind, depth: number): Kind {
  const end = r.end();
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        r.int32(); // NullValue: any number is NULL
        kind = null;
        break;
      case 2:
        kind = r.string();
        break;
      case 3:
        kind = r.int64();
        break;
      case 4:
        kind = r.double();
        break;
      case 5:
        kind = r.bool();
        break;
      case 6:
        kind = { json: r.string() };
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - depth);
    }
  }
  return kind;
}

function readStamp(r: WireReader, prev: Stamp | null, depth: number): Stamp {
  const end = r.end();
  let hlc = prev === null ? 0n : prev.hlc;
  let clientId = prev === null ? '' : prev.clientId;
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        hlc = r.uint64();
        break;
      case 2:
        clientId = lastClientId = r.name(lastClientId);
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - depth);
    }
  }
  return { hlc, clientId };
}

// ---------- deltas ----------

/** A Delta message at `depth`; `prev` is the same oneof arm read before, to merge into. */
function readDelta(r: WireReader, deltaIndex: number, depth: number, prev: Delta | undefined): Delta {
  const end = r.end();
  let deltaId = '';
  let table = '';
  let rowId = '';
  let op: Op | undefined;
  let hlc = 0n;
  let clientId = '';
  let columns = bareRecord<ColumnValue>();
  let count = 0;
  let err: LakeSyncError | undefined;
  if (prev !== undefined) {
    ({ deltaId, table, rowId, op, hlc, clientId } = prev);
    columns = prev.columns as Record<string, ColumnValue>;
    err = pending.get(prev);
  }
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        deltaId = r.string();
        break;
      case 2:
        table = lastTable = r.name(lastTable);
        break;
      case 3:
        rowId = r.string();
        break;
      case 4:
        op = opOf(r.int32());
        break;
      case 5: {
        // ColumnValue
        const cend = r.end();
        let name = '';
        let kind: Kind = NO_KIND;
        while (r.pos < cend) {
          const ct = r.tag();
          switch (ct >>> 3) {
            case 1:
              name = r.name(colNames[count]);
              break;
            case 2:
              kind = readValue(r, kind, depth + 2);
              break;
            default:
              r.skip(ct & 7, ct >>> 3, LIMIT - depth - 1);
          }
        }
        if (err === undefined) {
          if (seenColumn(columns, name, count, prev !== undefined)) {
            err = new LakeSyncError('INVALID_REQUEST', `column "${name}" appears twice`, { deltaIndex });
          } else if (kind === NO_KIND) {
            err = new LakeSyncError('INVALID_VALUE', `${name}: value has no kind`, { deltaIndex });
          } else {
            columns[name] = kind;
            colNames[count++] = name;
          }
        }
        break;
      }
      case 6:
        hlc = r.uint64();
        break;
      case 7:
        clientId = lastClientId = r.name(lastClientId);
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - depth);
    }
  }
  // `op` may be undefined here; checkDelta() refuses that before anyone sees it.
  const d: MutableDelta = { deltaId, table, rowId, op: op as Op, columns, hlc, clientId };
  if (err !== undefined) pending.set(d, err);
  return d;
}

function checkDelta(d: Delta, deltaIndex: number): void {
  if (d.op === undefined) throw new LakeSyncError('INVALID_REQUEST', 'delta op is missing or unknown', { deltaIndex });
  if (pending.size !== 0) {
    const err = pending.get(d);
    if (err !== undefined) throw err;
  }
}

// ---------- rows and changes ----------

function readRow(r: WireReader, depth: number, prev: RowState | undefined): RowState {
  const end = r.end();
  let table = '';
  let rowId = '';
  let inserted: Stamp | null = null;
  let deleted: Stamp | null = null;
  let columns = bareRecord<ColumnState>();
  let count = 0;
  let err: LakeSyncError | undefined;
  if (prev !== undefined) {
    ({ table, rowId, inserted, deleted } = prev);
    columns = prev.columns as Record<string, ColumnState>;
    err = pending.get(prev);
  }
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        table = lastTable = r.name(lastTable);
        break;
      case 2:
        rowId = r.string();
        break;
      case 3:
        inserted = readStamp(r, inserted, depth + 1);
        break;
      case 4:
        deleted = readStamp(r, deleted, depth + 1);
        break;
      case 5: {
        // ColumnState
        const cend = r.end();
        let name = '';
        let kind: Kind = NO_KIND;
        let stamp: Stamp | null = null;
        while (r.pos < cend) {
          const ct = r.tag();
          switch (ct >>> 3) {
            case 1:
              name = r.name(colNames[count]);
              break;
            case 2:
              kind = readValue(r, kind, depth + 2);
              break;
            case 3:
              stamp = readStamp(r, stamp, depth + 2);
              break;
            default:
              r.skip(ct & 7, ct >>> 3, LIMIT - depth - 1);
          }
        }
        if (err === undefined) {
          if (stamp === null) err = new LakeSyncError('MALFORMED_BODY', 'column state without stamp');
          else if (kind === NO_KIND) err = new LakeSyncError('INVALID_VALUE', `${name}: value has no kind`, { deltaIndex: -1 });
          else {
            columns[name] = { value: kind, stamp };
            colNames[count++] = name;
          }
        }
        break;
      }
      default:
        r.skip(t & 7, t >>> 3, LIMIT - depth);
    }
  }
  const row: RowState = { table, rowId, inserted, deleted, columns };
  if (err !== undefined) pending.set(row, err);
  return row;
}

/** A Change message; null when no arm is set. */
function readChange(r: WireReader, depth: number): Change | null {
  const end = r.end();
  let change = null as Change | null;
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        change = { kind: 'delta', delta: readDelta(r, -1, depth + 1, change?.kind === 'delta' ? change.delta : undefined) };
        break;
      case 2:
        change = { kind: 'row', row: readRow(r, depth + 1, change?.kind === 'row' ? change.row : undefined) };
        break;
      case 3: {
        // RowRef
        const rend = r.end();
        let table: string = change?.kind === 'evict' ? change.table : '';
        let rowId: string = change?.kind === 'evict' ? change.rowId : '';
        while (r.pos < rend) {
          const rt = r.tag();
          switch (rt >>> 3) {
            case 1:
              table = r.name();
              break;
            case 2:
              rowId = r.string();
              break;
            default:
              r.skip(rt & 7, rt >>> 3, LIMIT - depth - 1);
          }
        }
        change = { kind: 'evict', table, rowId };
        break;
      }
      default:
        r.skip(t & 7, t >>> 3, LIMIT - depth);
    }
  }
  return change;
}

function checkChange(c: Change | null): Change {
  if (c === null) throw new LakeSyncError('MALFORMED_BODY', 'change has no kind');
  if (c.kind === 'delta') checkDelta(c.delta, -1);
  else if (c.kind === 'row' && pending.size !== 0) {
    const err = pending.get(c.row);
    if (err !== undefined) throw err;
  }
  return c;
}

// ---------- messages ----------

function readPushRequest(r: WireReader, maxDeltas: number): PushInput {
  let clientId = '';
  let schemaVersion = 0;
  const deltas: Delta[] = [];
  while (r.pos < r.len) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        clientId = lastClientId = r.name(lastClientId);
        break;
      case 2:
        schemaVersion = r.uint32();
        break;
      case 3:
        // Counted as they come: a body of empty deltas would otherwise build millions of objects first.
        if (deltas.length >= maxDeltas) throw tooManyDeltas(maxDeltas);
        deltas.push(readDelta(r, deltas.length, 2, undefined));
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - 1);
    }
  }
  return { clientId, schemaVersion, deltas };
}

function readPushResponse(r: WireReader): PushResult {
  let accepted = 0;
  let duplicates = 0;
  let serverHlc = 0n;
  let cursor = '';
  while (r.pos < r.len) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        accepted = r.uint32();
        break;
      case 2:
        duplicates = r.uint32();
        break;
      case 3:
        serverHlc = r.uint64();
        break;
      case 4:
        cursor = r.string();
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - 1);
    }
  }
  return { accepted, duplicates, serverHlc, cursor };
}

interface RawPull {
  readonly changes: (Change | null)[];
  readonly nextCursor: string;
  readonly hasMore: boolean;
  readonly serverHlc: bigint;
}

function readPullResponse(r: WireReader): RawPull {
  const changes: (Change | null)[] = [];
  let nextCursor = '';
  let hasMore = false;
  let serverHlc = 0n;
  while (r.pos < r.len) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        changes.push(readChange(r, 2));
        break;
      case 2:
        nextCursor = r.string();
        break;
      case 3:
        hasMore = r.bool();
        break;
      case 4:
        serverHlc = r.uint64();
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - 1);
    }
  }
  return { changes, nextCursor, hasMore, serverHlc };
}

function readError(r: WireReader, prev: WireError | null): WireError {
  const end = r.end();
  let code = prev?.code ?? '';
  let message = prev?.message ?? '';
  let requestId = prev?.requestId ?? '';
  let deltaIndex = prev?.deltaIndex ?? 0;
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
      case 1:
        code = r.string();
        break;
      case 2:
        message = r.string();
        break;
      case 3:
        requestId = r.string();
        break;
      case 4:
        deltaIndex = r.int32();
        break;
      default:
        r.skip(t & 7, t >>> 3, LIMIT - 2);
    }
  }
  return { code, message, requestId, deltaIndex };
}

function readErrorResponse(r: WireReader): WireError | null {
  let error: WireError | null = null;
  while (r.pos < r.len) {
    const t = r.tag();
    if (t >>> 3 === 1) error = readError(r, error);
    else r.skip(t & 7, t >>> 3, LIMIT - 1);
  }
  return error;
}

// ---------- entry points ----------

export function decodePushRequestProto(body: Uint8Array, maxDeltas = Infinity): PushInput {
  const input = parse(body, (r) => readPushRequest(r, maxDeltas));
  try {
    const deltas = input.deltas;
    for (let i = 0; i < deltas.length; i++) checkDelta(deltas[i] as Delta, i);
  } finally {
    if (pending.size !== 0) pending.clear();
  }
  return input;
}

export function decodePushResponseProto(body: Uint8Array): PushResult {
  return parse(body, readPushResponse);
}

export function decodePullResponseProto(body: Uint8Array): PullResult {
  const raw = parse(body, readPullResponse);
  try {
    const changes = raw.changes;
    for (let i = 0; i < changes.length; i++) checkChange(changes[i] as Change | null);
  } finally {
    if (pending.size !== 0) pending.clear();
  }
  return raw as PullResult;
}

/** The error envelope, or null when there is none; throws MALFORMED_BODY on bad bytes. */
export function decodeErrorProto(body: Uint8Array): WireError | null {
  return parse(body, readErrorResponse);
}
