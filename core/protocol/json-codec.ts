import type { Delta, Op } from '../delta.ts';
import type { Change, PullResult, PushInput, PushResult } from '../engine/gateway.ts';
import { LakeSyncError, tooManyDeltas } from '../errors.ts';
import type { ColumnState, RowState, Stamp } from '../merge.ts';
import { emptyColumns, isJsonText, type ColumnValue } from '../values.ts';
import type { CheckpointInfo } from './codec.ts';
import type { WireError } from './proto-encode.ts';

/**
 * The proto3 JSON mapping of the messages the gateway writes, and of the
 * PushRequest it reads, by hand: the generated messages and their reflection
 * (@bufbuild/protobuf) made up 100 KB of the http Lambda's 250 KB, for five
 * messages. Output is byte for byte what protobuf-es's toJson gives with
 * alwaysEmitImplicit (fields in declaration order, 64-bit integers as
 * strings); input follows its fromJson with ignoreUnknownFields (camelCase
 * or proto names, integers as numbers or strings, enums by name or number,
 * null for "not set"). json-codec.test.ts checks both against protobuf-es on
 * random messages and random spellings.
 */

// ---------- writing ----------

function str(s: string): string {
  return JSON.stringify(s);
}

function double(v: number): string {
  if (Number.isNaN(v)) return '"NaN"';
  if (v === Number.POSITIVE_INFINITY) return '"Infinity"';
  if (v === Number.NEGATIVE_INFINITY) return '"-Infinity"';
  return JSON.stringify(v);
}

function value(v: ColumnValue): string {
  if (v === null) return '{"nullValue":null}';
  if (typeof v === 'string') return `{"stringValue":${str(v)}}`;
  if (typeof v === 'bigint') return `{"intValue":"${v}"}`;
  if (typeof v === 'number') return `{"doubleValue":${double(v)}}`;
  if (typeof v === 'boolean') return `{"boolValue":${v}}`;
  if (isJsonText(v)) return `{"jsonValue":${str(v.json)}}`;
  throw new LakeSyncError('INVALID_VALUE', 'unsupported value');
}

function stamp(s: Stamp): string {
  return `{"hlc":"${s.hlc}","clientId":${str(s.clientId)}}`;
}

const OP_NAMES: Readonly<Record<Op, string>> = { insert: 'OP_INSERT', update: 'OP_UPDATE', delete: 'OP_DELETE' };

function delta(d: Delta): string {
  const cols: string[] = [];
  for (const name in d.columns) cols.push(`{"name":${str(name)},"value":${value(d.columns[name] as ColumnValue)}}`);
  return (
    `{"deltaId":${str(d.deltaId)},"table":${str(d.table)},"rowId":${str(d.rowId)},"op":"${OP_NAMES[d.op]}",` +
    `"columns":[${cols.join(',')}],"hlc":"${d.hlc}","clientId":${str(d.clientId)}}`
  );
}

function row(r: RowState): string {
  const cols: string[] = [];
  for (const name in r.columns) {
    const c = r.columns[name] as ColumnState;
    cols.push(`{"name":${str(name)},"value":${value(c.value)},"stamp":${stamp(c.stamp)}}`);
  }
  return (
    `{"table":${str(r.table)},"rowId":${str(r.rowId)}` +
    (r.inserted === null ? '' : `,"inserted":${stamp(r.inserted)}`) +
    (r.deleted === null ? '' : `,"deleted":${stamp(r.deleted)}`) +
    `,"columns":[${cols.join(',')}]}`
  );
}

function change(c: Change): string {
  switch (c.kind) {
    case 'delta':
      return `{"delta":${delta(c.delta)}}`;
    case 'row':
      return `{"row":${row(c.row)}}`;
    case 'evict':
      return `{"evict":{"table":${str(c.table)},"rowId":${str(c.rowId)}}}`;
  }
}

function uint32(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new LakeSyncError('INTERNAL', `${field}: invalid uint32: ${v}`);
  return v;
}

export function pushRequestJson(input: PushInput): string {
  return `{"clientId":${str(input.clientId)},"schemaVersion":${uint32(input.schemaVersion, 'schemaVersion')},"deltas":[${input.deltas.map(delta).join(',')}]}`;
}

export function pushResponseJson(r: PushResult): string {
  return `{"accepted":${uint32(r.accepted, 'accepted')},"duplicates":${uint32(r.duplicates, 'duplicates')},"serverHlc":"${r.serverHlc}","cursor":${str(r.cursor)}}`;
}

export function pullResponseJson(r: PullResult): string {
  return `{"changes":[${r.changes.map(change).join(',')}],"nextCursor":${str(r.nextCursor)},"hasMore":${r.hasMore},"serverHlc":"${r.serverHlc}"}`;
}

export function errorJson(e: WireError): string {
  return `{"error":{"code":${str(e.code)},"message":${str(e.message)},"requestId":${str(e.requestId)},"deltaIndex":${e.deltaIndex}}}`;
}

export function checkpointInfoJson(info: CheckpointInfo): string {
  const chunks = info.chunks.map((c) => `{"table":${str(c.table)},"index":${uint32(c.index, 'index')},"rows":${uint32(c.rows, 'rows')}}`);
  return (
    `{"checkpointId":${str(info.checkpointId)},"cursor":${str(info.cursor)},"schemaVersion":${uint32(info.schemaVersion, 'schemaVersion')},` +
    `"chunks":[${chunks.join(',')}],"createdAtMs":"${info.createdAtMs}"}`
  );
}

// ---------- reading a PushRequest ----------

/** A JSON body that is not the message: what fromJson's errors become. */
function malformed(why: string): LakeSyncError {
  return new LakeSyncError('MALFORMED_BODY', `body is not a valid JSON message: ${why}`);
}

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The members of a message by field: each field's JSON name and proto name
 * map to the field's canonical name. A field given twice (both spellings,
 * even with one null) is refused, as fromJson refuses it; keys are read in
 * Object.keys order, unknown ones ignored.
 */
function members(o: Obj, names: ReadonlyMap<string, string>, where: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const k of Object.keys(o)) {
    const name = names.get(k);
    if (name === undefined) continue;
    if (out.has(name)) throw malformed(`${where}.${name}: set multiple times`);
    out.set(name, o[k]);
  }
  return out;
}

function namesOf(...pairs: readonly (readonly [string, string])[]): ReadonlyMap<string, string> {
  const m = new Map<string, string>();
  for (const [json, proto] of pairs) m.set(json, json).set(proto, json);
  return m;
}

/** Unpaired UTF-16 surrogates: not valid UTF-8, refused as protobuf-es's string check refuses them. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function readString(v: unknown, where: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw malformed(`${where}: not a string`);
  if (LONE_SURROGATE.test(v)) throw malformed(`${where}: invalid UTF-8`);
  return v;
}

function readBool(v: unknown, where: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw malformed(`${where}: not a boolean`);
  return v;
}

/**
 * A 64-bit integer as protobuf-es reads one: a JSON number that is an
 * integer, or a non-empty string BigInt() takes (so " 1", "+1" and "0x10"
 * read, "1e2" and "1.0" do not).
 */
function int64Of(v: unknown, where: string): bigint {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && v.length > 0) {
    try {
      return BigInt(v);
    } catch {
      // falls through to the refusal
    }
  }
  throw malformed(`${where}: not an integer`);
}

/** A 32-bit integer as protobuf-es reads one: a number, or a string Number() takes without surrounding whitespace ("1e2" reads). */
function int32Of(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '' && v.trim() === v) return Number(v);
  return undefined;
}

function readUint32(v: unknown, where: string): number {
  if (v === undefined || v === null) return 0;
  const n = int32Of(v);
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw malformed(`${where}: not a uint32`);
  return n;
}

function readUint64(v: unknown, where: string): bigint {
  if (v === undefined || v === null) return 0n;
  const n = int64Of(v, where);
  if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw malformed(`${where}: out of range for uint64`);
  return n;
}

function readInt64(v: unknown, where: string): bigint {
  const n = int64Of(v, where);
  if (n < -0x8000_0000_0000_0000n || n > 0x7fff_ffff_ffff_ffffn) throw malformed(`${where}: out of range for int64`);
  return n;
}

function readDouble(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (v === 'NaN') return Number.NaN;
    if (v === 'Infinity') return Number.POSITIVE_INFINITY;
    if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
    const n = v.trim() === v && v !== '' ? Number(v) : Number.NaN;
    if (Number.isFinite(n)) return n;
  }
  throw malformed(`${where}: not a double`);
}

const OP_BY_NAME: Readonly<Record<string, number>> = { OP_UNSPECIFIED: 0, OP_INSERT: 1, OP_UPDATE: 2, OP_DELETE: 3 };
const OPS: readonly (Op | undefined)[] = [undefined, 'insert', 'update', 'delete'];

/**
 * An enum field: its name or its number (proto3 enums are open: any int32
 * reads). An unknown name reads as undefined (not set), as fromJson does when
 * it ignores unknown fields (a newer peer's enum value); null is the zero value.
 */
function readEnum(v: unknown, names: Readonly<Record<string, number>>, where: string): number | undefined {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'string') return Object.hasOwn(names, v) ? (names[v] as number) : undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= -0x8000_0000 && v <= 0x7fff_ffff) return v;
  throw malformed(`${where}: not an enum value`);
}

const VALUE_NAMES = namesOf(
  ['nullValue', 'null_value'],
  ['stringValue', 'string_value'],
  ['intValue', 'int_value'],
  ['doubleValue', 'double_value'],
  ['boolValue', 'bool_value'],
  ['jsonValue', 'json_value'],
);

/**
 * A Value: one member of its oneof set. A null scalar member is skipped; a
 * null nullValue is NULL_VALUE; an unknown nullValue name sets nothing but
 * still counts as the oneof's member. undefined when no kind is set.
 */
function readValue(v: unknown, where: string): ColumnValue | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw malformed(`${where}: not an object`);
  let out: ColumnValue | undefined;
  let seen = false;
  for (const [name, x] of members(v, VALUE_NAMES, where)) {
    if (x === null && name !== 'nullValue') continue;
    if (seen) throw malformed(`${where}: oneof kind set twice`);
    seen = true;
    const at = `${where}.${name}`;
    switch (name) {
      case 'nullValue':
        if (readEnum(x, { NULL_VALUE: 0 }, at) !== undefined) out = null;
        break;
      case 'stringValue':
        out = readString(x, at);
        break;
      case 'intValue':
        out = readInt64(x, at);
        break;
      case 'doubleValue':
        out = readDouble(x, at);
        break;
      case 'boolValue':
        out = readBool(x, at);
        break;
      case 'jsonValue':
        out = { json: readString(x, at) };
        break;
    }
  }
  return out;
}

const REQUEST_NAMES = namesOf(['clientId', 'client_id'], ['schemaVersion', 'schema_version'], ['deltas', 'deltas']);
const DELTA_NAMES = namesOf(
  ['deltaId', 'delta_id'],
  ['table', 'table'],
  ['rowId', 'row_id'],
  ['op', 'op'],
  ['columns', 'columns'],
  ['hlc', 'hlc'],
  ['clientId', 'client_id'],
);
const COLUMN_NAMES = namesOf(['name', 'name'], ['value', 'value']);

/** A repeated message field: null is empty, items may not be null. */
function readList<T>(v: unknown, where: string, item: (x: Obj, at: string, i: number) => T): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(`${where}: not an array`);
  return (v as unknown[]).map((x, i) => {
    const at = `${where}[${i}]`;
    if (!isObj(x)) throw malformed(`${at}: not an object`);
    return item(x, at, i);
  });
}

/** A Delta as read, before the checks deltaFromPb makes (fromJson reads the whole message first). */
interface RawDelta {
  readonly deltaId: string;
  readonly table: string;
  readonly rowId: string;
  readonly op: number;
  readonly columns: readonly { readonly name: string; readonly value: ColumnValue | undefined }[];
  readonly hlc: bigint;
  readonly clientId: string;
}

function readDelta(o: Obj, where: string): RawDelta {
  const m = members(o, DELTA_NAMES, where);
  const columns = readList(m.get('columns'), `${where}.columns`, (c, at) => {
    const cm = members(c, COLUMN_NAMES, at);
    return { name: readString(cm.get('name'), `${at}.name`), value: readValue(cm.get('value'), `${at}.value`) };
  });
  return {
    deltaId: readString(m.get('deltaId'), `${where}.deltaId`),
    table: readString(m.get('table'), `${where}.table`),
    rowId: readString(m.get('rowId'), `${where}.rowId`),
    op: readEnum(m.get('op'), OP_BY_NAME, `${where}.op`) ?? 0,
    columns,
    hlc: readUint64(m.get('hlc'), `${where}.hlc`),
    clientId: readString(m.get('clientId'), `${where}.clientId`),
  };
}

/** deltaFromPb's checks: the op, then each column (a repeat, then its value). */
function checkDelta(d: RawDelta, deltaIndex: number): Delta {
  const op = d.op >= 1 && d.op <= 3 ? OPS[d.op] : undefined;
  if (op === undefined) throw new LakeSyncError('INVALID_REQUEST', 'delta op is missing or unknown', { deltaIndex });
  const columns = emptyColumns();
  for (const c of d.columns) {
    if (c.name in columns) throw new LakeSyncError('INVALID_REQUEST', `column "${c.name}" appears twice`, { deltaIndex });
    if (c.value === undefined) throw new LakeSyncError('INVALID_VALUE', `${c.name}: value has no kind`, { deltaIndex });
    columns[c.name] = c.value;
  }
  return { deltaId: d.deltaId, table: d.table, rowId: d.rowId, op, columns, hlc: d.hlc, clientId: d.clientId };
}

/** A PushRequest in the proto3 JSON mapping (unknown fields ignored). */
export function readPushRequestJson(parsed: unknown, maxDeltas = Infinity): PushInput {
  if (!isObj(parsed)) throw malformed('not an object');
  const m = members(parsed, REQUEST_NAMES, 'request');
  const clientId = readString(m.get('clientId'), 'clientId');
  const schemaVersion = readUint32(m.get('schemaVersion'), 'schemaVersion');
  const list = m.get('deltas');
  // Before reading them: a body of empty deltas would otherwise become millions of objects.
  if (Array.isArray(list) && list.length > maxDeltas) throw tooManyDeltas(maxDeltas);
  const deltas = readList(m.get('deltas'), 'deltas', readDelta);
  return { clientId, schemaVersion, deltas: deltas.map((d, i) => checkDelta(d, i)) };
}
