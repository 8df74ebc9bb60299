import type { ThrottlerStorage } from '@nestjs/throttler';

/** What the throttler guard needs to know after counting one request. */
export interface RateLimitRecord {
  totalHits: number;
  /** Seconds until the current window ends. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until requests are admitted again; 0 when not blocked. */
  timeToBlockExpire: number;
}

interface Window {
  hits: number;
  endsAt: number;
}

/** Windows kept before expired ones are swept on the next count. */
const SWEEP_THRESHOLD = 50_000;

/**
 * Fixed-window counters for `@nestjs/throttler`: one number per key and window, so counting a
 * request costs a map lookup whatever the limit (the built-in storage keeps one timestamp per
 * hit, which grows with the limit). A key over its limit stays blocked until its window ends.
 */
export class FixedWindowRateLimitStorage implements Pick<ThrottlerStorage, 'increment'> {
  private readonly windows = new Map<string, Window>();
  private nextSweepAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** How many keys are being counted now. */
  get size(): number {
    return this.windows.size;
  }

  increment(key: string, ttlMs: number, limit: number): Promise<RateLimitRecord> {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || window.endsAt <= now) {
      if (this.windows.size >= SWEEP_THRESHOLD && now >= this.nextSweepAt) this.sweep(now, ttlMs);
      window = { hits: 0, endsAt: now + ttlMs };
      this.windows.set(key, window);
    }
    window.hits++;
    const timeToExpire = Math.max(1, Math.ceil((window.endsAt - now) / 1000));
    const isBlocked = window.hits > limit;
    return Promise.resolve({
      totalHits: window.hits,
      timeToExpire,
      isBlocked,
      timeToBlockExpire: isBlocked ? timeToExpire : 0,
    });
  }

  private sweep(now: number, ttlMs: number): void {
    for (const [key, window] of this.windows) {
      if (window.endsAt <= now) this.windows.delete(key);
    }
    this.nextSweepAt = now + Math.min(ttlMs, 1000);
  }
}
