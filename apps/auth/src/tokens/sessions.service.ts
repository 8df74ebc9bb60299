import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { DataSource, type EntityManager, IsNull, MoreThan } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import type { RevocationReason, RevokedSession } from '@portcullis/contracts';
import { APP_CONFIG, type Actor, type AppConfig } from '@portcullis/core';
import { Outbox } from '@portcullis/messaging';

import { Account } from '../accounts/account.entity';
import { LoginLimiter } from '../accounts/login-limiter';
import { SecurityAlerts } from '../detection/security-alerts';
import { RefreshToken } from './refresh-token.entity';
import { Session } from './session.entity';
import { type TokenPair, TokenIssuer, refreshTokenHash } from './token-issuer';

/** Access tokens are checked with up to this much clock skew. */
const SKEW_MS = 60_000;
const MAX_SESSIONS_PER_EVENT = 1000;

type RefreshOutcome =
  | { kind: 'issued'; account: Account; sessionId: string; refreshToken: string }
  | { kind: 'reused'; accountId: string; sessionId: string }
  | { kind: 'refused'; reason: string };

const INVALID_REFRESH = 'refresh token is invalid or expired';

/**
 * Sessions after login: refresh-token rotation with reuse detection, logout, revoking every
 * session of an account, and the list of revocations that still matter.
 */
@Injectable()
export class SessionsService {
  constructor(
    @InjectDataSource('auth') private readonly db: DataSource,
    private readonly issuer: TokenIssuer,
    private readonly limiter: LoginLimiter,
    private readonly events: SecurityEvents,
    @Inject(Outbox) private readonly outbox: Outbox,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly alerts: SecurityAlerts,
  ) {}

  /**
   * Exchanges a refresh token for a new pair, once: the token is spent in the same
   * transaction, under a row lock, so of two concurrent refreshes exactly one succeeds.
   * Presenting a spent token revokes its whole session.
   */
  async refresh(refreshToken: string, clientIp: string): Promise<TokenPair> {
    const ipSubject = this.limiter.ipSubject('refresh', clientIp);
    await this.limiter.assertAllowed([ipSubject]);

    const outcome = await this.db.transaction((tx) =>
      this.rotate(tx, refreshTokenHash(refreshToken)),
    );

    switch (outcome.kind) {
      case 'issued':
        return {
          accessToken: this.issuer.issueAccessToken(outcome.account, outcome.sessionId),
          refreshToken: outcome.refreshToken,
          tokenType: 'Bearer',
          expiresIn: this.config.accessTokenTtlSeconds,
        };
      case 'reused':
        this.events.record({
          type: 'auth.refresh_reuse_detected',
          outcome: 'denied',
          reason: 'spent_refresh_token',
          actorId: outcome.accountId,
          resourceType: 'session',
          resourceId: outcome.sessionId,
        });
        this.alerts.raise({
          rule: 'refresh.reuse',
          outcome: 'denied',
          accountId: outcome.accountId,
          clientIp,
          details: { sessionId: outcome.sessionId, action: 'session_revoked' },
        });
        throw new UnauthorizedException(INVALID_REFRESH);
      case 'refused':
        await this.limiter.recordFailure([ipSubject], { clientIp });
        this.events.record({
          type: 'auth.refresh_failed',
          outcome: 'denied',
          reason: outcome.reason,
        });
        throw new UnauthorizedException(INVALID_REFRESH);
    }
  }

  /** Ends the session of the presented access token. */
  async logout(actor: Actor): Promise<void> {
    if (!actor.sessionId) return;
    await this.revokeSessions(actor.id, 'logout', actor.sessionId);
  }

  /** Revokes every live session of an account (or one of them); returns how many. */
  async revokeSessions(
    accountId: string,
    reason: RevocationReason,
    onlySessionId?: string,
  ): Promise<number> {
    const sessionIds = await this.db.transaction(async (tx) => {
      const rows = (await tx
        .createQueryBuilder()
        .update(Session)
        .set({ revokedAt: () => 'now()', revokedReason: reason })
        .where('account_id = :accountId AND revoked_at IS NULL', { accountId })
        .andWhere(onlySessionId ? 'id = :onlySessionId' : 'true', { onlySessionId })
        .returning(['id'])
        .execute()) as { raw: Array<{ id: string }> };
      const ids = rows.raw.map((row) => row.id);
      await this.announce(tx, accountId, ids, reason);
      return ids;
    });
    if (sessionIds.length === 0) return 0;

    this.events.record({
      type: 'auth.sessions_revoked',
      outcome: 'allowed',
      reason,
      resourceType: 'account',
      resourceId: accountId,
      details: { sessions: sessionIds.length },
    });
    return sessionIds.length;
  }

  /** Sessions revoked recently enough that one of their access tokens may still be unexpired. */
  async stillRelevantRevocations(): Promise<RevokedSession[]> {
    const relevanceMs = this.relevanceMs();
    const sessions = await this.db.getRepository(Session).find({
      select: { id: true, revokedAt: true },
      where: { revokedAt: MoreThan(new Date(Date.now() - relevanceMs)) },
      take: 100_000,
    });
    return sessions.map((session) => ({
      sessionId: session.id,
      relevantUntil: new Date(session.revokedAt!.getTime() + relevanceMs).toISOString(),
    }));
  }

  private async rotate(tx: EntityManager, tokenHash: string): Promise<RefreshOutcome> {
    const token = await tx.findOne(RefreshToken, {
      where: { tokenHash },
      lock: { mode: 'pessimistic_write' },
    });
    if (!token) return { kind: 'refused', reason: 'unknown_refresh_token' };
    const session = await tx.findOneBy(Session, { id: token.sessionId });
    if (!session) return { kind: 'refused', reason: 'unknown_session' };

    const now = new Date();
    if (token.spentAt) {
      const revoked = await tx.update(
        Session,
        { id: session.id, revokedAt: IsNull() },
        { revokedAt: now, revokedReason: 'refresh_reuse' },
      );
      if (!revoked.affected) return { kind: 'refused', reason: 'session_revoked' };
      await this.announce(tx, session.accountId, [session.id], 'refresh_reuse');
      return { kind: 'reused', accountId: session.accountId, sessionId: session.id };
    }
    if (session.revokedAt) return { kind: 'refused', reason: 'session_revoked' };
    if (token.expiresAt <= now || session.expiresAt <= now) {
      return { kind: 'refused', reason: 'expired' };
    }
    const account = await tx.findOneBy(Account, { id: session.accountId });
    if (!account) return { kind: 'refused', reason: 'unknown_account' };

    const refreshToken = randomBytes(32).toString('base64url');
    const idleEnd = now.getTime() + this.config.refreshTokenIdleSeconds * 1000;
    await tx.update(RefreshToken, { tokenHash }, { spentAt: now });
    await tx.insert(RefreshToken, {
      tokenHash: refreshTokenHash(refreshToken),
      sessionId: session.id,
      issuedAt: now,
      expiresAt: new Date(Math.min(idleEnd, session.expiresAt.getTime())),
      spentAt: null,
    });
    return { kind: 'issued', account, sessionId: session.id, refreshToken };
  }

  /** Tells every service, through the outbox of the same transaction, to refuse these sessions. */
  private async announce(
    tx: EntityManager,
    accountId: string,
    sessionIds: string[],
    reason: RevocationReason,
  ): Promise<void> {
    const relevantUntil = new Date(Date.now() + this.relevanceMs()).toISOString();
    for (let start = 0; start < sessionIds.length; start += MAX_SESSIONS_PER_EVENT) {
      const chunk = sessionIds.slice(start, start + MAX_SESSIONS_PER_EVENT);
      await this.outbox.enqueue(tx, 'auth.session.revoked', {
        accountId,
        sessionIds: chunk,
        reason,
        relevantUntil,
      });
    }
  }

  private relevanceMs(): number {
    return this.config.accessTokenTtlSeconds * 1000 + SKEW_MS;
  }
}
