import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import { APP_CONFIG, type AppConfig, FieldEncryption, RetryLaterException } from '@portcullis/core';

import { SecurityAlerts } from '../detection/security-alerts';

/** Who failed: the client and, when the email named one, the account. */
export interface FailedAttempt {
  readonly clientIp: string;
  readonly accountId?: string;
}

/** Something failed attempts are counted against, with how many it may fail freely. */
export interface LimitSubject {
  readonly key: string;
  readonly freeFailures: number;
}

interface FailureRow {
  subject: string;
  failures: number;
  window_started_at: Date;
  last_failure_at: Date;
}

/**
 * Failed-attempt limits shared by every auth instance (kept in the database). A subject may
 * fail `freeFailures` times in a window; after that each attempt must wait twice as long as
 * the last (1 s, 2 s, 4 s ...), and at twice the free failures it is locked out.
 */
@Injectable()
export class LoginLimiter {
  constructor(
    @InjectDataSource('auth') private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly events: SecurityEvents,
    private readonly fields: FieldEncryption,
    private readonly alerts: SecurityAlerts,
  ) {}

  /**
   * Subjects are stored by their blind index (a keyed HMAC), never as the email or IP: a
   * bare hash of an email is reversed by hashing likely emails. A key rotation starts the
   * counts again.
   */
  accountSubject(email: string): LimitSubject {
    const digest = this.fields.blindIndex().digest('auth.login_failures.account', email);
    return {
      key: `account:${digest.toString('hex')}`,
      freeFailures: this.config.loginLimits.accountFreeFailures,
    };
  }

  ipSubject(scope: 'login' | 'refresh', ip: string): LimitSubject {
    const digest = this.fields.blindIndex().digest('auth.login_failures.ip', ip);
    return {
      key: `${scope}-ip:${digest.toString('hex')}`,
      freeFailures: this.config.loginLimits.ipFreeFailures,
    };
  }

  /** Throws a 429 with `Retry-After` when any subject must still wait. */
  async assertAllowed(subjects: readonly LimitSubject[]): Promise<void> {
    const rows: FailureRow[] = await this.db.query(
      `SELECT subject, failures, window_started_at, last_failure_at
         FROM auth.login_failures WHERE subject = ANY($1)`,
      [subjects.map((s) => s.key)],
    );
    const now = Date.now();
    let waitMs = 0;
    for (const row of rows) {
      const subject = subjects.find((s) => s.key === row.subject);
      if (subject) waitMs = Math.max(waitMs, this.remainingWait(row, subject, now));
    }
    if (waitMs > 0) {
      this.events.record({
        type: 'auth.attempt_throttled',
        outcome: 'denied',
        reason: 'too_many_failures',
        details: { retryAfterSeconds: Math.ceil(waitMs / 1000) },
      });
      throw new RetryLaterException('too many failed attempts; try again later', waitMs / 1000);
    }
  }

  /**
   * Counts a failure against each subject. The failure that locks a subject out raises the
   * `login.brute_force` alert: the database counts every attempt of every auth instance, so
   * exactly one failure per window reaches the lockout.
   */
  async recordFailure(subjects: readonly LimitSubject[], attempt: FailedAttempt): Promise<void> {
    const windowStart = new Date(Date.now() - this.config.loginLimits.windowSeconds * 1000);
    for (const subject of subjects) {
      const [row] = await this.db.query<Array<{ failures: number }>>(
        `INSERT INTO auth.login_failures AS f
           (subject, failures, window_started_at, last_failure_at)
         VALUES ($1, 1, now(), now())
         ON CONFLICT (subject) DO UPDATE SET
           failures = CASE WHEN f.window_started_at < $2 THEN 1 ELSE f.failures + 1 END,
           window_started_at = CASE WHEN f.window_started_at < $2 THEN now()
                                    ELSE f.window_started_at END,
           last_failure_at = now()
         RETURNING failures`,
        [subject.key, windowStart],
      );
      if (row?.failures === subject.freeFailures * 2) {
        const kind = subject.key.split(':')[0];
        this.events.record({
          type: 'auth.lockout',
          outcome: 'denied',
          reason: 'too_many_failures',
          details: { subject: kind },
        });
        this.alerts.raise({
          rule: 'login.brute_force',
          outcome: 'denied',
          accountId: attempt.accountId,
          clientIp: attempt.clientIp,
          details: {
            subject: kind,
            failures: row.failures,
            lockoutSeconds: this.config.loginLimits.lockoutSeconds,
          },
        });
      }
    }
  }

  async clear(subject: LimitSubject): Promise<void> {
    await this.db.query('DELETE FROM auth.login_failures WHERE subject = $1', [subject.key]);
  }

  private remainingWait(row: FailureRow, subject: LimitSubject, now: number): number {
    const limits = this.config.loginLimits;
    const last = new Date(row.last_failure_at).getTime();
    const lockoutMs = limits.lockoutSeconds * 1000;
    if (row.failures >= subject.freeFailures * 2 && now < last + lockoutMs) {
      return last + lockoutMs - now;
    }
    const windowEnded =
      now - new Date(row.window_started_at).getTime() > limits.windowSeconds * 1000;
    if (windowEnded || row.failures < subject.freeFailures) return 0;
    const delayMs = Math.min(2 ** (row.failures - subject.freeFailures) * 1000, lockoutMs);
    return Math.max(0, last + delayMs - now);
  }
}
