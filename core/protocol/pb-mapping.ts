/**
 * Mapping between the domain types and the messages generated from
 * proto/lakesync/v1/sync.proto. The JSON wire format goes through it
 * (codec.ts), and so does reflect-codec.ts, the reference protobuf codec.
 */
import { NullValue } from '@bufbuild/protobuf/wkt';
import type { Delta, Op } from '../delta.ts';
import type { Change } from '../engine/gateway.ts';
import { LakeSyncError } from '../errors.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { emptyColumns, nullRecord, isJsonText, type ColumnValue, type Columns } from '../values.ts';
import {
  Op as PbOp,
  type Change as PbChange,
  type ColumnValue as PbColumnValue,
  type Delta as PbDelta,
  type RowState as PbRowState,
  type Stamp as PbStamp,
  type Value as PbValue,
} from './gen/lakesync/v1/sync_pb.ts';

// ---------- values ----------

export function valueToPb(v: ColumnValue): PbValue['kind'] {
  if (v === null) return { case: 'nullValue', value: NullValue.NULL_VALUE };
  if (typeof v === 'string') return { case: 'stringValue', value: v };
  if (typeof v === 'bigint') return { case: 'intValue', value: v };
  if (typeof v === 'number') return { case: 'doubleValue', value: v };
  if (typeof v === 'boolean') return { case: 'boolValue', value: v };
  if (isJsonText(v)) return { case: 'jsonValue', value: v.json };
  throw new LakeSyncError('INVALID_VALUE', 'unsupported value');
}

export function valueFromPb(kind: PbValue['kind'] | undefined, where: string, deltaIndex: number): ColumnValue {
  switch (kind?.case) {
    case 'nullValue':
      return null;
    case 'stringValue':
    case 'intValue':
    case 'doubleValue':
    case 'boolValue':
      return kind.value;
    case 'jsonValue':
      return { json: kind.value };
    default:
      throw new LakeSyncError('INVALID_VALUE', `${where}: value has no kind`, { deltaIndex });
  }
}

export function columnsToPb(cols: Columns): PbColumnValue[] {
  const out: PbColumnValue[] = [];
  for (const name in cols) {
    out.push(columnValueToPb(name, cols[name] as ColumnValue));
  }
  return out;
}

export function columnValueToPb(name: string, v: ColumnValue): PbColumnValue {
  return { $typeName: 'lakesync.v1.ColumnValue', name, value: { $typeName: 'lakesync.v1.Value', kind: valueToPb(v) } };
}

export function columnsFromPb(list: readonly PbColumnValue[], deltaIndex: number): Columns {
  const out = emptyColumns();
  for (const c of list) {
    if (c.name in out) throw new LakeSyncError('INVALID_REQUEST', `column "${c.name}" appears twice`, { deltaIndex });
    out[c.name] = valueFromPb(c.value?.kind, c.name, deltaIndex);
  }
  return out;
}

// ---------- deltas ----------

const OP_TO_PB: Readonly<Record<Op, PbOp>> = { insert: PbOp.INSERT, update: PbOp.UPDATE, delete: PbOp.DELETE };

export function opFromPb(op: PbOp, deltaIndex: number): Op {
  switch (op) {
    case PbOp.INSERT:
      return 'insert';
    case PbOp.UPDATE:
      return 'update';
    case PbOp.DELETE:
      return 'delete';
    default:
      throw new LakeSyncError('INVALID_REQUEST', 'delta op is missing or unknown', { deltaIndex });
  }
}

export function deltaToPb(d: Delta): PbDelta {
  return {
    $typeName: 'lakesync.v1.Delta',
    deltaId: d.deltaId,
    table: d.table,
    rowId: d.rowId,
    op: OP_TO_PB[d.op],
    columns: columnsToPb(d.columns),
    hlc: d.hlc,
    clientId: d.clientId,
  };
}

export function deltaFromPb(p: PbDelta, deltaIndex = -1): Delta {
  return {
    deltaId: p.deltaId,
    table: p.table,
    rowId: p.rowId,
    op: opFromPb(p.op, deltaIndex),
    columns: columnsFromPb(p.columns, deltaIndex),
    hlc: p.hlc,
    clientId: p.clientId,
  };
}

// ---------- row states ----------

export function stampToPb(s: Stamp | null): PbStamp | undefined {
  return s === null ? undefined : { $typeName: 'lakesync.v1.Stamp', hlc: s.hlc, clientId: s.clientId };
}

export function stampFromPb(s: PbStamp | undefined): Stamp | null {
  return s === undefined ? null : { hlc: s.hlc, clientId: s.clientId };
}

export function rowToPb(r: RowState): PbRowState {
  return {
    $typeName: 'lakesync.v1.RowState',
    table: r.table,
    rowId: r.rowId,
    inserted: stampToPb(r.inserted),
    deleted: stampToPb(r.deleted),
    columns: Object.keys(r.columns).map((name) => {
      const c = r.columns[name] as ColumnState;
      return {
        $typeName: 'lakesync.v1.ColumnState' as const,
        name,
        value: { $typeName: 'lakesync.v1.Value' as const, kind: valueToPb(c.value) },
        stamp: stampToPb(c.stamp),
      };
    }),
  };
}

export function rowFromPb(p: PbRowState): RowState {
  const columns = nullRecord<ColumnState>();
  for (const c of p.columns) {
    const stamp = stampFromPb(c.stamp);
    if (stamp === null) throw new LakeSyncError('MALFORMED_BODY', 'column state without stamp');
    columns[c.name] = { value: valueFromPb(c.value?.kind, c.name, -1), stamp };
  }
  return { table: p.table, rowId: p.rowId, inserted: stampFromPb(p.inserted), deleted: stampFromPb(p.deleted), columns };
}

export function changeToPb(c: Change): PbChange {
  switch (c.kind) {
    case 'delta':
      return { $typeName: 'lakesync.v1.Change', kind: { case: 'delta', value: deltaToPb(c.delta) } };
    case 'row':
      return { $typeName: 'lakesync.v1.Change', kind: { case: 'row', value: rowToPb(c.row) } };
    case 'evict':
      return {
        $typeName: 'lakesync.v1.Change',
        kind: { case: 'evict', value: { $typeName: 'lakesync.v1.RowRef', table: c.table, rowId: c.rowId } },
      };
  }
}

export function changeFromPb(c: PbChange): Change {
  switch (c.kind.case) {
    case 'delta':
      return { kind: 'delta', delta: deltaFromPb(c.kind.value) };
    case 'row':
      return { kind: 'row', row: rowFromPb(c.kind.value) };
    case 'evict':
      return { kind: 'evict', table: c.kind.value.table, rowId: c.kind.value.rowId };
    default:
      throw new LakeSyncError('MALFORMED_BODY', 'change has no kind');
  }
}
