/** How a {@link BurstCounter} decides that occurrences form a burst, and how much it keeps. */
export interface BurstCounterOptions {
  /** Occurrences within one window that make a burst. */
  readonly threshold: number;
  readonly windowMs: number;
  /** Keys counted at once; the least recently seen is forgotten first. */
  readonly maxKeys: number;
  /**
   * After a burst, the key reports no other burst for this long (0: the next `threshold`
   * occurrences make the next burst).
   */
  readonly quietMs: number;
}

interface KeyState {
  /** Times of the latest occurrences (ms, ascending), at most `threshold` of them. */
  times: number[];
  /** When the key last made a burst; -Infinity before its first. */
  burstAt: number;
  /** The latest occurrence time, which decides when the key may be forgotten. */
  seenAt: number;
}

/**
 * Counts occurrences per key in a sliding window and says when one completes a burst. Memory is
 * bounded: at most `maxKeys` keys of at most `threshold` times each; keys idle for longer than
 * the window (and the quiet time) are dropped, and past the cap the least recently seen keys
 * are forgotten. Counts live in this process only.
 */
export class BurstCounter {
  /** Most recently seen last: a hit moves its key to the end. */
  private readonly keys = new Map<string, KeyState>();
  private sweepAt = -Infinity;

  constructor(private readonly options: BurstCounterOptions) {}

  /**
   * Counts one occurrence of `key` at `time` (ms); true when it completes a burst. An
   * occurrence older than the key's window is ignored, and once a burst is reported its
   * occurrences (and any older ones) are not counted again.
   */
  hit(key: string, time: number): boolean {
    const { threshold, windowMs, quietMs } = this.options;
    const state = this.keys.get(key) ?? { times: [], burstAt: -Infinity, seenAt: time };
    this.keys.delete(key);
    this.keys.set(key, state);
    state.seenAt = Math.max(state.seenAt, time);

    insertSorted(state.times, time);
    const newest = state.times[state.times.length - 1];
    const windowStart = newest - windowMs;
    const fresh = state.times.findIndex((t) => t > windowStart && t > state.burstAt);
    state.times.splice(0, fresh < 0 ? state.times.length : fresh);
    if (state.times.length > threshold) state.times.splice(0, state.times.length - threshold);

    if (this.keys.size > this.options.maxKeys || time >= this.sweepAt) this.forget(time);
    if (state.times.length < threshold || newest < state.burstAt + quietMs) return false;
    state.burstAt = newest;
    state.times = [];
    return true;
  }

  /** Keys counted now. */
  get size(): number {
    return this.keys.size;
  }

  /**
   * Drops every key with nothing left in its window (or quiet time) at `now`; then, if still over
   * the cap, the least recently seen keys down to 90 % of it. Both walk the whole map, so they
   * run only every quarter window or when the cap is passed, which keeps a hit O(1) on average.
   */
  private forget(now: number): void {
    const horizon = Math.max(this.options.windowMs, this.options.quietMs);
    this.sweepAt = now + horizon / 4;
    for (const [key, state] of this.keys) {
      if (state.seenAt < now - horizon) this.keys.delete(key);
    }
    const target = Math.floor(this.options.maxKeys * 0.9);
    if (this.keys.size <= this.options.maxKeys) return;
    for (const key of this.keys.keys()) {
      if (this.keys.size <= target) break;
      this.keys.delete(key);
    }
  }
}

function insertSorted(times: number[], time: number): void {
  let index = times.length;
  while (index > 0 && times[index - 1] > time) index -= 1;
  times.splice(index, 0, time);
}
