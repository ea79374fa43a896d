/**
 * Sync rules and claims that are present but null (found by review; the test
 * failed before the fix).
 */
import { describe, expect, it } from 'vitest';
import { RuleSet } from './rules.ts';

describe('sync rules: null claims', () => {
  // rules.ts evaluate: the claim is resolved first, then `eq` with a null target means
  // "the cell is NULL or absent". So a token whose claim is present but null (identity
  // providers emit `"team": null` for users without one) sees, and may write, every row whose
  // rule column is NULL or was never written: rows nobody was granted. A token without the
  // claim sees none of them ("a missing claim never grants access", rules.test.ts), and `in`
  // with a null claim grants nothing either. Only a literal null in the rules should mean
  // "NULL"; a null claim should be treated like a missing one.
  it('a claim that is present but null grants no more than a missing claim', () => {
    const r = new RuleSet({ buckets: [{ name: 'team', tables: { todos: [{ column: 'team', op: 'eq', value: { claim: 'team' } }] } }] });
    expect(r.matches({ sub: 'u1' }, 'todos', { title: 'unassigned' })).toBe(false);
    expect(r.matches({ sub: 'u1', team: null }, 'todos', { title: 'unassigned' })).toBe(false);
    expect(r.matches({ sub: 'u1', team: null }, 'todos', { title: 'cleared', team: null })).toBe(false);
  });
});
