import { Injectable } from '@nestjs/common';

/**
 * Sessions whose access tokens this process must refuse, each kept only while a token of it
 * could still be unexpired. Filled from `auth.session.revoked` events and from auth's answer
 * to `auth.revocations.query` at start-up and periodically after.
 */
@Injectable()
export class RevocationList {
  private readonly sessions = new Map<string, number>();
  private readonly listeners: Array<(sessionId: string) => void> = [];

  private readonly now = (): number => Date.now();

  /** Called for every newly revoked session, e.g. to drop cached verified tokens. */
  onRevoked(listener: (sessionId: string) => void): void {
    this.listeners.push(listener);
  }

  revoke(sessionId: string, relevantUntil: number): void {
    if (relevantUntil <= this.now()) return;
    const known = this.sessions.get(sessionId);
    if (known === undefined || known < relevantUntil) this.sessions.set(sessionId, relevantUntil);
    if (known === undefined) for (const listener of this.listeners) listener(sessionId);
  }

  isRevoked(sessionId: string | undefined): boolean {
    if (!sessionId) return false;
    const until = this.sessions.get(sessionId);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.sessions.delete(sessionId);
    return false;
  }

  /** Forgets revocations no token can need any more. */
  prune(): void {
    const now = this.now();
    for (const [sessionId, until] of this.sessions)
      if (until <= now) this.sessions.delete(sessionId);
  }

  get size(): number {
    return this.sessions.size;
  }
}
