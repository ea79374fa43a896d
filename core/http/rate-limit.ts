/**
 * Token-bucket rate limiting per key (the authenticated client id). In-memory and per instance: on serverless runtimes it caps a burst
 * per warm instance, with API Gateway / Cloudflare limits in front of it.
 */
export interface RateLimitOptions {
  /** Sustained requests per second per key. */
  readonly ratePerSecond: number;
  /** Bucket size: requests allowed in a burst. */
  readonly burst: number;
  /** Keys tracked at most; the oldest are forgotten first. */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    this.now = options.now ?? Date.now;
  }

  take(key: string): RateDecision {
    const now = this.now();
    const { ratePerSecond, burst } = this.options;
    const bucket = this.buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * ratePerSecond);
    bucket.at = now;
    // Re-insert so Map order is least-recently-used first.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > (this.options.maxKeys ?? 100_000)) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond)) };
  }
}
