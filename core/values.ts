/**
 * Column values as the engine sees them. The JavaScript type decides the wire
 * arm, so a value means the same thing everywhere without a schema:
 * null -> NULL, string -> string, bigint -> int64, number -> float64,
 * boolean -> bool, { json } -> JSON text.
 */
export interface JsonText {
  readonly json: string;
}

export type ColumnValue = null | string | number | boolean | bigint | JsonText;

/** Columns a delta sets. An absent key means "not touched"; null means NULL. */
export type Columns = Readonly<Record<string, ColumnValue>>;

export function isJsonText(v: ColumnValue): v is JsonText {
  return typeof v === 'object' && v !== null;
}

export function json(value: unknown): JsonText {
  return { json: JSON.stringify(value) };
}

export function valueEquals(a: ColumnValue, b: ColumnValue): boolean {
  if (isJsonText(a)) return isJsonText(b) && a.json === b.json;
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || a === b;
  return a === b;
}

/** A null-prototype record, safe for keys such as "__proto__". */
export function emptyColumns(): Record<string, ColumnValue> {
  return Object.create(null) as Record<string, ColumnValue>;
}

/** A null-prototype record of any value type. */
export function nullRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
