import type { ColumnValue } from './values.ts';
import { isJsonText } from './values.ts';

/** A filter value: a literal, or the value of a claim in the client's JWT. */
export type RuleValue = string | number | boolean | null | { readonly claim: string };

export type FilterOp = 'eq' | 'neq' | 'in' | 'gt' | 'gte' | 'lt' | 'lte';

export interface Filter {
  readonly column: string;
  readonly op: FilterOp;
  /** For `in`: an array of values, or a claim holding an array. */
  readonly value: RuleValue | readonly RuleValue[];
}

/** A bucket: tables and the filters (all must hold) that select their rows. */
export interface Bucket {
  readonly name: string;
  readonly tables: Readonly<Record<string, readonly Filter[]>>;
}

/**
 * Sync rules v1. A client receives a row when at least one bucket lists the
 * row's table and every filter of that bucket holds on the row's merged
 * state. No rules at all means every client sees every row.
 */
export interface SyncRules {
  readonly version?: number;
  readonly buckets: readonly Bucket[];
}

export type Claims = Readonly<Record<string, unknown>>;
type Row = Readonly<Record<string, ColumnValue>>;

const OPS = new Set<FilterOp>(['eq', 'neq', 'in', 'gt', 'gte', 'lt', 'lte']);

/** Sync rules compiled once: per table, the filter sets of the buckets naming it. */
export class RuleSet {
  private readonly byTable = new Map<string, (readonly Filter[])[]>();
  readonly open: boolean;

  constructor(rules: SyncRules | null) {
    this.open = rules === null;
    for (const bucket of rules?.buckets ?? []) {
      for (const [table, filters] of Object.entries(bucket.tables)) {
        for (const f of filters) {
          if (!OPS.has(f.op)) throw new Error(`bucket ${bucket.name}: unknown filter op "${f.op}"`);
          if (f.op === 'in' && !Array.isArray(f.value) && !isClaimRef(f.value as RuleValue)) {
            throw new Error(`bucket ${bucket.name}: "in" needs an array or a claim`);
          }
        }
        const list = this.byTable.get(table) ?? [];
        list.push(filters);
        this.byTable.set(table, list);
      }
    }
  }

  /** Columns the rules read for a table: the engine keeps their values in the log. */
  columnsFor(table: string): string[] {
    const cols = new Set<string>();
    for (const filters of this.byTable.get(table) ?? []) for (const f of filters) cols.add(f.column);
    return [...cols];
  }

  /** Does this client (by its claims) see this row (by its merged values)? */
  matches(claims: Claims, table: string, row: Row): boolean {
    if (this.open) return true;
    const sets = this.byTable.get(table);
    if (sets === undefined) return false;
    return sets.some((filters) => filters.every((f) => evaluate(f, claims, row)));
  }

  /**
   * Throws when a filter names a column that its table, if the schema has
   * it, lacks: the cell would always be missing, so a typo silently makes
   * `eq` match nothing and `neq` every row. (Tables the schema does not have
   * hold no rows; rules may name them ahead of a schema version.)
   */
  checkColumns(columnsOf: (table: string) => ReadonlyMap<string, unknown> | undefined): void {
    for (const [table, sets] of this.byTable) {
      const columns = columnsOf(table);
      if (columns === undefined) continue;
      for (const filters of sets) {
        for (const f of filters) {
          if (!columns.has(f.column)) throw new Error(`sync rules: table "${table}" has no column "${f.column}"`);
        }
      }
    }
  }

  /** Can this client ever see rows of this table? */
  tableVisible(table: string): boolean {
    return this.open || this.byTable.has(table);
  }

  /**
   * Does a reader see a row in this state (its rule-column values, null when
   * the row is not live)? Admin tokens see every live row. Pull and live
   * pokes decide with this one function.
   */
  sees(who: { readonly claims: Claims; readonly admin: boolean }, table: string, snapshot: Row | null): boolean {
    return snapshot !== null && (who.admin || this.matches(who.claims, table, snapshot));
  }

  /** The claims the rules read: all a connection needs to keep of its token to be matched later. */
  claimNames(): string[] {
    const names = new Set<string>();
    for (const sets of this.byTable.values()) {
      for (const filters of sets) {
        for (const f of filters) {
          const values = Array.isArray(f.value) ? (f.value as readonly RuleValue[]) : [f.value as RuleValue];
          for (const v of values) if (isClaimRef(v)) names.add(v.claim);
        }
      }
    }
    return [...names].sort();
  }
}

function isClaimRef(v: unknown): v is { claim: string } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { claim?: unknown }).claim === 'string';
}

/**
 * A rule value for these claims. A claim that is null counts as missing
 * (identity providers send `"team": null` for users without one): only a
 * literal null in the rules means "the cell is NULL", and a missing claim
 * never grants access.
 */
function resolve(v: RuleValue, claims: Claims): unknown {
  if (!isClaimRef(v)) return v;
  const c = claims[v.claim];
  return c === null ? undefined : c;
}

/** Compare a row value with a rule value; undefined when they are not comparable. */
function compare(a: ColumnValue | undefined, b: unknown): number | undefined {
  if (a === undefined || a === null || b === undefined || b === null) return undefined;
  let left: string | number | bigint | boolean;
  if (isJsonText(a)) left = a.json;
  else left = a;
  if (typeof left === 'bigint') {
    if (typeof b === 'number' && Number.isInteger(b)) return cmp(left, BigInt(b));
    // A claim may carry an integer as a string, but only in its one decimal spelling ("42", not "0042" or "+42").
    if (typeof b === 'string' && /^(?:0|-?[1-9]\d*)$/.test(b)) return cmp(left, BigInt(b));
    if (typeof b === 'bigint') return cmp(left, b);
    return undefined;
  }
  if (typeof left !== typeof b) return undefined;
  return cmp(left, b as typeof left);
}

function cmp<T extends string | number | bigint | boolean>(a: T, b: T): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

function evaluate(f: Filter, claims: Claims, row: Row): boolean {
  const cell = row[f.column];
  if (f.op === 'in') {
    const list = Array.isArray(f.value)
      ? (f.value as readonly RuleValue[]).map((v) => resolve(v, claims))
      : resolve(f.value as RuleValue, claims);
    if (!Array.isArray(list)) return false;
    return list.some((v) => compare(cell, v) === 0);
  }
  const target = resolve(f.value as RuleValue, claims);
  // A claim that is no single value (an array, an object) matches no row, whatever the op: like a
  // missing claim, it fails closed (`neq` would otherwise select every row).
  if (typeof target === 'object' && target !== null) return false;
  if (f.op === 'eq' && target === null) return cell === null || cell === undefined;
  if (f.op === 'neq' && target === null) return cell !== null && cell !== undefined;
  const c = compare(cell, target);
  if (c === undefined) return f.op === 'neq' && target !== undefined;
  switch (f.op) {
    case 'eq':
      return c === 0;
    case 'neq':
      return c !== 0;
    case 'gt':
      return c > 0;
    case 'gte':
      return c >= 0;
    case 'lt':
      return c < 0;
    case 'lte':
      return c <= 0;
  }
}
