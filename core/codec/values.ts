import { isJsonText, emptyColumns, type ColumnValue, type Columns } from '../values.ts';
import type { ByteReader, ByteWriter } from './bytes.ts';

/** Value tags shared by the content hash and the storage encoding. */
export const enum Tag {
  Null = 0,
  String = 1,
  Int = 2,
  Double = 3,
  False = 4,
  True = 5,
  Json = 6,
}

export function writeValue(w: ByteWriter, v: ColumnValue): void {
  if (v === null) w.byte(Tag.Null);
  else if (typeof v === 'string') {
    w.byte(Tag.String);
    w.str(v);
  } else if (typeof v === 'bigint') {
    w.byte(Tag.Int);
    w.i64(v);
  } else if (typeof v === 'number') {
    w.byte(Tag.Double);
    w.f64(v === 0 ? 0 : v); // -0 and 0 alike: JSON cannot tell them apart
  } else if (typeof v === 'boolean') {
    w.byte(v ? Tag.True : Tag.False);
  } else if (isJsonText(v)) {
    w.byte(Tag.Json);
    w.str(v.json);
  }
}

export function readValue(r: ByteReader): ColumnValue {
  const tag = r.byte();
  switch (tag) {
    case Tag.Null:
      return null;
    case Tag.String:
      return r.str();
    case Tag.Int:
      return r.i64();
    case Tag.Double:
      return r.f64();
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.Json:
      return { json: r.str() };
    default:
      throw new RangeError(`unknown value tag ${tag}`);
  }
}

/** Columns sorted by name, so equal column sets encode to equal bytes. */
export function writeColumns(w: ByteWriter, cols: Columns): void {
  const names = Object.keys(cols);
  if (!isSorted(names)) names.sort();
  w.u32(names.length);
  for (const name of names) {
    w.str(name);
    writeValue(w, cols[name] as ColumnValue);
  }
}

export function readColumns(r: ByteReader): Record<string, ColumnValue> {
  const out = emptyColumns();
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const name = r.str();
    out[name] = readValue(r);
  }
  return out;
}

function isSorted(names: readonly string[]): boolean {
  for (let i = 1; i < names.length; i++) if ((names[i - 1] as string) > (names[i] as string)) return false;
  return true;
}
