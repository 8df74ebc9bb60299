import { Logger } from '@nestjs/common';

import type { AuditObserver, AuditRecord } from '@portcullis/audit';
import type { DetectionSettings } from '@portcullis/core';
import { RequestContext } from '@portcullis/core';

import { BurstCounter } from './burst-counter';
import { SECURITY_ALERT, type SecurityAlerts } from './security-alerts';

/** What the detector does to an account when a rule says so. */
export interface AccountActions {
  /** Revokes every live session of the account everywhere; returns how many. */
  revokeAllSessions(accountId: string): Promise<number>;
}

/** Longest sender name kept as a key; longer claims are cut (they are attacker-chosen text). */
const MAX_SENDER_CHARS = 64;

/**
 * The rules that read the audit trail after the collector appends it:
 *
 * - `access.probing`: a user denied access to other users' objects `threshold` times within the
 *   window loses every session, and an alert is raised. Counting starts again after each
 *   revocation.
 * - `messages.refused`: messages claiming one sender refused `threshold` times within the
 *   window raise an alert, at most once per window per sender.
 *
 * `security.alert` records never count, so an alert cannot cause another. Counts are kept in
 * this process only (see {@link BurstCounter}).
 */
export class AbuseDetector implements AuditObserver {
  private readonly logger = new Logger(AbuseDetector.name);
  private readonly probing: BurstCounter;
  private readonly refusals: BurstCounter;

  constructor(
    private readonly settings: DetectionSettings,
    private readonly alerts: SecurityAlerts,
    private readonly accounts: AccountActions,
    private readonly now: () => number = Date.now,
  ) {
    const probing = settings.accessProbing;
    const refusals = settings.messageRefusals;
    this.probing = new BurstCounter({
      threshold: probing.threshold,
      windowMs: probing.windowSeconds * 1000,
      maxKeys: settings.maxTrackedSubjects,
      quietMs: 0,
    });
    this.refusals = new BurstCounter({
      threshold: refusals.threshold,
      windowMs: refusals.windowSeconds * 1000,
      maxKeys: settings.maxTrackedSubjects,
      quietMs: refusals.windowSeconds * 1000,
    });
  }

  async observe(records: readonly AuditRecord[]): Promise<void> {
    for (const record of records) {
      if (record.type === SECURITY_ALERT) continue;
      try {
        await RequestContext.run(
          { correlationId: record.correlationId, traceparent: record.traceparent },
          () => this.apply(record),
        );
      } catch (error) {
        this.logger.error({
          msg: 'detection rule failed',
          recordType: record.type,
          recordId: record.id,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  /** Counts tracked in each rule now. */
  trackedSubjects(): { accessProbing: number; messageRefusals: number } {
    return { accessProbing: this.probing.size, messageRefusals: this.refusals.size };
  }

  private async apply(record: AuditRecord): Promise<void> {
    if (record.type === 'access.denied') await this.countDeniedAccess(record);
    else if (record.type === 'message.refused') this.countRefusedMessage(record);
  }

  private async countDeniedAccess(record: AuditRecord): Promise<void> {
    const userId = record.actor?.userId;
    if (!userId || !record.resource?.id || record.outcome !== 'denied') return;
    if (!this.probing.hit(userId, this.timeOf(record))) return;

    const { threshold, windowSeconds } = this.settings.accessProbing;
    const details = { threshold, windowSeconds, action: 'sessions_revoked' };
    try {
      const sessions = await this.accounts.revokeAllSessions(userId);
      this.alerts.raise({
        rule: 'access.probing',
        outcome: 'denied',
        accountId: userId,
        details: { ...details, sessions },
      });
    } catch (error) {
      this.alerts.raise({
        rule: 'access.probing',
        outcome: 'failed',
        accountId: userId,
        details,
      });
      throw error;
    }
  }

  private countRefusedMessage(record: AuditRecord): void {
    const claimed = record.details?.sender;
    const sender =
      typeof claimed === 'string' && claimed !== '' ? claimed.slice(0, MAX_SENDER_CHARS) : '';
    if (!this.refusals.hit(sender, this.timeOf(record))) return;

    const { threshold, windowSeconds } = this.settings.messageRefusals;
    this.alerts.raise({
      rule: 'messages.refused',
      outcome: 'allowed',
      details: { sender: sender || undefined, threshold, windowSeconds, service: record.service },
    });
  }

  /**
   * When the recording service saw the fact, so records delivered late still fall in their
   * own window; a time in the future (a skewed clock) or an unreadable one counts as now.
   */
  private timeOf(record: AuditRecord): number {
    const now = this.now();
    const time = Date.parse(record.time);
    return Number.isFinite(time) ? Math.min(time, now) : now;
  }
}
