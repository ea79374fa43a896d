import { describe, expect, it } from 'vitest';
import { RuleSet, type Filter } from './rules.ts';

const rules = (filters: Filter[]) => new RuleSet({ buckets: [{ name: 'b', tables: { t: filters } }] });

describe('sync rules', () => {
  it('no rules means every row is visible', () => {
    expect(new RuleSet(null).matches({}, 't', {})).toBe(true);
  });

  it('tables outside every bucket are invisible', () => {
    expect(rules([]).matches({}, 'other', {})).toBe(false);
    expect(rules([]).matches({}, 't', {})).toBe(true);
  });

  it.each([
    ['eq', 'a', 'a', true],
    ['eq', 'a', 'b', false],
    ['neq', 'a', 'b', true],
    ['gt', 5n, 3, true],
    ['gte', 3n, 3, true],
    ['lt', 2.5, 3, true],
    ['lte', 4n, 3, false],
    ['gt', 'b', 'a', true],
  ] as const)('%s: row %s vs literal %s -> %s', (op, cell, value, expected) => {
    expect(rules([{ column: 'c', op, value }]).matches({}, 't', { c: cell })).toBe(expected);
  });

  it('reads claims, including arrays for "in"', () => {
    const r = rules([
      { column: 'owner', op: 'eq', value: { claim: 'sub' } },
      { column: 'team', op: 'in', value: { claim: 'teams' } },
    ]);
    expect(r.matches({ sub: 'u1', teams: ['red', 'blue'] }, 't', { owner: 'u1', team: 'blue' })).toBe(true);
    expect(r.matches({ sub: 'u1', teams: ['red'] }, 't', { owner: 'u1', team: 'blue' })).toBe(false);
    expect(r.matches({ sub: 'u2', teams: ['blue'] }, 't', { owner: 'u1', team: 'blue' })).toBe(false);
  });

  it('a missing claim never grants access', () => {
    expect(rules([{ column: 'owner', op: 'eq', value: { claim: 'sub' } }]).matches({}, 't', { owner: 'u1' })).toBe(false);
    expect(rules([{ column: 'owner', op: 'neq', value: { claim: 'sub' } }]).matches({}, 't', { owner: 'u1' })).toBe(false);
    expect(rules([{ column: 'x', op: 'in', value: { claim: 'list' } }]).matches({}, 't', { x: 'a' })).toBe(false);
  });

  it('a claim that is no single value (array, object) never grants access either, with any op but "in"', () => {
    for (const op of ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] as const) {
      const r = rules([{ column: 'owner', op, value: { claim: 'sub' } }]);
      for (const sub of [['u1', 'u2'], { id: 'u1' }, []]) expect(r.matches({ sub }, 't', { owner: 'u1' }), `${op} ${JSON.stringify(sub)}`).toBe(false);
    }
  });

  it('an integer column matches a claim holding the integer as a string only in its one decimal spelling', () => {
    const r = rules([{ column: 'org', op: 'eq', value: { claim: 'org' } }]);
    expect(r.matches({ org: '42' }, 't', { org: 42n })).toBe(true);
    expect(r.matches({ org: 42 }, 't', { org: 42n })).toBe(true);
    for (const spelling of ['0042', '+42', '42.0', ' 42', '-0']) expect(r.matches({ org: spelling }, 't', { org: 42n }), spelling).toBe(false);
  });

  it('any bucket may grant a row', () => {
    const r = new RuleSet({
      buckets: [
        { name: 'mine', tables: { t: [{ column: 'owner', op: 'eq', value: { claim: 'sub' } }] } },
        { name: 'public', tables: { t: [{ column: 'public', op: 'eq', value: true }] } },
      ],
    });
    expect(r.matches({ sub: 'u2' }, 't', { owner: 'u1', public: true })).toBe(true);
    expect(r.matches({ sub: 'u2' }, 't', { owner: 'u1', public: false })).toBe(false);
    expect(r.columnsFor('t').sort()).toEqual(['owner', 'public']);
  });
});
