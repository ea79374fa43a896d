export interface BackoffOptions {
  readonly baseMs?: number;
  readonly maxMs?: number;
  /** Injected randomness in [0, 1) so tests are deterministic. */
  readonly random?: () => number;
}

/**
 * Exponential backoff with full jitter: attempt n waits a uniform random time
 * in [0, min(max, base * 2^n)). Full jitter spreads reconnect storms best.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** The longest delay setTimeout and setInterval hold (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;
