import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const top = (attempt: number) => backoffDelay(attempt, { baseMs: 100, maxMs: 5000, random: () => 0.999999 });
    expect([0, 1, 2, 3, 10].map(top)).toEqual([99, 199, 399, 799, 4999]);
    expect(backoffDelay(5, { baseMs: 100, random: () => 0 })).toBe(0);
    expect(backoffDelay(1000, { baseMs: 100, maxMs: 5000, random: () => 0.5 })).toBe(2500);
  });
});
