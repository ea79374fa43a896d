import type { LogEntryDraft } from '../engine/ports.ts';
import type { Claims, RuleSet } from '../rules.ts';

/** What a live connection keeps of its token, to be matched against changes later. */
export interface Listener {
  readonly clientId: string;
  readonly claims: Claims;
  readonly admin: boolean;
}

/** What a poke decision needs of an appended log entry. */
export type LiveChange = Pick<LogEntryDraft, 'delta' | 'before' | 'after'>;

/**
 * Whether changes concern a listener: whether its next pull would carry any
 * of them, which is when the row was or is in its view (Gateway.pull's rule,
 * through the same RuleSet.sees). Its own writes do not count: a client pulls
 * right after its own push. So a write wakes only the clients that will see
 * it, not every connection.
 */
export function concerns(rules: RuleSet, who: Listener, changes: readonly LiveChange[]): boolean {
  for (const c of changes) {
    if (c.delta.clientId === who.clientId) continue;
    const table = c.delta.table;
    if (rules.sees(who, table, c.before) || rules.sees(who, table, c.after)) return true;
  }
  return false;
}

/** The claims a listener must keep: only those the rules read (a stored connection holds no more of the token than that). */
export function keptClaims(rules: RuleSet, claims: Claims): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of rules.claimNames()) if (Object.hasOwn(claims, name)) out[name] = claims[name];
  return out;
}
