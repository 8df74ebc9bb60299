import { hash } from 'node:crypto';

import { type Actor, Metrics } from '@portcullis/core';

interface Entry {
  readonly key: string;
  readonly actor: Actor;
  /** Milliseconds since the epoch after which the entry is never returned. */
  readonly expiresAt: number;
  /** Set by a hit; an entry used since it was last passed over gets a second chance. */
  used: boolean;
}

/**
 * Access tokens this process has already verified, so that a repeated token costs a SHA-256
 * and a map lookup instead of a signature check. Entries are keyed by a hash of the raw token
 * (the token itself is never kept), bounded in number (least recently used goes first), never
 * returned past the token's own expiry, and dropped at once by {@link evictSession} and
 * {@link evictUser} when a session or user is revoked.
 *
 * When full, it drops the least recently used entry by the second-chance (clock) rule: a hit
 * only sets a flag, so that it costs one hash and one map lookup.
 */
export class VerifiedTokenCache {
  /** Oldest first; an entry that was used is moved to the end instead of being dropped. */
  private readonly entries = new Map<string, Entry>();
  private readonly bySession = new Map<string, Set<string>>();
  private readonly byUser = new Map<string, Set<string>>();
  private evictions = 0;

  constructor(
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** How many verified tokens are remembered now. */
  get size(): number {
    return this.entries.size;
  }

  /** The cache key of a raw token: its SHA-256, base64-encoded. */
  static keyOf(token: string): string {
    return hash('sha256', token, 'base64');
  }

  /** The actor of a token verified earlier and still valid, or undefined. */
  get(token: string): Actor | undefined {
    return this.capacity === 0 ? undefined : this.getByKey(VerifiedTokenCache.keyOf(token));
  }

  /** {@link get} for a token whose {@link keyOf} the caller has already computed. */
  getByKey(key: string): Actor | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      Metrics.tokenCacheMisses.inc();
      return undefined;
    }
    if (entry.expiresAt <= this.now()) {
      this.remove(entry);
      Metrics.tokenCacheMisses.inc();
      return undefined;
    }
    entry.used = true;
    Metrics.tokenCacheHits.inc();
    return entry.actor;
  }

  /**
   * A stamp to take before verifying a token and to pass to {@link set} afterwards: a token
   * whose verification overlapped an eviction is not stored, so a revocation that arrives
   * while a check is in flight cannot be undone by it.
   */
  stamp(): number {
    return this.evictions;
  }

  /**
   * Remembers a verified token until `expiresAtSeconds` (its `exp` claim). Nothing is stored
   * for a token that has expired, or when an eviction happened since `stamp` was taken.
   */
  set(token: string, actor: Actor, expiresAtSeconds: number, stamp: number): void {
    if (this.capacity === 0) return;
    this.setByKey(VerifiedTokenCache.keyOf(token), actor, expiresAtSeconds, stamp);
  }

  /** {@link set} for a token whose {@link keyOf} the caller has already computed. */
  setByKey(key: string, actor: Actor, expiresAtSeconds: number, stamp: number): void {
    if (this.capacity === 0 || stamp !== this.evictions) return;
    const expiresAt = expiresAtSeconds * 1000;
    if (!Number.isFinite(expiresAt) || expiresAt <= this.now()) return;
    const existing = this.entries.get(key);
    if (existing) this.remove(existing);
    while (this.entries.size >= this.capacity) this.dropLeastRecentlyUsed();
    this.entries.set(key, { key, actor, expiresAt, used: false });
    if (actor.sessionId !== undefined) index(this.bySession, actor.sessionId, key);
    index(this.byUser, actor.id, key);
  }

  /**
   * Forgets every token of a session at once, e.g. on logout or when a refresh token is
   * reused. Call it when a session-revocation message arrives; the next request with such a
   * token is verified in full again (and refused by whatever refuses revoked sessions).
   * Returns how many entries were dropped.
   */
  evictSession(sessionId: string): number {
    this.evictions++;
    return this.evictAll(this.bySession.get(sessionId));
  }

  /**
   * Forgets every token of a user at once, e.g. after their roles changed or their account
   * was locked. Returns how many entries were dropped.
   */
  evictUser(userId: string): number {
    this.evictions++;
    return this.evictAll(this.byUser.get(userId));
  }

  /** Forgets everything, e.g. after a signing key was withdrawn. */
  clear(): void {
    this.evictions++;
    this.entries.clear();
    this.bySession.clear();
    this.byUser.clear();
  }

  private dropLeastRecentlyUsed(): void {
    for (const entry of this.entries.values()) {
      if (!entry.used || entry.expiresAt <= this.now()) {
        this.remove(entry);
        return;
      }
      entry.used = false;
      this.entries.delete(entry.key);
      this.entries.set(entry.key, entry);
    }
  }

  private evictAll(keys: Set<string> | undefined): number {
    if (keys === undefined) return 0;
    let dropped = 0;
    for (const key of [...keys]) {
      const entry = this.entries.get(key);
      if (entry) {
        this.remove(entry);
        dropped++;
      }
    }
    return dropped;
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.key);
    if (entry.actor.sessionId !== undefined)
      unindex(this.bySession, entry.actor.sessionId, entry.key);
    unindex(this.byUser, entry.actor.id, entry.key);
  }
}

function index(map: Map<string, Set<string>>, id: string, key: string): void {
  const keys = map.get(id);
  if (keys) keys.add(key);
  else map.set(id, new Set([key]));
}

function unindex(map: Map<string, Set<string>>, id: string, key: string): void {
  const keys = map.get(id);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) map.delete(id);
}
