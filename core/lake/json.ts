import { isInteger, parse, stringify } from 'lossless-json';

/**
 * JSON for Iceberg metadata and REST payloads. Snapshot ids are random
 * 63-bit numbers, which plain JSON.parse silently rounds; here every integer
 * outside the safe range stays a bigint, and bigints are written as plain
 * JSON numbers.
 */
export function parseJson(text: string): unknown {
  return parse(text, null, parseNumber);
}

/** Safe numbers stay numbers; integers beyond 2^53 become bigints. */
function parseNumber(value: string): number | bigint {
  if (!isInteger(value)) return Number.parseFloat(value);
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : BigInt(value);
}

export function stringifyJson(value: unknown, indent?: number): string {
  const out = stringify(value, null, indent);
  if (out === undefined) throw new TypeError('value cannot be written as JSON');
  return out;
}

/** A number or bigint from parsed JSON as a bigint (ids that happen to be small parse as numbers). */
export function toBigInt(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw new TypeError(`${what} is not an integer`);
}
