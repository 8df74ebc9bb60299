/**
 * Remembers message ids until they expire, so a captured message cannot be delivered twice
 * while it is still valid. Bounded: the oldest ids are forgotten first, and an id older than
 * its expiry is refused by the expiry check anyway.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly capacity = 200_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True the first time an id is presented; false for every later presentation. */
  firstSighting(id: string, expiresAt: number): boolean {
    if (this.seen.has(id)) return false;
    this.seen.set(id, expiresAt);
    if (this.seen.size > this.capacity) this.prune();
    return true;
  }

  private prune(): void {
    const now = this.now();
    for (const [id, expiresAt] of this.seen) {
      if (expiresAt <= now || this.seen.size > this.capacity * 0.9) this.seen.delete(id);
      else break;
    }
  }
}
