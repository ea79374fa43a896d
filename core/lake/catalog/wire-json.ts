import { isInteger, parse } from 'lossless-json';

/**
 * Catalog responses, parsed as ../json.ts's parseJson documents: integers
 * beyond 2^53 (snapshot ids) become bigints, every other number stays a
 * number. (parseJson itself currently turns every integer into a bigint,
 * so `format-version` would read as 2n; once it follows its own comment,
 * this can go.)
 */
export function parseWireJson(text: string): unknown {
  return parse(text, null, (value: string) => {
    if (!isInteger(value)) return Number.parseFloat(value);
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : BigInt(value);
  });
}
